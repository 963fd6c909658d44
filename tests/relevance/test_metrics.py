"""Metrics against small hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from relevance.metrics import (
    accuracy,
    cohen_kappa,
    confusion_matrix,
    evaluate_labels,
    expected_calibration_error,
    macro_f1,
    ndcg_at_k,
    per_class,
    reliability_bins,
)

TRUE = ["E", "E", "S", "C", "I", "I"]
PRED = ["E", "S", "S", "C", "I", None]


def test_accuracy_and_macro_f1() -> None:
    assert accuracy(TRUE, PRED) == pytest.approx(4 / 6)
    # F1: Exact 2/3, Substitute 2/3, Complement 1, Irrelevant 2/3 (the unparsed one is a miss).
    assert macro_f1(TRUE, PRED) == pytest.approx(0.75)


def test_per_class() -> None:
    scores = per_class(TRUE, PRED)
    assert list(scores) == ["Exact", "Substitute", "Complement", "Irrelevant"]
    assert (scores["Exact"].precision, scores["Exact"].recall, scores["Exact"].support) == (1.0, 0.5, 2)
    assert (scores["Substitute"].precision, scores["Substitute"].recall) == (0.5, 1.0)
    assert scores["Irrelevant"].f1 == pytest.approx(2 / 3)


def test_confusion_matrix_keeps_unparsed_visible() -> None:
    expected = [[1, 1, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 1]]
    assert confusion_matrix(TRUE, PRED).tolist() == expected
    assert confusion_matrix(TRUE, PRED, include_unparsed=False).shape == (4, 4)


def test_cohen_kappa() -> None:
    # p_o = 4/6; p_e = (2*1 + 1*2 + 1*1 + 2*1 + 0*1) / 36 = 7/36.
    assert cohen_kappa(TRUE, PRED) == pytest.approx(17 / 29)
    assert cohen_kappa(["E", "S", "I"], ["E", "S", "I"]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="weighted kappa"):
        cohen_kappa(TRUE, PRED, weights="quadratic")
    assert cohen_kappa(TRUE, ["E", "S", "S", "C", "I", "C"], weights="linear") > cohen_kappa(
        TRUE, ["E", "S", "S", "C", "I", "E"], weights="linear"
    )


def test_label_validation() -> None:
    with pytest.raises(ValueError, match="Partial"):
        accuracy(["E"], ["Partial"])
    with pytest.raises(ValueError, match="2 true labels but 1"):
        accuracy(["E", "S"], ["E"])


def test_ndcg_per_query_average() -> None:
    qids = ["a", "a", "a", "b", "b", "c", "d", "d"]
    true = ["E", "S", "I", "C", "E", "E", "I", "I"]
    score = [0.2, 0.9, 0.1, 0.5, 0.7, 0.3, 0.1, 0.2]
    ln3 = math.log2(3)
    ndcg_a = (0.1 + 1 / ln3) / (1 + 0.1 / ln3)  # ranked S, E, I
    # b is ranked perfectly; c (one ad) and d (nothing relevant) are skipped.
    assert ndcg_at_k(qids, true, score) == pytest.approx((ndcg_a + 1.0) / 2)
    assert ndcg_at_k(qids[:3], true[:3], score[:3], k=1) == pytest.approx(0.1)
    assert math.isnan(ndcg_at_k(["c"], ["E"], [1.0]))


def test_ndcg_by_predicted_labels_averages_ties() -> None:
    ln3 = math.log2(3)
    tied = 0.55 * (1 + 1 / ln3) / (1 + 0.1 / ln3)  # both predicted Substitute: the order is a coin flip
    assert ndcg_at_k(["q", "q"], ["E", "S"], ["S", "S"]) == pytest.approx(tied)
    assert ndcg_at_k(["q", "q"], ["E", "S"], ["E", "S"]) == pytest.approx(1.0)
    assert ndcg_at_k(["q", "q"], ["E", "S"], [None, "S"]) < 1.0


def test_ece_known_case() -> None:
    conf = [0.95, 0.95, 0.55, 0.55]
    correct = [True, False, True, True]
    # Bin (0.9, 1]: accuracy 0.5 vs 0.95; bin (0.5, 0.6]: accuracy 1 vs 0.55; each holds half the samples.
    assert expected_calibration_error(conf, correct, n_bins=10) == pytest.approx(0.45)
    assert expected_calibration_error(conf, correct, n_bins=1) == pytest.approx(abs(0.75 - 0.75))
    assert expected_calibration_error([1.0, 0.0], [True, False]) == 0.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([1.5], [True])


def test_bins_are_right_closed() -> None:
    bins = reliability_bins([0.0, 0.3, 0.3000001, 1.0], [True] * 4, n_bins=10)
    assert [b.count for b in bins] == [1, 1, 1, 1]
    assert [b.lower for b in bins] == pytest.approx([0.0, 0.2, 0.3, 0.9])
    assert [b.upper for b in bins] == pytest.approx([0.1, 0.3, 0.4, 1.0])


def test_evaluate_labels_report() -> None:
    report = evaluate_labels(TRUE, PRED, query_ids=["a"] * 6, confidences=[0.9] * 6)
    assert report["n"] == 6 and report["unparsed"] == 1
    assert report["macro_f1"] == pytest.approx(0.75)
    assert report["confusion"]["columns"][-1] == "<unparsed>"
    assert np.isfinite(report["ndcg@10"]) and report["ece"] == pytest.approx(abs(4 / 6 - 0.9))
