"""Student-first labelling: the student keeps the pairs it is sure of, the teacher labels the rest.

A cascade at threshold t takes the student's label for every pair whose student confidence is at least t and the
teacher's label for the others, so the share of pairs above t is the share of teacher calls saved. The threshold
is chosen on dev, where the teacher's labels are known, as the lowest one whose cascade still agrees with the
teacher alone on a target share of pairs; on test it is then judged against human labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def cascade_labels(student: np.ndarray, teacher: np.ndarray, confidence: np.ndarray, threshold: float) -> np.ndarray:
    """Label indices: the student's where ``confidence >= threshold``, else the teacher's."""
    return np.where(confidence >= threshold, student, teacher)


@dataclass(frozen=True)
class Route:
    threshold: float
    student_share: float  # teacher calls saved
    agreement: float  # with the teacher's labels on every pair


def sweep(student: np.ndarray, teacher: np.ndarray, confidence: np.ndarray) -> list[Route]:
    """Every distinct cut: the m most confident pairs go to the student, m = 0..n (ties go together)."""
    n = len(confidence)
    if n == 0:
        return []
    order = np.argsort(-confidence, kind="stable")
    conf = confidence[order]
    same = (student[order] == teacher[order]).astype(float)
    # Routing the top m to the student changes the agreement only where the student and the teacher differ.
    disagree_in_top = np.concatenate([[0.0], np.cumsum(1.0 - same)])
    routes = [Route(float("inf"), 0.0, 1.0)]
    for m in range(1, n + 1):
        if m < n and conf[m] == conf[m - 1]:
            continue  # a threshold cannot split tied confidences
        routes.append(Route(float(conf[m - 1]), m / n, 1.0 - disagree_in_top[m] / n))
    return routes


def threshold_for_agreement(student: np.ndarray, teacher: np.ndarray, confidence: np.ndarray, target: float) -> Route:
    """The route that saves the most teacher calls while agreeing with the teacher on at least ``target``."""
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target agreement must be in [0, 1], got {target}")
    feasible = [r for r in sweep(student, teacher, confidence) if r.agreement >= target - 1e-12]
    return max(feasible, key=lambda r: (r.student_share, r.threshold))
