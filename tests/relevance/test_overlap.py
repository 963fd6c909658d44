"""Overlap reasoning, checkable against the pair, and the answer targets of real rows built on it."""

from __future__ import annotations

from relevance.overlap import overlap_reasoning, query_terms, term_overlap
from relevance.parsing import parse_label
from teacher.targets import answer_target


def test_query_terms_drop_filler_words_unless_nothing_else_is_left() -> None:
    assert query_terms("paint for the deck with brush") == ["paint", "deck", "brush"]
    assert query_terms("for the") == ["for", "the"]


def test_plurals_find_singulars_and_measures_match_as_text() -> None:
    found, missing = term_overlap("steel stakes 4x4 batteries", "Metal Stake 4x4 in. Post, AA Battery")
    assert found == ["stakes", "4x4", "batteries"] and missing == ["steel"]


def test_the_reasoning_lists_found_and_missing_terms() -> None:
    text = overlap_reasoning("hampton bay ceiling fan", "Hampton Bay 52 in. Ceiling Fan Light Kit")
    assert text == "In the ad: hampton, bay, ceiling, fan.\nMissing: none."
    assert overlap_reasoning("zzz", "Drill").endswith("Missing: zzz.")


def test_a_real_row_ends_with_its_label_and_a_synthetic_row_keeps_its_trace() -> None:
    real = {"query": "angle bracket", "ad": {"title": "Simpson Angle"}, "meta": {"label": "Substitute"}}
    target = answer_target(real)
    assert target.startswith("In the ad: angle.\nMissing: bracket.") and parse_label(target) == "Substitute"
    trace = "Query wants: mouse.\nLabel: Exact"
    assert (
        answer_target({"query": "mouse", "ad": {"title": "x"}, "meta": {"label": "Exact", "reasoning": trace}}) == trace
    )
