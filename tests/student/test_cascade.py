"""Student-first labelling: routing by the student's confidence, and thresholds chosen for agreement."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from student.cascade import cascade_labels, sweep, threshold_for_agreement


def _random(seed: int, n: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    student = rng.integers(0, 4, n)
    teacher = np.where(rng.random(n) < 0.7, student, rng.integers(0, 4, n))
    # Rounded, so that several pairs share a confidence and the sweep must keep them together.
    confidence = np.round(rng.uniform(0.25, 1.0, n), 2)
    return student, teacher, confidence


def _brute(student: np.ndarray, teacher: np.ndarray, confidence: np.ndarray, t: float) -> tuple[float, float]:
    pred = cascade_labels(student, teacher, confidence, t)
    return float((confidence >= t).mean()), float((pred == teacher).mean())


def test_cascade_takes_the_student_label_exactly_at_or_above_the_threshold() -> None:
    student, teacher, conf = np.array([0, 1, 2]), np.array([3, 3, 3]), np.array([0.9, 0.5, 0.49])
    assert cascade_labels(student, teacher, conf, 0.5).tolist() == [0, 1, 3]
    assert cascade_labels(student, teacher, conf, np.inf).tolist() == [3, 3, 3]


@pytest.mark.parametrize("seed", range(5))
def test_every_route_of_the_sweep_is_what_its_threshold_does(seed: int) -> None:
    student, teacher, conf = _random(seed)
    routes = sweep(student, teacher, conf)
    assert routes[0].student_share == 0.0 and routes[0].agreement == 1.0 and routes[-1].student_share == 1.0
    assert len(routes) == len(set(conf.tolist())) + 1, "one route per distinct confidence, plus teacher-only"
    for r in routes:
        share, agreement = _brute(student, teacher, conf, r.threshold)
        assert r.student_share == pytest.approx(share) and r.agreement == pytest.approx(agreement)
    # Giving the student more pairs can only lose agreement with the teacher.
    assert all(a.agreement >= b.agreement for a, b in itertools.pairwise(routes))


@pytest.mark.parametrize("target", [1.0, 0.95, 0.9, 0.8, 0.5, 0.0])
def test_the_chosen_threshold_saves_the_most_calls_that_still_meet_the_target(target: float) -> None:
    student, teacher, conf = _random(7)
    route = threshold_for_agreement(student, teacher, conf, target)
    share, agreement = _brute(student, teacher, conf, route.threshold)
    assert agreement >= target and share == pytest.approx(route.student_share)
    best = max(s for t in [*set(conf.tolist()), np.inf] for s, a in [_brute(student, teacher, conf, t)] if a >= target)
    assert route.student_share == pytest.approx(best)


def test_a_target_outside_zero_to_one_is_refused() -> None:
    student, teacher, conf = _random(1)
    with pytest.raises(ValueError, match="target agreement"):
        threshold_for_agreement(student, teacher, conf, 1.2)
