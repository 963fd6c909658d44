"""Self-consistency votes: majority, confidence over all samples, distribution over parseable ones."""

from __future__ import annotations

import pytest

from relevance.votes import vote


def test_majority_with_unparseable_samples() -> None:
    v = vote(["S", "Substitute", "E", None, "substitute"])
    assert v.label == "Substitute"
    assert v.confidence == pytest.approx(3 / 5)
    assert v.distribution == pytest.approx({"Exact": 0.25, "Substitute": 0.75, "Complement": 0.0, "Irrelevant": 0.0})
    assert list(v.distribution) == ["Exact", "Substitute", "Complement", "Irrelevant"]
    assert (v.n, v.n_valid, v.counts["Substitute"]) == (5, 4, 3)


def test_ties_break_by_schema_order_whatever_the_sample_order() -> None:
    assert vote(["I", "E", "I", "E"]).label == "Exact"
    assert vote(["E", "I", "E", "I"]).label == "Exact"
    assert vote(["C", "S"]).label == "Substitute"
    assert vote(["C", "S"]).confidence == 0.5


def test_nothing_parseable() -> None:
    v = vote([None, None])
    assert v.label is None and v.confidence == 0.0 and v.distribution == {} and v.n == 2


def test_rejects_non_labels() -> None:
    with pytest.raises(ValueError, match="Partial"):
        vote(["Partial"])
    assert vote(["Partial", "P", "E"], "wands").label == "Partial"
