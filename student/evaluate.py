"""Evaluate a student on gold labels, beside two baselines, with the metrics of ``relevance.metrics``.

Student: accuracy, macro-F1 (the primary metric), per-class scores, confusion matrix, Cohen's kappa, graded
NDCG@10 per query (schema gains; ads ranked by the expected gain sum_c p_c * gain_c), ROC-AUC of the most
relevant label (Exact for ESCI) against the rest, NLL and ECE before and after temperature scaling.

Baselines:
- majority: always the most frequent training label (from ``student.json``), probabilities = the training
  prior; its NDCG is that of a constant score (ties averaged), its AUC 0.5.
- bi-encoder: zero-shot cosine between MiniLM sentence embeddings of the query and the rendered ad, from the
  same base model the student starts from. Cosine ranks, so NDCG@10 and Exact-vs-rest AUC always come with it.
  Cosine has no labels: when a labelled dev file is given, K-1 cut points on cosine (labels in grade order) are
  picked on dev for macro-F1 from a grid of dev quantiles, and the label metrics are reported with them;
  without dev, the label metrics are left out rather than guessed.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from relevance.metrics import evaluate_labels, expected_calibration_error, ndcg_at_k, ranked_queries
from relevance.schemas import DEFAULT_SCHEMA, LabelSchema, get_schema
from student.calibration import fit_temperature, nll
from student.data import Example, load_gold, load_labelled
from student.modelio import BATCH_SIZE_DEFAULT, MAX_LENGTH_DEFAULT, read_meta, softmax

Variant = Literal["torch", "fp32", "int8", "bf16"]
K = 10


def top_label(sch: LabelSchema) -> str:
    """The label with the highest gain: the positive class of the ranking AUC (Exact for ESCI)."""
    return max(sch.names, key=lambda n: (sch.gain(n), -sch.index(n)))


def _auc(y_true: Sequence[str], scores: np.ndarray, sch: LabelSchema) -> float | None:
    from sklearn.metrics import roc_auc_score

    positive = np.array([t == top_label(sch) for t in y_true])
    if positive.all() or not positive.any():
        return None
    return float(roc_auc_score(positive, scores))


def _defined(value: float) -> float | None:
    return None if math.isnan(value) else value


def _ndcg(
    query_ids: Sequence[Hashable], y_true: Sequence[str], scores: Sequence[float], sch: LabelSchema
) -> float | None:
    """NDCG@K over the queries with at least two pairs (``ndcg_queries`` says how many); None when there are none,
    as on a set of one pair per query, where every ranking is perfect and the number would say nothing."""
    return _defined(ndcg_at_k(query_ids, y_true, scores, sch, k=K))


def probability_report(
    probs: np.ndarray, y_true: Sequence[str], query_ids: Sequence[Hashable], schema: str | LabelSchema
) -> dict[str, Any]:
    """Every metric for class probabilities (rows sum to 1, columns in schema order)."""
    sch = get_schema(schema)
    probs = np.asarray(probs, dtype=np.float64)
    pred = [sch.names[i] for i in probs.argmax(axis=1)]
    report = evaluate_labels(y_true, pred, sch, query_ids=query_ids, confidences=probs.max(axis=1).tolist(), k=K)
    report[f"ndcg@{K}_by_label"] = _defined(report.pop(f"ndcg@{K}"))
    gains = np.array([sch.gain(n) for n in sch.names])
    report[f"ndcg@{K}"] = _ndcg(query_ids, y_true, (probs @ gains).tolist(), sch)
    report["roc_auc_exact"] = _auc(y_true, probs[:, sch.index(top_label(sch))], sch)
    idx = np.array([sch.index(t) for t in y_true])
    report["nll"] = float(-np.log(np.clip(probs[np.arange(len(idx)), idx], 1e-12, None)).mean())
    return report


def logits_report(
    logits: np.ndarray, temperature: float, y_true: Sequence[str], query_ids: Sequence[Hashable], schema: str
) -> dict[str, Any]:
    """The report at the fitted temperature, with NLL and ECE at T = 1 beside it."""
    sch = get_schema(schema)
    report = probability_report(softmax(logits, temperature), y_true, query_ids, sch)
    raw = softmax(logits, 1.0)
    correct = [sch.names[i] == t for i, t in zip(raw.argmax(axis=1), y_true, strict=True)]
    report["temperature"] = temperature
    report["ece_before_temperature"] = expected_calibration_error(raw.max(axis=1).tolist(), correct)
    report["ece_after_temperature"] = report.pop("ece")
    report["nll_before_temperature"] = nll(logits, [sch.index(t) for t in y_true], 1.0)
    report["nll_after_temperature"] = report.pop("nll")
    return report


def dev_report(model_dir: str | Path, dev: Sequence[Example], schema: str, max_length: int) -> dict[str, Any]:
    """Fit the temperature on dev (NLL against the dev labels) and report dev metrics at it."""
    from student.modelio import TorchStudent

    sch = get_schema(schema)
    model = TorchStudent(model_dir, max_length=max_length)
    logits = model.logits([(e.query, e.ad_text) for e in dev])
    fit = fit_temperature(logits, [sch.index(e.label) for e in dev])
    metrics = logits_report(logits, fit.temperature, [e.label for e in dev], [e.group for e in dev], sch.name)
    return {"temperature": fit.temperature, "metrics": _compact(metrics)}


def _compact(report: dict[str, Any]) -> dict[str, Any]:
    keep = ("n", "accuracy", "macro_f1", "cohen_kappa", f"ndcg@{K}", "ndcg_queries", "roc_auc_exact")
    keep += ("nll_before_temperature", "nll_after_temperature", "ece_before_temperature", "ece_after_temperature")
    return {k: report[k] for k in keep if k in report}


def predict_logits(
    model_path: str | Path,
    pairs: Sequence[tuple[str, str]],
    variant: Variant = "torch",
    batch_size: int = BATCH_SIZE_DEFAULT,
) -> np.ndarray:
    """Logits from a student model dir (``torch``) or an export dir (``fp32`` / ``int8`` ONNX)."""
    if variant == "torch":
        from student.modelio import TorchStudent

        return TorchStudent(model_path).logits(pairs, batch_size=batch_size)
    from student.scorer import Scorer

    return Scorer(model_path, variant=variant, batch_size=batch_size).logits(pairs)


def majority_report(
    prior: dict[str, float], y_true: Sequence[str], query_ids: Sequence[Hashable], schema: str
) -> dict[str, Any]:
    sch = get_schema(schema)
    total = sum(prior.values())
    p = np.array([prior.get(n, 0.0) / total for n in sch.names])
    # The most frequent label must win argmax even against a tie in the prior: nudge it.
    p[int(np.argmax(p))] += 1e-9
    p = p / p.sum()
    report = probability_report(np.tile(p, (len(y_true), 1)), y_true, query_ids, sch)
    report["label"] = sch.names[int(np.argmax(p))]
    # No logits, no temperature: the prior's calibration is the same before and after.
    report["ece_before_temperature"] = report["ece_after_temperature"] = report.pop("ece")
    report["nll_before_temperature"] = report["nll_after_temperature"] = report.pop("nll")
    return report


def grade_order(sch: LabelSchema) -> list[str]:
    """The schema's labels, most relevant first: the order cosine cut points split."""
    return sorted(sch.names, key=lambda n: -sch.grade(n))


