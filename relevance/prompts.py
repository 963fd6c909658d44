"""Prompt templates for the relevance teacher, and their versions.

A template's version is a short hash of its text together with the label schema's fingerprint, so editing a
word of either gives a new version. The version goes into every result line and into the label-cache key: a
label produced under one prompt is never served as the answer to another.

Three templates:

- ``compact`` (default): for the embedded tiny teacher with a short context; short label hints, short
  instructions, descriptions cut to 240 characters.
- ``brief``: for a pretrained LLM fine-tuned on labelled pairs (the SmolLM2 teacher): the label names without
  their definitions, which the model learnt from data. A prompt is about a third of ``compact``'s tokens, and
  on a CPU prompt tokens are most of the cost of training and of labelling.
- ``full``: for real LLMs used as they come; the schema's full guidelines and fuller instructions.

Both show the query and the ad's fields, the labels, and ask for brief reasoning followed by a final line
``Label: <label>`` (see :mod:`relevance.parsing`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from relevance.pairs import Pair, validate_pair
from relevance.parsing import LABEL_PREFIX
from relevance.schemas import DEFAULT_SCHEMA, LabelSchema, get_schema

DEFAULT_TEMPLATE = "compact"


@dataclass(frozen=True)
class PromptTemplate:
    """A system text and a user text with ``{query}``, ``{ad}``, ``{labels}``, ``{names}`` and ``{prefix}`` slots.

    ``guidelines`` chooses each label's ``hint`` (``short``), ``guideline`` (``full``) or nothing (``none``,
    for a template without a ``{labels}`` slot); descriptions longer
    than ``max_description_chars`` are cut, and at most ``max_attributes`` attributes are shown.
    """

    name: str
    system: str
    user: str
    guidelines: str = "short"
    max_description_chars: int = 240
    max_attributes: int = 8

    def version(self, schema: str | LabelSchema = DEFAULT_SCHEMA) -> str:
        """12 hex characters of sha256 over this template and the schema's fingerprint."""
        payload = json.dumps({"template": asdict(self), "schema": get_schema(schema).fingerprint()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


COMPACT = PromptTemplate(
    name="compact",
    system="You judge how relevant a shopping ad is to a search query.",
    user=(
        "Query: {query}\n"
        "Ad:\n{ad}\n"
        "Labels:\n{labels}\n"
        "Check the product type, brand, model and each detail the query asks for. "
        "Reason briefly, then end with the line '{prefix} <label>', one of {names}."
    ),
    guidelines="short",
    max_description_chars=240,
    max_attributes=8,
)

BRIEF = PromptTemplate(
    name="brief",
    system="You judge how relevant a shopping ad is to a search query.",
    user="Query: {query}\nAd:\n{ad}\nReason briefly, then end with the line '{prefix} <label>', one of {names}.",
    guidelines="none",
    max_description_chars=160,
    max_attributes=6,
)

FULL = PromptTemplate(
    name="full",
    system=(
        "You are an expert annotator of search relevance for an e-commerce marketplace. You judge whether an "
        "ad answers a shopper's search query, following the labelling guidelines exactly."
    ),
    user=(
        "Search query: {query}\n\n"
        "Ad:\n{ad}\n\n"
        "Labelling guidelines:\n{labels}\n\n"
        "First identify what the query asks for: the product type and every constraint it states (brand, "
        "model, colour, size, capacity, material, gender and so on). Then compare the ad with each of them, "
        "allowing for spelling mistakes, synonyms and unit variants such as 1 TB = 1000 GB. Keep the reasoning "
        "short. Finish with exactly one final line of the form '{prefix} <label>', where <label> is one of "
        "{names}."
    ),
    guidelines="full",
    max_description_chars=1500,
    max_attributes=32,
)

_TEMPLATES: dict[str, PromptTemplate] = {t.name: t for t in (COMPACT, BRIEF, FULL)}


def get_template(template: str | PromptTemplate = DEFAULT_TEMPLATE) -> PromptTemplate:
    """The registered template called ``template`` (a template passes through)."""
    if isinstance(template, PromptTemplate):
        return template
    try:
        return _TEMPLATES[template]
    except KeyError:
        raise KeyError(f"unknown prompt template {template!r}; known: {', '.join(sorted(_TEMPLATES))}") from None


def template_names() -> list[str]:
    return sorted(_TEMPLATES)


def prompt_version(
    template: str | PromptTemplate = DEFAULT_TEMPLATE, schema: str | LabelSchema = DEFAULT_SCHEMA
) -> str:
    """The version string recorded with every label produced under ``template`` and ``schema``."""
    return get_template(template).version(schema)


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, ending in ``...`` where it was cut."""
    return text if len(text) <= limit else text[: max(0, limit - 3)].rstrip() + "..."


def render_ad(pair: Pair, template: PromptTemplate) -> str:
    """The ad's fields, one per line, absent fields left out; meta is never shown."""
    ad = pair.ad
    lines = [f"Title: {ad.title}"]
    if ad.brand:
        lines.append(f"Brand: {ad.brand}")
    if ad.category:
        lines.append(f"Category: {ad.category}")
    if ad.attributes:
        items = list(ad.attributes.items())[: template.max_attributes]
        lines.append("Attributes: " + "; ".join(f"{k}: {v}" for k, v in items))
    if ad.description:
        lines.append(f"Description: {cut(ad.description, template.max_description_chars)}")
    return "\n".join(lines)


def render_labels(schema: LabelSchema, template: PromptTemplate) -> str:
    text = (lambda lab: lab.guideline) if template.guidelines == "full" else (lambda lab: lab.hint)
    return "\n".join(f"- {lab.name}: {text(lab)}" for lab in schema.labels)


def _as_pair(pair: Pair | Mapping[str, Any]) -> Pair:
    return pair if isinstance(pair, Pair) else validate_pair(pair)


def build_messages(
    pair: Pair | Mapping[str, Any],
    schema: str | LabelSchema = DEFAULT_SCHEMA,
    template: str | PromptTemplate = DEFAULT_TEMPLATE,
) -> list[dict[str, str]]:
    """Chat messages (system, user) asking the teacher to label ``pair``."""
    sch, tpl, p = get_schema(schema), get_template(template), _as_pair(pair)
    user = tpl.user.format(
        query=p.query,
        ad=render_ad(p, tpl),
        labels=render_labels(sch, tpl),
        names=", ".join(sch.names),
        prefix=LABEL_PREFIX,
    )
    return [{"role": "system", "content": tpl.system}, {"role": "user", "content": user}]


def build_prompt(
    pair: Pair | Mapping[str, Any],
    schema: str | LabelSchema = DEFAULT_SCHEMA,
    template: str | PromptTemplate = DEFAULT_TEMPLATE,
) -> str:
    """The same request as plain text, for models without a chat template; ends where the answer begins."""
    system, user = build_messages(pair, schema, template)
    return f"{system['content']}\n\n{user['content']}\n\nAnswer:\n"
