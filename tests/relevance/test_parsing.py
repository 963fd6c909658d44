"""The tolerant but never-guessing label parser."""

from __future__ import annotations

import pytest

from relevance.parsing import format_label_line, parse_label

PARSED = [
    ("Label: Exact", "Exact"),
    ("label: exact", "Exact"),
    ("LABEL: SUBSTITUTE", "Substitute"),
    ("**Label:** Exact", "Exact"),
    ("**Label**: Complement", "Complement"),
    ("Label: **E**", "Exact"),
    ("- Label: `I`", "Irrelevant"),
    ("### Label: Substitute", "Substitute"),
    ("Label: Exact.", "Exact"),
    ("Label: exact match!", "Exact"),
    ("Label: Substitute (the size differs)", "Substitute"),
    ("Label: Complement - a case for the phone", "Complement"),
    ("Label: C", "Complement"),
    ("Label: S.", "Substitute"),
    ("Label: E (Exact)", "Exact"),
    ('Label: "Irrelevant"', "Irrelevant"),
    ("Final label: Irrelevant", "Irrelevant"),
    ("Label: Complementary", "Complement"),
    ("Label: Exact, not Substitute", "Exact"),
    ("The brand matches.\nThe colour matches.\nLabel: Exact\n", "Exact"),
    ("Label: Exact\nOn second thought the size differs.\nLabel: Substitute", "Substitute"),
    ("<think>Label: Irrelevant?</think>\nLabel: Complement", "Complement"),
    # Chinese answers: full-width punctuation, 标签 lines, Chinese names and decorations.
    ("Label：Exact", "Exact"),
    ("Label：Ｅ", "Exact"),
    ("标签：完全相关", "Exact"),
    ("品牌一致，型号一致。\n标签: 不相关。", "Irrelevant"),
    ("最终标签：【可替代】", "Substitute"),
    ("标签：完全相关，因为品牌和型号都一致", "Exact"),
    ("标签：“互补品”", "Complement"),
    ("**标签**：无关", "Irrelevant"),
    ("标签：Substitute（尺寸不同）", "Substitute"),
]

UNPARSEABLE = [
    None,
    "",
    "The ad is an exact match.",
    "The label: Exact",  # not a Label line
    "Labels: E, S, C, I",
    "Label:",
    "Label: Exactly",
    "Label: Partial",  # not an ESCI label
    "Label: Relevant",
    "Label: Exact or Substitute",
    "Label: E/S",
    "Label: Substitute | Complement",
    "Label: E (Substitute)",
    "Label: Exact Irrelevant",
    "Label: I think it is Exact",  # a code must stand alone
    "Label: Exact\nLabel: unsure",  # the last Label line decides; no fallback to an earlier one
    "标签：完全相关或可替代",  # two labels
    "标签：完全相关、不相关",
    "标签：相关",  # not a label: relevant to what degree?
    "标签：完全相关的产品",  # a longer word, not the label
    "我认为完全相关",  # no label line
]


@pytest.mark.parametrize(("text", "want"), PARSED)
def test_parses(text: str, want: str) -> None:
    assert parse_label(text) == want


@pytest.mark.parametrize("text", UNPARSEABLE)
def test_returns_none_rather_than_guessing(text: str | None) -> None:
    assert parse_label(text) is None


def test_other_schemas() -> None:
    assert parse_label("Label: 3", "graded") == "Perfect"
    assert parse_label("Label: good", "graded") == "Good"
    assert parse_label("Label: 30", "graded") is None
    assert parse_label("Label: Partial", "wands") == "Partial"
    assert parse_label("Label: P", "wands") == "Partial"
    assert parse_label("Label: Relevant", "binary") == "Relevant"


def test_format_round_trips_every_label() -> None:
    from relevance.schemas import get_schema

    for name in ("esci", "graded", "binary", "wands"):
        schema = get_schema(name)
        for label in schema.names:
            assert format_label_line(label) == f"Label: {label}"
            assert parse_label("Some reasoning.\n" + format_label_line(label), schema) == label
