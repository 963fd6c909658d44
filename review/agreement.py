"""Agreement between the teacher and the humans who reviewed it, and between the humans: the numbers a
relevance team reports upward. Plain functions over reviewed pairs; no database here."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from relevance.metrics import cohen_kappa
from relevance.schemas import LabelSchema

# Teacher confidence bands of the reliability table: [lower, upper), the last one closed.
BANDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass(frozen=True)
class ReviewedPair:
    """One pair with its teacher label (None: the teacher failed) and its reviews, oldest first."""

    custom_id: str
    teacher_label: str | None
    teacher_confidence: float | None
    reviews: list[tuple[str, str]] = field(default_factory=list)  # (reviewer, label)


def consensus(reviews: Sequence[tuple[str, str]]) -> str | None:
    """The reviewers' label: the most common; a tie goes to the label of the latest review among the tied."""
    if not reviews:
        return None
    counts = Counter(label for _, label in reviews)
    top = max(counts.values())
    tied = {label for label, n in counts.items() if n == top}
    return next(label for _, label in reversed(reviews) if label in tied)


def _kappa(a: Sequence[str], b: Sequence[str], schema: LabelSchema) -> float | None:
    if not a:
        return None
    value = cohen_kappa(list(a), list(b), schema)
    # One label on both sides: kappa is undefined (0/0), not 1.
    return None if math.isnan(value) else round(value, 4)


def agreement(pairs: Sequence[ReviewedPair], schema: LabelSchema) -> dict[str, Any]:
    """Teacher-vs-human and human-vs-human Cohen's kappa, the confusion matrix (human consensus by teacher label)
    and accuracy by teacher confidence band."""
    reviewed = [p for p in pairs if p.reviews]
    teacher, human = [], []
    for p in reviewed:
        if p.teacher_label is None:
            continue
        for _, label in p.reviews:  # every review counts: two reviewers who agree with the teacher, twice
            teacher.append(p.teacher_label)
            human.append(label)
    by_pair: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    for p in reviewed:
        latest = dict(p.reviews)
        for (r1, l1), (r2, l2) in itertools.combinations(sorted(latest.items()), 2):
            a, b = by_pair.setdefault((r1, r2), ([], []))
            a.append(l1)
            b.append(l2)
    pooled_a = [x for a, _ in by_pair.values() for x in a]
    pooled_b = [x for _, b in by_pair.values() for x in b]
    names = list(schema.names)
    matrix = [[0] * len(names) for _ in names]
    bands = [
        {"lower": lo, "upper": hi, "n": 0, "agree": 0, "confidence_sum": 0.0} for lo, hi in itertools.pairwise(BANDS)
    ]
    failed_reviewed = 0
    for p in reviewed:
        gold = consensus(p.reviews)
        if p.teacher_label is None or gold is None:
            failed_reviewed += p.teacher_label is None
            continue
        matrix[names.index(gold)][names.index(p.teacher_label)] += 1
        if p.teacher_confidence is not None:
            conf = min(max(p.teacher_confidence, 0.0), 1.0)
            band = next(b for b in bands if conf < b["upper"] or b["upper"] == 1.0)
            band["n"] += 1
            band["agree"] += gold == p.teacher_label
            band["confidence_sum"] += conf
    agree = sum(t == h for t, h in zip(teacher, human, strict=True))
    return {
        "labels": names,
        "pairs_reviewed": len(reviewed),
        "reviews": sum(len(p.reviews) for p in reviewed),
        "reviewers": sorted({r for p in reviewed for r, _ in p.reviews}),
        "teacher_failed_reviewed": failed_reviewed,
        "teacher_vs_human": {
            "n": len(teacher),
            "agreement": round(agree / len(teacher), 4) if teacher else None,
            "kappa": _kappa(human, teacher, schema),
        },
        "human_vs_human": {
            "n": len(pooled_a),
            "agreement": round(sum(x == y for x, y in zip(pooled_a, pooled_b, strict=True)) / len(pooled_a), 4)
            if pooled_a
            else None,
            "kappa": _kappa(pooled_a, pooled_b, schema),
            "by_pair": [
                {"reviewers": list(k), "n": len(a), "kappa": _kappa(a, b, schema)} for k, (a, b) in by_pair.items()
            ],
        },
        # rows: the reviewers' consensus; columns: the teacher's label
        "confusion": {"rows": "human", "columns": "teacher", "matrix": matrix},
        "reliability": [
            {
                "band": f"{b['lower']:.1f}-{b['upper']:.1f}",
                "n": b["n"],
                "accuracy": round(b["agree"] / b["n"], 4) if b["n"] else None,
                "mean_confidence": round(b["confidence_sum"] / b["n"], 4) if b["n"] else None,
            }
            for b in bands
        ],
    }
