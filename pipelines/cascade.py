"""Student-first labelling inside a job (``mode: cascade``): the distilled student scores each pair the label
cache cannot answer; a pair whose student confidence reaches the job's threshold takes the student's label
(``source: student``), the rest go to the teacher.

The threshold comes from ``agpo student cascade``, which picks it on dev for a target agreement with the teacher
(:mod:`student.cascade`). Student labels never enter the label cache: the cache holds teacher answers only, so a
later teacher-only job never receives a student's label.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from pipelines.annotate import PairOutcome
from relevance.schemas import LabelSchema


class PairScorer(Protocol):
    """What the cascade needs of a student (``student.scorer.Scorer`` is one)."""

    labels: list[str]
    model_version: str

    def score(self, pairs: Sequence[Mapping[str, Any]]) -> Sequence[Any]: ...


_scorers: dict[tuple[str, str], PairScorer] = {}
_lock = threading.Lock()


def load_student(export_dir: str, variant: str = "auto", threads: int = 1) -> PairScorer:
    """The process's scorer for an export dir, loaded once (a worker labels many chunks)."""
    with _lock:
        key = (export_dir, variant)
        if key not in _scorers:
            from student.scorer import Scorer, pick_variant

            _scorers[key] = Scorer(export_dir, pick_variant(export_dir, variant), threads=threads)
        return _scorers[key]


def student_outcomes(
    pairs: Sequence[Mapping[str, Any]],
    scorer: PairScorer,
    threshold: float,
    schema: LabelSchema,
    prompt_version: str,
) -> tuple[dict[int, PairOutcome], dict[int, dict[str, Any]]]:
    """The student's outcome for each pair (by index) whose top probability is at least ``threshold``, and its
    guess (``{"label", "confidence"}``) on every other pair, which the teacher labels: review puts the pairs where
    the two disagree first. A label outside the job's schema is never taken."""
    if not pairs:
        return {}, {}
    scores = scorer.score(pairs)
    taken: dict[int, PairOutcome] = {}
    guesses: dict[int, dict[str, Any]] = {}
    for i, score in enumerate(scores):
        confidence = float(np.max(list(score.probabilities.values())))
        if not (confidence >= threshold and score.label in schema.names):
            guesses[i] = {"label": score.label, "confidence": round(confidence, 6)}
        else:
            taken[i] = PairOutcome(
                label=score.label,
                confidence=confidence,
                distribution={k: round(float(v), 6) for k, v in score.probabilities.items()},
                reasoning="",
                samples=[],
                teacher=f"student:{score.model_version}",
                prompt_version=prompt_version,
                source="student",
            )
    return taken, guesses
