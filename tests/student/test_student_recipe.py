"""The training recipe's arithmetic: default epochs from a step budget, and class-balanced weights."""

from __future__ import annotations

import pytest

from student.data import Example
from student.train import MAX_AUTO_EPOCHS, TrainConfig, _weights, class_weights, epochs_for


def _example(label: str, confidence: float = 1.0) -> Example:
    return Example("id", "q", "ad", label, (1.0, 0.0, 0.0, 0.0), confidence, "q:q")


@pytest.mark.parametrize(
    ("n", "expected"),
    [(2_000, 8.0), (16_000, 1.0), (40_000, 1.0), (100, float(MAX_AUTO_EPOCHS)), (7_000, 3.0)],
)
def test_default_epochs_reach_the_step_budget(n: int, expected: float) -> None:
    assert epochs_for(TrainConfig(batch_size=32, min_steps=500), n) == expected


def test_explicit_epochs_win() -> None:
    assert epochs_for(TrainConfig(epochs=1.5), 2_000) == 1.5


def test_class_weights_give_every_class_the_same_total() -> None:
    examples = [_example("Exact")] * 6 + [_example("Substitute")] * 3 + [_example("Irrelevant")]
    weights = class_weights(examples)
    totals = {label: weights[label] * sum(e.label == label for e in examples) for label in weights}
    assert totals == pytest.approx({"Exact": 10 / 3, "Substitute": 10 / 3, "Irrelevant": 10 / 3})


def test_balance_multiplies_confidence_weights() -> None:
    examples = [_example("Exact", 0.5), _example("Exact", 1.0), _example("Irrelevant", 0.8)]
    config = TrainConfig(class_balance=True, confidence_weighting=True)
    assert _weights(examples, config) == pytest.approx([0.5 * 0.75, 0.75, 0.8 * 1.5])
    assert _weights(examples, TrainConfig(class_balance=False)) == [1.0, 1.0, 1.0]


def test_invalid_recipes_are_named() -> None:
    with pytest.raises(ValueError, match="min_steps"):
        TrainConfig(min_steps=0).validate()
    with pytest.raises(ValueError, match="evaluations"):
        TrainConfig(evaluations=0).validate()
