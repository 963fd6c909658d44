"""Datasets for distillation: labelled query-ad pairs from teacher results or from gold labels.

Two sources give the same :class:`Example` records:

- teacher results (the annotation service's result lines): the hard label, the vote distribution (the soft
  target) and the confidence. The pair itself comes from the result line (``query`` and ``ad`` fields) or from
  a pairs JSONL joined on ``custom_id``. Failed results are skipped and counted.
- gold pairs (a synthetic split or an importer's output): ``meta.label`` as a one-hot target, the ceiling a
  student could reach with perfect labels.

Everything is validated before any training starts, and an error names the file and the 1-based line, so a bad
results file costs seconds, not a training run. Splits are by query, so no query's ads sit on both sides.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from relevance.pairs import Ad, Pair, error_fields, read_pairs_jsonl
from relevance.schemas import DEFAULT_SCHEMA, LabelSchema, get_schema

Source = Literal["auto", "teacher", "gold"]
RESULT_STATUSES = ("completed", "failed")
# What distillation reads from a result line; the reasoning and the bookkeeping are left out of label files.
LABEL_FIELDS = ("custom_id", "status", "label", "confidence", "distribution", "teacher", "prompt_version", "error")
MAX_DESCRIPTION_CHARS = 240


class DataError(ValueError):
    """A labelled-data file that cannot be used; the message names the file and, where there is one, the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Example:
    """One labelled pair, ready for a cross-encoder.

    ``target`` is a probability vector in schema order (the vote distribution, or one-hot for a gold label);
    ``label`` is the hard label; ``group`` keeps a query's ads together when splitting.
    """

    custom_id: str
    query: str
    ad_text: str
    label: str
    target: tuple[float, ...]
    confidence: float
    group: str
    teacher: str | None = None
    prompt_version: str | None = None


@dataclass
class LabelledSet:
    """Examples read from one source, with what was skipped and where they came from."""

    examples: list[Example]
    schema: str
    source: Literal["teacher", "gold"]
    path: str
    n_failed: int = 0
    teachers: list[str] = field(default_factory=list)
    prompt_versions: list[str] = field(default_factory=list)

    def label_counts(self) -> dict[str, int]:
        counts = Counter(e.label for e in self.examples)
        return {name: counts.get(name, 0) for name in get_schema(self.schema).names}

    def summary(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "source": self.source,
            "n": len(self.examples),
            "n_failed": self.n_failed,
            "queries": len({e.group for e in self.examples}),
            "label_counts": self.label_counts(),
            "teachers": self.teachers,
            "prompt_versions": self.prompt_versions,
        }


def render_ad(ad: Ad | Mapping[str, Any], *, description_chars: int = MAX_DESCRIPTION_CHARS) -> str:
    """The ad as one short line for the cross-encoder's second segment.

    Title first and the description last (truncated), so the tokenizer's truncation cuts the least useful text;
    attributes sorted by key, so the same ad always renders the same way whatever order its keys came in.
    """
    data = ad.model_dump() if isinstance(ad, Ad) else dict(ad)
    parts = [str(data["title"]).strip()]
    if data.get("brand"):
        parts.append(f"brand: {data['brand']}")
    if data.get("category"):
        parts.append(f"category: {data['category']}")
    attributes = data.get("attributes") or {}
    if attributes:
        parts.append("; ".join(f"{k}: {attributes[k]}" for k in sorted(attributes)))
    description = (data.get("description") or "").strip()
    if description and description_chars > 0:
        if len(description) > description_chars:
            description = description[:description_chars].rsplit(" ", 1)[0] + " ..."
        parts.append(description)
    return " | ".join(parts)


