"""Agreement numbers and consensus, against scikit-learn's kappa on the same labels."""

from __future__ import annotations

import pytest
from sklearn.metrics import cohen_kappa_score

from relevance.schemas import get_schema
from relevance.votes import uncertainty
from review.agreement import ReviewedPair, agreement, consensus

ESCI = get_schema("esci")


def test_consensus_is_the_majority_and_a_tie_goes_to_the_latest_review() -> None:
    assert consensus([("a", "Exact"), ("b", "Exact"), ("c", "Irrelevant")]) == "Exact"
    assert consensus([("a", "Exact"), ("b", "Irrelevant")]) == "Irrelevant"
    assert consensus([("a", "Irrelevant"), ("b", "Exact")]) == "Exact"
    assert consensus([]) is None


def test_uncertainty_orders_spread_votes_and_disagreements_first() -> None:
    sure = uncertainty("Exact", {"Exact": 1.0, "Substitute": 0.0, "Complement": 0.0, "Irrelevant": 0.0})
    split = uncertainty("Exact", {"Exact": 0.5, "Substitute": 0.5, "Complement": 0.0, "Irrelevant": 0.0})
    even = uncertainty("Exact", dict.fromkeys(ESCI.names, 0.25))
    assert sure == 0.0 and split == pytest.approx(0.5) and even == pytest.approx(1.0)
    assert uncertainty("Exact", {"Exact": 1.0, "Substitute": 0.0}, "Substitute") == pytest.approx(1.0)
    assert uncertainty("Exact", {"Exact": 1.0, "Substitute": 0.0}, "Exact") == 0.0
    assert uncertainty(None, {}) == 2.0


def test_kappas_confusion_and_bands_match_a_direct_count() -> None:
    pairs = [
        ReviewedPair("1", "Exact", 0.95, [("ann", "Exact"), ("bob", "Exact")]),
        ReviewedPair("2", "Exact", 0.55, [("ann", "Substitute"), ("bob", "Exact")]),
        ReviewedPair("3", "Irrelevant", 0.85, [("ann", "Irrelevant")]),
        ReviewedPair("4", "Substitute", 0.65, [("bob", "Irrelevant"), ("ann", "Irrelevant")]),
        ReviewedPair("5", None, None, [("ann", "Complement")]),
        ReviewedPair("6", "Exact", 0.99, []),
    ]
    a = agreement(pairs, ESCI)
    assert a["pairs_reviewed"] == 5 and a["reviews"] == 8 and a["reviewers"] == ["ann", "bob"]
    assert a["teacher_failed_reviewed"] == 1
    teacher = ["Exact", "Exact", "Exact", "Exact", "Irrelevant", "Substitute", "Substitute"]
    human = ["Exact", "Exact", "Substitute", "Exact", "Irrelevant", "Irrelevant", "Irrelevant"]
    tvh = a["teacher_vs_human"]
    assert tvh["n"] == 7 and tvh["agreement"] == pytest.approx(4 / 7, abs=1e-4)
    assert tvh["kappa"] == pytest.approx(cohen_kappa_score(human, teacher), abs=1e-4)
    hvh = a["human_vs_human"]  # ann vs bob on pairs 1, 2, 4
    assert hvh["n"] == 3 and hvh["agreement"] == pytest.approx(2 / 3, abs=1e-4)
    expected = cohen_kappa_score(["Exact", "Substitute", "Irrelevant"], ["Exact", "Exact", "Irrelevant"])
    assert hvh["kappa"] == pytest.approx(expected, abs=1e-4)
    matrix = a["confusion"]["matrix"]  # rows: consensus; columns: teacher
    assert sum(map(sum, matrix)) == 4
    e, s, i = ESCI.names.index("Exact"), ESCI.names.index("Substitute"), ESCI.names.index("Irrelevant")
    # pair 2's tie (ann: Substitute, bob: Exact) goes to bob, the later review
    assert matrix[e][e] == 2 and matrix[i][i] == 1 and matrix[i][s] == 1
    bands = {b["band"]: b for b in a["reliability"]}
    assert bands["0.9-1.0"]["n"] == 1 and bands["0.9-1.0"]["accuracy"] == 1.0
    assert bands["0.6-0.7"]["n"] == 1 and bands["0.6-0.7"]["accuracy"] == 0.0
    assert bands["0.0-0.5"]["n"] == 0 and bands["0.0-0.5"]["accuracy"] is None


def test_kappa_is_undefined_not_perfect_when_only_one_label_occurs() -> None:
    a = agreement([ReviewedPair("1", "Exact", 0.9, [("ann", "Exact")])], ESCI)
    assert a["teacher_vs_human"]["agreement"] == 1.0 and a["teacher_vs_human"]["kappa"] is None
    assert a["human_vs_human"]["n"] == 0 and a["human_vs_human"]["kappa"] is None
