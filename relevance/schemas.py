"""Label schemas: the label sets a relevance judgement can use, with their codes, grades, gains and guidelines.

A schema is the single source of truth for what a label is called. The prompt shows its guidelines, the parser
maps a model's answer onto its names, the reward compares names, the metrics rank by its gains, and the prompt
version hashes it, so a changed guideline is a changed prompt.

Schemas in the registry:

- ``esci`` (default): Exact, Substitute, Complement, Irrelevant, the Amazon Shopping Queries labels. NDCG gains
  1, 0.1, 0.01, 0 as in the ESCI paper.
- ``graded``: a 0-3 view (Perfect 3, Good 2, Fair 1, Bad 0); codes are the digits, gains are the grades.
- ``binary``: Relevant / Irrelevant.
- ``wands``: Exact, Partial, Irrelevant, the Wayfair WANDS labels, gains 2, 1, 0 as WANDS evaluates them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_SCHEMA = "esci"


@dataclass(frozen=True)
class Label:
    """One label of a schema.

    ``grade`` orders labels by relevance (higher is more relevant); ``gain`` is what NDCG credits; ``guideline``
    is the annotator instruction (one or two sentences) and ``hint`` its few-word form for compact prompts.
    ``aliases`` are other spellings the parser accepts (lower case).
    """

    name: str
    code: str
    grade: int
    gain: float
    guideline: str
    hint: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelSchema:
    """An ordered set of labels. The order is the display order and the deterministic tie-break order."""

    name: str
    labels: tuple[Label, ...]
    description: str
    _lookup: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.labels:
            raise ValueError(f"schema {self.name!r} has no labels")
        lookup: dict[str, str] = {}
        for label in self.labels:
            for key in (label.name, label.code, *label.aliases):
                k = key.strip().lower()
                if not k:
                    raise ValueError(f"schema {self.name!r}: label {label.name!r} has an empty name, code or alias")
                if lookup.get(k, label.name) != label.name:
                    raise ValueError(f"schema {self.name!r}: {key!r} names both {lookup[k]!r} and {label.name!r}")
                lookup[k] = label.name
        object.__setattr__(self, "_lookup", lookup)

    @property
    def names(self) -> list[str]:
        return [label.name for label in self.labels]

    @property
    def codes(self) -> list[str]:
        return [label.code for label in self.labels]

    @property
    def gains(self) -> dict[str, float]:
        return {label.name: label.gain for label in self.labels}

    @property
    def grades(self) -> dict[str, int]:
        return {label.name: label.grade for label in self.labels}

    def label(self, name_or_code: str) -> Label:
        """The label called ``name_or_code`` (a name, code or alias, any case); ``KeyError`` if none."""
        name = self.normalize(name_or_code)
        if name is None:
            raise KeyError(f"{name_or_code!r} is not a label of schema {self.name!r}; labels: {', '.join(self.names)}")
        return self.labels[self.index(name)]

    def normalize(self, token: str) -> str | None:
        """The canonical label name for a name, code or alias (case-insensitive), or None."""
        return self._lookup.get(token.strip().lower())

    def index(self, name: str) -> int:
        """Position of a canonical label name in schema order."""
        return self.names.index(name)

    def gain(self, name_or_code: str) -> float:
        return self.label(name_or_code).gain

    def grade(self, name_or_code: str) -> int:
        return self.label(name_or_code).grade

    def fingerprint(self) -> str:
        """A canonical text of everything a prompt or a label cache depends on; hashing it versions the schema."""
        payload = {
            "name": self.name,
            "labels": [
                [lab.name, lab.code, lab.grade, lab.gain, lab.guideline, lab.hint, list(lab.aliases)]
                for lab in self.labels
            ],
        }
        return json.dumps(payload, sort_keys=True, separators=(",", ":"))

    def version(self) -> str:
        """Short hash of :meth:`fingerprint`."""
        return hashlib.sha256(self.fingerprint().encode()).hexdigest()[:12]


ESCI = LabelSchema(
    name="esci",
    description="Amazon Shopping Queries (ESCI) relevance labels.",
    labels=(
        Label(
            "Exact",
            "E",
            3,
            1.0,
            "The ad is the product the query asks for and meets every stated constraint "
            "(brand, model, colour, size, capacity, gender and so on).",
            "the asked-for product; every query detail matches",
            aliases=("exact match", "完全相关", "精确匹配"),
        ),
        Label(
            "Substitute",
            "S",
            2,
            0.1,
            "The ad is the same kind of product but fails at least one stated constraint, such as another brand, "
            "model, colour, size or capacity; it could serve in its place.",
            "same kind of product, but some query detail differs",
            aliases=("substitutes", "可替代", "替代品"),
        ),
        Label(
            "Complement",
            "C",
            1,
            0.01,
            "The ad is a different kind of product that is used together with the one asked for, "
            "such as a case for a phone or ink for a printer.",
            "another product used together with the asked-for one",
            aliases=("complementary", "complements", "互补品", "互补"),
        ),
        Label(
            "Irrelevant",
            "I",
            0,
            0.0,
            "The ad is neither the product asked for, a replacement for it, nor something used with it.",
            "unrelated to the query",
            aliases=("not relevant", "不相关", "无关"),
        ),
    ),
)

GRADED = LabelSchema(
    name="graded",
    description="A 0-3 graded relevance scale; the codes are the grades.",
    labels=(
        Label("Perfect", "3", 3, 3.0, "The ad fully satisfies the query.", "fully satisfies the query"),
        Label(
            "Good",
            "2",
            2,
            2.0,
            "The ad is the right kind of product but misses some detail of the query.",
            "right product type, some detail off",
        ),
        Label(
            "Fair",
            "1",
            1,
            1.0,
            "The ad is related to the query, for example an accessory of the product asked for.",
            "related, e.g. an accessory",
        ),
        Label("Bad", "0", 0, 0.0, "The ad has nothing to do with the query.", "unrelated"),
    ),
)

BINARY = LabelSchema(
    name="binary",
    description="Relevant or not.",
    labels=(
        Label(
            "Relevant",
            "R",
            1,
            1.0,
            "The ad is the product asked for or a close replacement for it.",
            "the product asked for or a close replacement",
        ),
        Label(
            "Irrelevant",
            "I",
            0,
            0.0,
            "The ad is not what the query asks for.",
            "not what the query asks for",
            aliases=("not relevant",),
        ),
    ),
)

WANDS = LabelSchema(
    name="wands",
    description="Wayfair ANnotation DataSet (WANDS) labels; gains as WANDS scores them.",
    labels=(
        Label(
            "Exact",
            "E",
            2,
            2.0,
            "The product fully matches the search query.",
            "fully matches the query",
        ),
        Label(
            "Partial",
            "P",
            1,
            1.0,
            "The product matches some of the query, such as the product type or some of its attributes, "
            "but not all of it.",
            "matches part of the query",
            aliases=("partial match",),
        ),
        Label(
            "Irrelevant",
            "I",
            0,
            0.0,
            "The product does not match the query.",
            "does not match the query",
        ),
    ),
)

_REGISTRY: dict[str, LabelSchema] = {s.name: s for s in (ESCI, GRADED, BINARY, WANDS)}

# Label projections between schemas, for reporting one schema's labels in another's terms.
_PROJECTIONS: dict[tuple[str, str], dict[str, str]] = {
    ("esci", "graded"): {"Exact": "Perfect", "Substitute": "Good", "Complement": "Fair", "Irrelevant": "Bad"},
    ("esci", "binary"): {
        "Exact": "Relevant",
        "Substitute": "Relevant",
        "Complement": "Irrelevant",
        "Irrelevant": "Irrelevant",
    },
    ("graded", "binary"): {"Perfect": "Relevant", "Good": "Relevant", "Fair": "Irrelevant", "Bad": "Irrelevant"},
}


def get_schema(schema: str | LabelSchema = DEFAULT_SCHEMA) -> LabelSchema:
    """The registered schema called ``schema`` (a schema passes through), or ``KeyError`` naming the choices."""
    if isinstance(schema, LabelSchema):
        return schema
    try:
        return _REGISTRY[schema.strip().lower()]
    except KeyError:
        raise KeyError(f"unknown label schema {schema!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def register_schema(schema: LabelSchema, *, replace: bool = False) -> None:
    """Add a schema to the registry; an existing name is an error unless ``replace``."""
    if schema.name in _REGISTRY and not replace:
        raise ValueError(f"schema {schema.name!r} is already registered")
    _REGISTRY[schema.name] = schema


def schema_names() -> list[str]:
    return sorted(_REGISTRY)


def project_label(label: str, source: str | LabelSchema, target: str | LabelSchema) -> str:
    """``label`` of ``source`` expressed in ``target`` (e.g. ESCI Substitute -> graded Good, binary Relevant)."""
    src, dst = get_schema(source), get_schema(target)
    name = src.label(label).name
    if src.name == dst.name:
        return name
    try:
        return _PROJECTIONS[(src.name, dst.name)][name]
    except KeyError:
        raise KeyError(f"no projection from schema {src.name!r} to {dst.name!r}") from None
