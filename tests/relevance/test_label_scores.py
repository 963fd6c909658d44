"""Scored labels: the label distribution read from next-token log-probabilities at the answer's label line."""

from __future__ import annotations

import math

import pytest

from relevance.label_scores import reasoning_of, scored_answer, scored_label, scoring_prefix
from relevance.parsing import parse_label


def test_the_distribution_is_the_labels_probabilities_renormalised() -> None:
    logprobs = [math.log(0.6), math.log(0.2), math.log(0.1), math.log(0.05)]
    s = scored_label(logprobs, "esci")
    assert s.label == "Exact"
    assert list(s.distribution) == ["Exact", "Substitute", "Complement", "Irrelevant"]
    assert s.confidence == pytest.approx(0.6 / 0.95)
    assert sum(s.distribution.values()) == pytest.approx(1.0)
    assert s.mass == pytest.approx(0.95)  # what the model gave to any label at all


def test_a_tie_goes_to_the_label_earlier_in_schema_order() -> None:
    assert scored_label([-2.0, -1.0, -1.0, -3.0], "esci").label == "Substitute"


def test_log_probabilities_far_below_zero_stay_finite() -> None:
    s = scored_label([-900.0, -905.0, -910.0, -920.0], "esci")
    assert s.label == "Exact" and 0.99 < s.confidence < 1.0 and s.mass == 0.0


def test_one_log_probability_per_label() -> None:
    with pytest.raises(ValueError, match="3 log-probabilities for the 4 labels"):
        scored_label([-1.0, -2.0, -3.0], "esci")


def test_reasoning_is_cut_at_the_last_label_line_and_scored_after_label_cue() -> None:
    answer = "Query wants: drill.\nAd: drill.\nLabel: Exact"
    reasoning = reasoning_of(answer)
    assert reasoning == "Query wants: drill.\nAd: drill."
    assert scoring_prefix(reasoning) == "Query wants: drill.\nAd: drill.\nLabel:"
    assert scoring_prefix("") == "Label:"
    # An answer cut short before its label line is all reasoning.
    assert reasoning_of("Query wants: dri") == "Query wants: dri"


def test_the_scored_answer_parses_to_its_label() -> None:
    text = scored_answer("In the ad: drill.\nMissing: none.", "Substitute")
    assert text.endswith("\nLabel: Substitute") and parse_label(text) == "Substitute"
    assert scored_answer("", "Exact") == "Label: Exact"
