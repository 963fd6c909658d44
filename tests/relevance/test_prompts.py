"""Prompt templates: content, compactness and versions that follow every change."""

from __future__ import annotations

import dataclasses
import re

import pytest

from relevance.prompts import COMPACT, FULL, build_messages, build_prompt, get_template, prompt_version
from relevance.schemas import Label, LabelSchema, get_schema

PAIR = {
    "custom_id": "p1",
    "query": "novia 128gb phone",
    "ad": {
        "title": "Novia NX-450 Smartphone",
        "brand": "Novia",
        "category": "Electronics > Mobile Phones",
        "attributes": {"Storage": "128 GB", "Colour": "Black"},
        "description": "A phone. " + "x" * 2000,
    },
    "meta": {"label": "Exact", "secret": "do-not-show"},
}


def test_messages_show_query_ad_fields_and_labels() -> None:
    system, user = build_messages(PAIR)
    assert system["role"] == "system" and user["role"] == "user"
    text = user["content"]
    for expected in ("novia 128gb phone", "Title: Novia NX-450 Smartphone", "Brand: Novia", "Storage: 128 GB"):
        assert expected in text
    assert "Category: Electronics > Mobile Phones" in text
    for name in get_schema("esci").names:
        assert f"- {name}:" in text
    assert "Label: <label>" in text
    assert "do-not-show" not in text  # meta never reaches the teacher
    assert "x" * 300 not in text  # description cut for the compact template


def test_plain_prompt_is_the_same_request() -> None:
    prompt = build_prompt(PAIR)
    system, user = build_messages(PAIR)
    assert prompt.startswith(system["content"]) and user["content"] in prompt
    assert prompt.endswith("Answer:\n")


def test_full_template_uses_full_guidelines() -> None:
    text = build_messages(PAIR, template="full")[1]["content"]
    for label in get_schema("esci").labels:
        assert label.guideline in text
    assert "x" * 2000 not in text and "x" * 1000 in text


def test_compact_boilerplate_is_short() -> None:
    tiny = {"custom_id": "p", "query": "q", "ad": {"title": "t"}}
    words = len(build_prompt(tiny).split()) - 2  # less the query and the title
    assert words < 120
    assert len(build_prompt(tiny, template="full").split()) - 2 < 250


def test_version_is_a_short_stable_hash() -> None:
    v = prompt_version()
    assert re.fullmatch(r"[0-9a-f]{12}", v)
    assert v == prompt_version("compact", "esci") == COMPACT.version()
    assert v != prompt_version("full") != prompt_version("compact", "binary")


@pytest.mark.parametrize("field", ["system", "user", "max_description_chars"])
def test_any_template_change_changes_the_version(field: str) -> None:
    value = getattr(COMPACT, field)
    changed = dataclasses.replace(COMPACT, **{field: value + (" " if isinstance(value, str) else 1)})
    assert changed.version() != COMPACT.version()


def test_schema_change_changes_the_version() -> None:
    esci = get_schema("esci")
    edited = LabelSchema(
        "esci", (*esci.labels[:3], Label("Irrelevant", "I", 0, 0.0, "Unrelated.", "unrelated")), esci.description
    )
    assert FULL.version(edited) != FULL.version(esci)


def test_unknown_template() -> None:
    with pytest.raises(KeyError, match="compact"):
        get_template("nope")
