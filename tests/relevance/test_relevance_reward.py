"""The relevance reward follows the agpo reward protocol and scores parsed labels."""

from __future__ import annotations

import pytest

from agpo.rewards import RewardFunction, score
from relevance.reward import RelevanceReward, graded_relevance_reward, relevance_reward


def test_exact_reward_through_the_protocol_checks() -> None:
    reward = relevance_reward()
    assert isinstance(reward, RewardFunction) and reward.name == "relevance_label"
    completions = [
        "Brand and size match.\nLabel: Exact",
        "Label: **S**",
        "Label: Complement",
        "no idea",
        "Label: Exact or Substitute",
    ]
    refs = ["Exact", "Substitute", "Irrelevant", "Exact", "E"]
    assert score(reward, completions, refs) == [1.0, 1.0, 0.0, 0.0, 0.0]


def test_references_may_be_codes_but_must_be_labels() -> None:
    reward = relevance_reward()
    assert reward(["Label: Exact"], ["e"]) == [1.0]
    with pytest.raises(KeyError, match="Partial"):
        reward(["Label: Exact"], ["Partial"])
    with pytest.raises(ValueError, match="2 completions but 1 references"):
        reward(["a", "b"], ["Exact"])


def test_graded_by_gain_distance() -> None:
    reward = graded_relevance_reward()
    got = score(reward, ["Label: S", "Label: I", "Label: C", "Label: Exact", "junk"], ["E", "S", "I", "E", "E"])
    assert got == pytest.approx([0.1, 0.9, 0.99, 1.0, 0.0])


def test_graded_by_grade_distance() -> None:
    reward = RelevanceReward(graded=True, distance="grade")
    assert reward.name == "relevance_graded_grade"
    got = score(reward, ["Label: S", "Label: I", "Label: C"], ["E", "E", "S"])
    assert got == pytest.approx([2 / 3, 0.0, 2 / 3])


def test_other_schema() -> None:
    reward = RelevanceReward("wands", graded=True)
    assert score(reward, ["Label: Partial", "Label: Irrelevant"], ["Exact", "Exact"]) == pytest.approx([0.5, 0.0])