def normalise_query(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def query_group(pair: Pair) -> str:
    """``meta.query_id`` when the pair has one, else the normalised query text."""
    qid = (pair.meta or {}).get("query_id")
    return f"id:{qid}" if qid not in (None, "") else f"q:{normalise_query(pair.query)}"


def _read_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise DataError(path, "no such file")
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DataError(path, f"not valid JSON ({exc})", lineno) from None
            if not isinstance(record, dict):
                raise DataError(path, f"expected a JSON object, got {type(record).__name__}", lineno)
            yield lineno, record


def _validate_pair(path: Path, lineno: int, data: Mapping[str, Any]) -> Pair:
    try:
        return Pair.model_validate(data)
    except ValidationError as exc:
        detail = "; ".join(f"{f}: {m}" if f else m for f, m in error_fields(exc))
        raise DataError(path, detail, lineno) from None


def _one_hot(sch: LabelSchema, label: str) -> tuple[float, ...]:
    return tuple(1.0 if name == label else 0.0 for name in sch.names)


def _check_classes(path: Path, examples: Sequence[Example]) -> None:
    if not examples:
        raise DataError(path, "no usable labelled pairs")
    classes = {e.label for e in examples}
    if len(classes) < 2:
        raise DataError(path, f"every usable pair has the label {next(iter(classes))!r}; training needs two classes")


def load_gold(path: str | Path, schema: str | LabelSchema = DEFAULT_SCHEMA) -> LabelledSet:
    """Pairs whose ``meta.label`` is the truth (a synthetic split, an importer's output)."""
    path = Path(path)
    sch = get_schema(schema)
    examples: list[Example] = []
    seen: dict[str, int] = {}
    for lineno, record in _read_json_lines(path):
        pair = _validate_pair(path, lineno, record)
        raw = (pair.meta or {}).get("label")
        if raw is None:
            raise DataError(path, "meta.label: field required (a gold file carries its label in meta.label)", lineno)
        label = sch.normalize(str(raw))
        if label is None:
            raise DataError(path, f"meta.label: {raw!r} is not a label of schema {sch.name!r} ({sch.names})", lineno)
        if pair.custom_id in seen:
            raise DataError(
                path, f"duplicate custom_id {pair.custom_id!r} (first on line {seen[pair.custom_id]})", lineno
            )
        seen[pair.custom_id] = lineno
        examples.append(
            Example(pair.custom_id, pair.query, render_ad(pair.ad), label, _one_hot(sch, label), 1.0, query_group(pair))
        )
    _check_classes(path, examples)
    return LabelledSet(examples, sch.name, "gold", str(path))


def _pairs_by_id(pairs_path: Path) -> dict[str, Pair]:
    return {p.custom_id: p for p in read_pairs(pairs_path)}


def _distribution(path: Path, lineno: int, sch: LabelSchema, raw: Any, label: str) -> tuple[float, ...]:
    if raw is None or raw == {}:
        return _one_hot(sch, label)
    if not isinstance(raw, Mapping):
        raise DataError(path, f"distribution: expected an object of label shares, got {type(raw).__name__}", lineno)
    shares = dict.fromkeys(sch.names, 0.0)
    for key, value in raw.items():
        name = sch.normalize(str(key))
        if name is None:
            raise DataError(path, f"distribution: {key!r} is not a label of schema {sch.name!r} ({sch.names})", lineno)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise DataError(path, f"distribution[{key!r}]: expected a non-negative number, got {value!r}", lineno)
        shares[name] += float(value)
    total = sum(shares.values())
    if total <= 0:
        raise DataError(path, "distribution: shares sum to 0", lineno)
    return tuple(shares[name] / total for name in sch.names)


def load_teacher_results(
    path: str | Path,
    pairs: str | Path | None = None,
    schema: str | LabelSchema = DEFAULT_SCHEMA,
) -> LabelledSet:
    """Teacher result lines (the job contract's result line), the pairs inline or joined from ``pairs``.

    ``status`` must be ``completed`` or ``failed``; failed lines are counted and skipped. A completed line
    needs a known ``label``; ``distribution`` (soft target) defaults to one-hot on the label and
    ``confidence`` to the label's share of it.
    """
    path = Path(path)
    sch = get_schema(schema)
    joined = _pairs_by_id(Path(pairs)) if pairs is not None else None
    examples: list[Example] = []
    failed = 0
    seen: dict[str, int] = {}
    teachers: set[str] = set()
    versions: set[str] = set()
    for lineno, record in _read_json_lines(path):
        cid = record.get("custom_id")
        if not isinstance(cid, str) or not cid.strip():
            raise DataError(path, "custom_id: field required (a non-empty string)", lineno)
        if cid in seen:
            raise DataError(path, f"duplicate custom_id {cid!r} (first on line {seen[cid]})", lineno)
        seen[cid] = lineno
        status = record.get("status")
        if status not in RESULT_STATUSES:
            raise DataError(path, f"status: expected one of {list(RESULT_STATUSES)}, got {status!r}", lineno)
        if status == "failed":
            failed += 1
            continue
        raw_label = record.get("label")
        if not isinstance(raw_label, str):
            raise DataError(path, "label: field required for a completed result", lineno)
        label = sch.normalize(raw_label)
        if label is None:
            raise DataError(path, f"label: {raw_label!r} is not a label of schema {sch.name!r} ({sch.names})", lineno)
        target = _distribution(path, lineno, sch, record.get("distribution"), label)
        confidence = record.get("confidence")
        if confidence is None:
            confidence = target[sch.index(label)]
        if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 <= confidence <= 1:
            raise DataError(path, f"confidence: expected a number in [0, 1], got {confidence!r}", lineno)
        if "query" in record and "ad" in record:
            pair = _validate_pair(
                path,
                lineno,
                {"custom_id": cid, "query": record["query"], "ad": record["ad"], "meta": record.get("meta")},
            )
        elif joined is not None:
            found = joined.get(cid)
            if found is None:
                raise DataError(path, f"custom_id {cid!r} is not in the pairs file {pairs}", lineno)
            pair = found
        else:
            raise DataError(path, "query, ad: the result has no pair; add query and ad, or pass the pairs file", lineno)
        teacher, version = record.get("teacher"), record.get("prompt_version")
        if isinstance(teacher, str):
            teachers.add(teacher)
        if isinstance(version, str):
            versions.add(version)
        examples.append(
            Example(
                cid,
                pair.query,
                render_ad(pair.ad),
                label,
                target,
                float(confidence),
                query_group(pair),
                teacher if isinstance(teacher, str) else None,
                version if isinstance(version, str) else None,
            )
        )
    _check_classes(path, examples)
    return LabelledSet(examples, sch.name, "teacher", str(path), failed, sorted(teachers), sorted(versions))


def detect_source(path: str | Path) -> Literal["teacher", "gold"]:
    """``teacher`` when the first record has a ``status`` field (a result line), else ``gold``."""
    path = Path(path)
    for _, record in _read_json_lines(path):
        return "teacher" if "status" in record else "gold"
    raise DataError(path, "the file is empty")


def load_labelled(
    path: str | Path,
    *,
    pairs: str | Path | None = None,
    source: Source = "auto",
    schema: str | LabelSchema = DEFAULT_SCHEMA,
) -> LabelledSet:
    """Read teacher results or gold pairs, telling them apart by their first line unless ``source`` says."""
    kind = detect_source(path) if source == "auto" else source
    if kind == "teacher":
        return load_teacher_results(path, pairs, schema)
    if pairs is not None:
        raise DataError(path, "a pairs file joins teacher results; this file holds gold pairs")
    return load_gold(path, schema)


def split_by_query(
    examples: Sequence[Example], dev_fraction: float = 0.1, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """Train and dev examples with no query on both sides; the same seed gives the same split.

    Groups are sorted before shuffling, so the split does not depend on file order; dev takes whole queries until
    it holds at least ``dev_fraction`` of the groups (at least one, and never all of them).
    """
    if not 0 < dev_fraction < 1:
        raise ValueError(f"dev_fraction must lie in (0, 1), got {dev_fraction}")
    groups = sorted({e.group for e in examples})
    if len(groups) < 2:
        raise ValueError(f"need at least two queries to split into train and dev, got {len(groups)}")
    random.Random(seed).shuffle(groups)
    n_dev = min(len(groups) - 1, max(1, round(dev_fraction * len(groups))))
    dev_groups = set(groups[:n_dev])
    train = [e for e in examples if e.group not in dev_groups]
    dev = [e for e in examples if e.group in dev_groups]
    return train, dev


def keep_labels(results: str | Path, out: str | Path, pairs: str | Path | None = None) -> int:
    """Write ``results``' lines with only :data:`LABEL_FIELDS` (shares rounded to 6 places) to ``out``, keeping
    only the pairs in ``pairs`` when given; returns the number of lines written."""
    results = Path(results)
    wanted = {p.custom_id for p in read_pairs(pairs)} if pairs is not None else None
    written = 0
    with Path(out).open("w", encoding="utf-8") as fh:
        for lineno, record in _read_json_lines(results):
            cid = record.get("custom_id")
            if not isinstance(cid, str):
                raise DataError(results, "custom_id: field required (a non-empty string)", lineno)
            if wanted is not None and cid not in wanted:
                continue
            kept = {k: record[k] for k in LABEL_FIELDS if record.get(k) is not None}
            if isinstance(kept.get("distribution"), Mapping):
                kept["distribution"] = {k: round(v, 6) for k, v in kept["distribution"].items()}
            fh.write(json.dumps(kept, ensure_ascii=False, separators=(",", ":")) + "\n")
            written += 1
    return written


def filter_confidence(examples: Sequence[Example], min_confidence: float) -> list[Example]:
    return [e for e in examples if e.confidence >= min_confidence]


def read_pairs(path: str | Path) -> list[Pair]:
    """Pairs to score or benchmark (labels, if any, stay in ``meta``); any bad line is a :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such file")
    batch = read_pairs_jsonl(path)
    if batch.errors:
        first = batch.errors[0]
        more = f" (and {len(batch.errors) - 1} more)" if len(batch.errors) > 1 else ""
        raise DataError(path, f"{first.field + ': ' if first.field else ''}{first.message}{more}", first.row)
    if not batch.pairs:
        raise DataError(path, "no pairs")
    return batch.pairs
