"""Evaluation metrics on label lists: agreement, per-class quality, ranking quality and calibration.

Labels are names, codes or aliases of a schema; a prediction may be None (the teacher's answer was not
parseable), which counts as wrong everywhere: it is never a hit, it is a miss for its true class, and it is
kept as its own column in the confusion matrix so that failures stay visible.

Classification metrics come from scikit-learn; NDCG is scikit-learn's per query, averaged over queries; ECE is
the usual equal-width-bin estimate, which scikit-learn does not provide.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn import metrics as skm

from relevance.schemas import DEFAULT_SCHEMA, LabelSchema, get_schema

UNPARSED = "<unparsed>"


def _names(labels: Sequence[str | None], sch: LabelSchema, what: str) -> list[str]:
    out = []
    for raw in labels:
        if raw is None:
            out.append(UNPARSED)
            continue
        name = sch.normalize(raw)
        if name is None:
            raise ValueError(f"{what} label {raw!r} is not a label of schema {sch.name!r}")
        out.append(name)
    return out


def _pair(
    y_true: Sequence[str], y_pred: Sequence[str | None], schema: str | LabelSchema
) -> tuple[LabelSchema, list[str], list[str]]:
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    if not y_true:
        raise ValueError("no labels to evaluate")
    sch = get_schema(schema)
    if any(t is None for t in y_true):
        raise ValueError("true labels must not be None")
    return sch, _names(y_true, sch, "true"), _names(y_pred, sch, "predicted")


def accuracy(y_true: Sequence[str], y_pred: Sequence[str | None], schema: str | LabelSchema = DEFAULT_SCHEMA) -> float:
    """Share of predictions equal to the true label."""
    _, t, p = _pair(y_true, y_pred, schema)
    return float(skm.accuracy_score(t, p))


def _present(sch: LabelSchema, t: list[str], p: list[str]) -> list[str]:
    seen = set(t) | set(p)
    return [name for name in sch.names if name in seen]


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str | None], schema: str | LabelSchema = DEFAULT_SCHEMA) -> float:
    """Unweighted mean F1 over the schema labels that occur in the truth or the predictions."""
    sch, t, p = _pair(y_true, y_pred, schema)
    return float(skm.f1_score(t, p, labels=_present(sch, t, p), average="macro", zero_division=0))


@dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int


def per_class(
    y_true: Sequence[str], y_pred: Sequence[str | None], schema: str | LabelSchema = DEFAULT_SCHEMA
) -> dict[str, ClassScores]:
    """Precision, recall, F1 and support (true count) for every schema label, in schema order."""
    sch, t, p = _pair(y_true, y_pred, schema)
    prec, rec, f1, sup = skm.precision_recall_fscore_support(t, p, labels=sch.names, zero_division=0)
    return {
        name: ClassScores(float(prec[i]), float(rec[i]), float(f1[i]), int(sup[i])) for i, name in enumerate(sch.names)
    }


def confusion_matrix(
    y_true: Sequence[str],
    y_pred: Sequence[str | None],
    schema: str | LabelSchema = DEFAULT_SCHEMA,
    *,
    include_unparsed: bool = True,
) -> np.ndarray:
    """Counts, rows = true label, columns = predicted label, both in schema order.

    With ``include_unparsed`` a last column counts the unparseable predictions of each true label.
    """
    sch, t, p = _pair(y_true, y_pred, schema)
    labels = [*sch.names, UNPARSED]
    cm = skm.confusion_matrix(t, p, labels=labels)[: len(sch.names)]
    return cm if include_unparsed else cm[:, : len(sch.names)]


def cohen_kappa(
    y_true: Sequence[str],
    y_pred: Sequence[str | None],
    schema: str | LabelSchema = DEFAULT_SCHEMA,
    *,
    weights: Literal["linear", "quadratic"] | None = None,
) -> float:
    """Cohen's kappa between truth and predictions; ``weights`` gives the weighted kappa in grade order.

    Unparseable predictions are an extra category for plain kappa; weighted kappa needs an order, so there they
    are an error.
    """
    sch, t, p = _pair(y_true, y_pred, schema)
    if weights is None:
        labels = [*sch.names, UNPARSED]
    else:
        if UNPARSED in p:
            raise ValueError("weighted kappa needs every prediction to be a label; drop or fill unparsed ones")
        labels = sorted(sch.names, key=lambda n: -sch.grade(n))
    value = skm.cohen_kappa_score(t, p, labels=labels, weights=weights)
    return float(value)


def ndcg_at_k(
    query_ids: Sequence[Hashable],
    y_true: Sequence[str],
    y_score: Sequence[float] | Sequence[str | None],
    schema: str | LabelSchema = DEFAULT_SCHEMA,
    *,
    k: int = 10,
) -> float:
    """Graded NDCG@k of ranking each query's ads by ``y_score``, averaged over queries.

    Relevance is the schema gain of the true label. ``y_score`` is a float per ad (a model score, an expected
    gain) or a predicted label, which ranks by its gain (an unparsed one last); ties are averaged over their
    orders (scikit-learn's tie handling), so a ranking by labels is not credited for an arbitrary order.
    Queries with a single ad, or with no ad of positive gain, say nothing about ranking and are skipped; NaN when
    no query is left.
    """
    sch = get_schema(schema)
    if not (len(query_ids) == len(y_true) == len(y_score)):
        raise ValueError("query_ids, y_true and y_score must have the same length")
    gains = [sch.gain(label) for label in y_true]
    groups = _ranked_groups(query_ids, gains)
    scores: list[float] = []
    for s in y_score:
        if s is None:
            scores.append(min(sch.gains.values()) - 1.0)
        elif isinstance(s, str):
            scores.append(sch.gain(s))
        else:
            scores.append(float(s))
    values = [skm.ndcg_score([[gains[i] for i in idx]], [[scores[i] for i in idx]], k=k) for idx in groups]
    return float(np.mean(values)) if values else math.nan


def _ranked_groups(query_ids: Sequence[Hashable], gains: Sequence[float]) -> list[list[int]]:
    groups: dict[Hashable, list[int]] = {}
    for i, q in enumerate(query_ids):
        groups.setdefault(q, []).append(i)
    return [idx for idx in groups.values() if len(idx) >= 2 and max(gains[i] for i in idx) > 0]


def ranked_queries(
    query_ids: Sequence[Hashable], y_true: Sequence[str], schema: str | LabelSchema = DEFAULT_SCHEMA
) -> int:
    """How many queries NDCG averages over: those with at least two ads, one of them of positive gain."""
    sch = get_schema(schema)
    return len(_ranked_groups(query_ids, [sch.gain(label) for label in y_true]))


@dataclass(frozen=True)
class CalibrationBin:
    lower: float
    upper: float
    count: int
    confidence: float
    accuracy: float


def reliability_bins(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> list[CalibrationBin]:
    """Equal-width bins over [0, 1], each ``(lower, upper]`` (the first also holds 0); empty bins omitted."""
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    conf = np.asarray(confidences, dtype=float)
    hit = np.asarray(correct, dtype=float)
    if conf.shape != hit.shape:
        raise ValueError(f"{conf.size} confidences but {hit.size} correctness values")
    if conf.size and (np.any(conf < 0) or np.any(conf > 1) or not np.all(np.isfinite(conf))):
        raise ValueError("confidences must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.searchsorted(edges[1:-1], conf, side="left")
    out = []
    for b in range(n_bins):
        mask = which == b
        if mask.any():
            out.append(
                CalibrationBin(
                    float(edges[b]),
                    float(edges[b + 1]),
                    int(mask.sum()),
                    float(conf[mask].mean()),
                    float(hit[mask].mean()),
                )
            )
    return out


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> float:
    """ECE = sum over bins of (bin size / N) * |accuracy(bin) - mean confidence(bin)|; 0 for no samples."""
    bins = reliability_bins(confidences, correct, n_bins)
    total = sum(b.count for b in bins)
    if total == 0:
        return 0.0
    return float(sum(b.count / total * abs(b.accuracy - b.confidence) for b in bins))


def evaluate_labels(
    y_true: Sequence[str],
    y_pred: Sequence[str | None],
    schema: str | LabelSchema = DEFAULT_SCHEMA,
    *,
    query_ids: Sequence[Hashable] | None = None,
    confidences: Sequence[float] | None = None,
    k: int = 10,
    n_bins: int = 10,
) -> dict[str, Any]:
    """Every metric at once, as plain JSON-ready values, for evaluation reports."""
    sch, t, p = _pair(y_true, y_pred, schema)
    report: dict[str, Any] = {
        "schema": sch.name,
        "n": len(t),
        "unparsed": sum(1 for x in p if x == UNPARSED),
        "accuracy": accuracy(t, y_pred, sch),
        "macro_f1": macro_f1(t, y_pred, sch),
        "cohen_kappa": cohen_kappa(t, y_pred, sch),
        "per_class": {name: vars(s) for name, s in per_class(t, y_pred, sch).items()},
        "confusion": {
            "rows": sch.names,
            "columns": [*sch.names, UNPARSED],
            "matrix": confusion_matrix(t, y_pred, sch).tolist(),
        },
    }
    if query_ids is not None:
        report[f"ndcg@{k}"] = ndcg_at_k(query_ids, t, list(y_pred), sch, k=k)
        report["ndcg_queries"] = ranked_queries(query_ids, t, sch)
    if confidences is not None:
        correct = [a == b for a, b in zip(t, p, strict=True)]
        report["ece"] = expected_calibration_error(confidences, correct, n_bins)
    return report