def fit_cosine_thresholds(
    cos: np.ndarray, y_true: Sequence[str], schema: str | LabelSchema, n_quantiles: int = 19
) -> list[float]:
    """K-1 descending cut points on cosine (labels by grade, most relevant on top), best dev macro-F1."""
    sch = get_schema(schema)
    order = grade_order(sch)
    candidates = np.unique(np.quantile(cos, np.linspace(0, 1, n_quantiles + 2)[1:-1]))
    y = np.array([order.index(t) for t in y_true])
    best, best_f1 = None, -1.0
    for cuts in itertools.combinations(candidates[::-1], len(order) - 1):
        pred = _apply_cuts(cos, cuts)
        f1 = macro_f1_indices(y, pred, len(order))
        if f1 > best_f1:
            best, best_f1 = cuts, f1
    if best is None:  # fewer distinct cosines than labels: everything on top
        best = tuple(float(cos.min()) for _ in range(len(order) - 1))
    return [float(c) for c in best]


def _apply_cuts(cos: np.ndarray, cuts: Sequence[float]) -> np.ndarray:
    """Index in grade order: 0 when cos >= cuts[0], 1 when cuts[0] > cos >= cuts[1], ..."""
    return np.searchsorted(-np.asarray(cuts), -cos, side="left")


def macro_f1_indices(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Macro-F1 of label indices 0..k-1 over the labels present in ``y`` or ``pred``; ``pred == k`` is "no label"
    (a miss for its gold label, a prediction of none)."""
    cm = np.bincount(y * (k + 1) + pred, minlength=k * (k + 1)).reshape(k, k + 1)
    tp = np.diag(cm[:, :k]).astype(float)
    denom = cm[:, :k].sum(axis=0) + cm.sum(axis=1)
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    return float(f1[denom > 0].mean())


def kappa_indices(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Cohen's kappa of label indices 0..k-1; ``pred == k`` ("no label") is a category of its own that no gold
    label shares, as :func:`relevance.metrics.cohen_kappa` counts unparseable answers."""
    cm = np.bincount(y * (k + 1) + pred, minlength=k * (k + 1)).reshape(k, k + 1).astype(float)
    n = cm.sum()
    observed = np.trace(cm[:, :k]) / n
    expected = float(cm.sum(axis=1) @ cm[:, :k].sum(axis=0)) / n**2
    return float((observed - expected) / (1 - expected)) if expected < 1 else 0.0


def bi_encoder_cosines(
    examples: Sequence[Example], base_model: str | Path | None = None, batch_size: int = 64
) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    from student.modelio import base_model_path

    model = SentenceTransformer(str(base_model or base_model_path()), device="cpu")
    queries = sorted({e.query for e in examples})
    q_emb = model.encode(queries, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    a_emb = model.encode(
        [e.ad_text for e in examples], batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
    )
    q_index = {q: i for i, q in enumerate(queries)}
    return np.einsum("ij,ij->i", q_emb[[q_index[e.query] for e in examples]], a_emb)


def bi_encoder_report(
    gold: Sequence[Example], schema: str, dev: Sequence[Example] | None = None, base_model: str | Path | None = None
) -> dict[str, Any]:
    sch = get_schema(schema)
    y_true = [e.label for e in gold]
    qids = [e.group for e in gold]
    cos = bi_encoder_cosines(gold, base_model)
    report: dict[str, Any] = {
        "n": len(gold),
        f"ndcg@{K}": _ndcg(qids, y_true, cos.tolist(), sch),
        "ndcg_queries": ranked_queries(qids, y_true, sch),
        "roc_auc_exact": _auc(y_true, cos, sch),
        "label_mapping": None,
    }
    if dev:
        pred, cuts = cosine_labels(cos, bi_encoder_cosines(dev, base_model), [e.label for e in dev], sch)
        labels = evaluate_labels(y_true, pred, sch)
        report.update({k: labels[k] for k in ("accuracy", "macro_f1", "cohen_kappa", "per_class", "confusion")})
        report["label_mapping"] = {"fitted_on": "dev", "labels_in_order": grade_order(sch), "cosine_cuts": cuts}
    return report


def cosine_labels(
    cos: np.ndarray, dev_cos: np.ndarray, dev_labels: Sequence[str], schema: str | LabelSchema
) -> tuple[list[str], list[float]]:
    """Labels for cosines by cut points fitted on labelled dev cosines, and the cuts."""
    sch = get_schema(schema)
    cuts = fit_cosine_thresholds(dev_cos, dev_labels, sch)
    order = grade_order(sch)
    return [order[i] for i in _apply_cuts(cos, cuts)], cuts


def save_confusion_png(report: dict[str, Any], path: str | Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["confusion"]["rows"]
    cm = np.asarray(report["confusion"]["matrix"])[:, : len(rows)]
    fig, ax = plt.subplots(figsize=(5.2, 4.4), dpi=120)
    shares = cm / np.clip(cm.sum(axis=1, keepdims=True), 1, None)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(rows)):
        for j in range(len(rows)):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(rows)), rows, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def evaluate(
    model_path: str | Path,
    gold_path: str | Path,
    *,
    variant: Variant = "torch",
    dev_path: str | Path | None = None,
    baselines: bool = True,
    batch_size: int = BATCH_SIZE_DEFAULT,
) -> dict[str, Any]:
    """The full evaluation report (JSON-ready) of one student on a gold file."""
    meta = read_meta(model_path)
    schema = meta.get("schema", DEFAULT_SCHEMA)
    gold = load_gold(gold_path, schema).examples
    y_true = [e.label for e in gold]
    qids = [e.group for e in gold]
    logits = predict_logits(model_path, [(e.query, e.ad_text) for e in gold], variant, batch_size)
    temperature = float(meta.get("temperature", 1.0))
    out: dict[str, Any] = {
        "model": {
            "path": str(model_path),
            "variant": variant,
            "model_version": meta.get("model_version"),
            "distilled_from": meta.get("distilled_from"),
            "max_length": meta.get("max_length", MAX_LENGTH_DEFAULT),
        },
        "gold": str(gold_path),
        "n": len(gold),
        "queries": len(set(qids)),
        "primary_metric": "macro_f1",
        "student": logits_report(logits, temperature, y_true, qids, schema),
    }
    if baselines:
        prior = meta.get("data", {}).get("label_counts_train") or {n: y_true.count(n) for n in get_schema(schema).names}
        dev = load_labelled(dev_path, schema=schema).examples if dev_path else None
        out["baselines"] = {
            "majority": majority_report(prior, y_true, qids, schema),
            "bi_encoder": bi_encoder_report(gold, schema, dev),
        }
    return out


def render_table(report: dict[str, Any]) -> Any:
    """A rich table: metrics as rows, the student and the baselines as columns."""
    from rich.table import Table

    columns = {"student": report["student"], **report.get("baselines", {})}
    table = Table(title=f"gold: {report['gold']} ({report['n']} pairs, {report['queries']} queries)")
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    rows = [
        ("accuracy", "accuracy"),
        ("macro-F1 (primary)", "macro_f1"),
        ("Cohen's kappa", "cohen_kappa"),
        (f"NDCG@{K} (expected gain; {report['student'].get('ndcg_queries', 0)} queries of >= 2 pairs)", f"ndcg@{K}"),
        ("ROC-AUC Exact vs rest", "roc_auc_exact"),
        ("ECE before T", "ece_before_temperature"),
        ("ECE after T", "ece_after_temperature"),
        ("NLL before T", "nll_before_temperature"),
        ("NLL after T", "nll_after_temperature"),
    ]
    for title, key in rows:
        values = [columns[c].get(key) for c in columns]
        missing = "n/a" if key == f"ndcg@{K}" else "-"
        table.add_row(title, *(missing if v is None else f"{v:.4f}" for v in values))
    for label in report["student"]["per_class"]:
        table.add_row(f"F1 {label}", *(_class_f1(columns[c], label) for c in columns))
    return table


def _class_f1(report: dict[str, Any], label: str) -> str:
    per = report.get("per_class")
    return "-" if not per else f"{per[label]['f1']:.4f}"


def write_report(report: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=float) + "\n", encoding="utf-8")
    return path
