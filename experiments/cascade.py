"""How many teacher calls a student saves: the cascade (:mod:`student.cascade`) on real pairs.

The student scores dev and test; the teacher's labels of both are read from files (made once through the
service). Thresholds are chosen on dev for target agreements with the teacher, then judged on test against the
human labels, beside the whole test sweep (every threshold) and the teacher and the student alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from student.cascade import Route, cascade_labels, sweep, threshold_for_agreement


def teacher_indices(path: Path, ids: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """The teacher's label index for each id; a pair the teacher did not label is an error."""
    labels = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if row.get("status") == "completed" and row.get("label") in names:
                labels[row["custom_id"]] = names.index(row["label"])
    missing = [i for i in ids if i not in labels]
    if missing:
        raise ValueError(f"{path}: no completed teacher label for {len(missing)} pairs, first {missing[0]!r}")
    return np.array([labels[i] for i in ids])


def _scores(y: np.ndarray, pred: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    from relevance.metrics import cohen_kappa, macro_f1

    truth, guess = [names[i] for i in y], [names[i] for i in pred]
    return {
        "macro_f1": round(macro_f1(truth, guess), 4),
        "kappa": round(cohen_kappa(truth, guess), 4),
        "accuracy": round(float((y == pred).mean()), 4),
    }


class Split:
    """One gold file scored by the student, with the teacher's labels beside it."""

    def __init__(self, student: Path, gold: Path, teacher: Path, batch_size: int = 256) -> None:
        from student.data import load_gold
        from student.evaluate import predict_logits
        from student.modelio import read_meta, softmax

        meta = read_meta(student)
        self.names = list(_schema_names(meta.get("schema", "esci")))
        examples = load_gold(gold, meta.get("schema", "esci")).examples
        logits = predict_logits(student, [(e.query, e.ad_text) for e in examples], batch_size=batch_size)
        probs = softmax(logits, float(meta.get("temperature", 1.0)))
        self.human = np.array([self.names.index(e.label) for e in examples])
        self.student = probs.argmax(axis=1)
        self.confidence = probs.max(axis=1)
        self.teacher = teacher_indices(teacher, [e.custom_id for e in examples], self.names)

    def at(self, threshold: float) -> dict[str, Any]:
        pred = cascade_labels(self.student, self.teacher, self.confidence, threshold)
        return {
            "threshold": threshold if np.isfinite(threshold) else None,
            "student_share": round(float((self.confidence >= threshold).mean()), 4),
            "agreement_with_teacher": round(float((pred == self.teacher).mean()), 4),
            **_scores(self.human, pred, self.names),
        }


def gain_over_teacher(split: Split, threshold: float, draws: int = 2000, seed: int = 0) -> dict[str, float]:
    """Cascade minus teacher-alone macro-F1 on test, with a 95% interval from resampling the test pairs (paired:
    both labelings of each drawn pair)."""
    from student.evaluate import macro_f1_indices

    k = len(split.names)
    pred = cascade_labels(split.student, split.teacher, split.confidence, threshold)
    rng = np.random.default_rng(seed)
    n = len(split.human)
    diffs = []
    for _ in range(draws):
        i = rng.integers(0, n, n)
        y = split.human[i]
        diffs.append(macro_f1_indices(y, pred[i], k) - macro_f1_indices(y, split.teacher[i], k))
    point = macro_f1_indices(split.human, pred, k) - macro_f1_indices(split.human, split.teacher, k)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"mean": round(point, 4), "low": round(float(low), 4), "high": round(float(high), 4)}


def _schema_names(schema: str) -> list[str]:
    from relevance.schemas import get_schema

    return get_schema(schema).names


def run_cascade(
    student: Path,
    dev: Path,
    teacher_dev: Path,
    test: Path,
    teacher_test: Path,
    targets: Sequence[float],
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    log("scoring dev and test with the student...")
    d = Split(student, dev, teacher_dev)
    t = Split(student, test, teacher_test)
    chosen = []
    for target in targets:
        route: Route = threshold_for_agreement(d.student, d.teacher, d.confidence, target)
        chosen.append(
            {
                "target": target,
                "dev_student_share": round(route.student_share, 4),
                **t.at(route.threshold),
                "macro_f1_minus_teacher": gain_over_teacher(t, route.threshold),
            }
        )
    # The test sweep at 50 evenly spaced shares of teacher calls saved (every threshold would be thousands).
    routes = sweep(t.student, t.teacher, t.confidence)
    picks = {min(routes, key=lambda r: abs(r.student_share - s)) for s in np.linspace(0, 1, 51)}
    curve = [t.at(r.threshold) for r in sorted(picks, key=lambda r: r.student_share)]
    return {
        "student": str(student),
        "dev": {"gold": str(dev), "teacher": str(teacher_dev), "pairs": len(d.human)},
        "test": {"gold": str(test), "teacher": str(teacher_test), "pairs": len(t.human)},
        "teacher_alone": {"student_share": 0.0, **_scores(t.human, t.teacher, t.names)},
        "student_alone": {"student_share": 1.0, **_scores(t.human, t.student, t.names)},
        "student_teacher_agreement": {
            "dev": round(float((d.student == d.teacher).mean()), 4),
            "test": round(float((t.student == t.teacher).mean()), 4),
        },
        "chosen_on_dev": chosen,
        "test_curve": curve,
    }


def plot(summary: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.2, 4.0), dpi=120)
    curve = summary["test_curve"]
    ax.plot([c["student_share"] for c in curve], [c["macro_f1"] for c in curve], label="cascade (test sweep)")
    for name, style in (("teacher_alone", "s"), ("student_alone", "D")):
        ref = summary[name]
        ax.plot([ref["student_share"]], [ref["macro_f1"]], style, label=name.replace("_", " "))
    for c in summary["chosen_on_dev"]:
        ax.plot([c["student_share"]], [c["macro_f1"]], "o", color="black")
        point = (c["student_share"], c["macro_f1"])
        ax.annotate(f"{c['target']:.0%}", point, textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("share of teacher calls saved (pairs the student labels)")
    ax.set_ylabel("macro-F1 on test (gold labels)")
    ax.set_title("student-first labelling (dots: thresholds chosen on dev)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _interval(d: dict[str, float]) -> str:
    return f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"


def _threshold(value: float | None) -> str:
    return "none (teacher only)" if value is None else f"{value:.3f}"


def render_markdown(summary: dict[str, Any], command: str, png: str) -> str:
    rows = [
        f"| {c['target']:.0%} | {_threshold(c['threshold'])} | {c['dev_student_share']:.1%} | "
        f"{c['student_share']:.1%} | "
        f"{c['agreement_with_teacher']:.1%} | {c['macro_f1']:.3f} | {_interval(c['macro_f1_minus_teacher'])} | "
        f"{c['kappa']:.3f} | {c['accuracy']:.3f} |"
        for c in summary["chosen_on_dev"]
    ]
    ta, sa = summary["teacher_alone"], summary["student_alone"]
    agree = summary["student_teacher_agreement"]
    return "\n".join(
        [
            "# Student-first labelling: teacher calls saved against quality lost",
            "",
            f"Command: `{command}`",
            "",
            f"Student `{summary['student']}`. Thresholds chosen on dev ({summary['dev']['pairs']:,} pairs, the "
            f"teacher's labels in `{summary['dev']['teacher']}`), judged on test ({summary['test']['pairs']:,} "
            f"pairs) against its gold labels (meta.label). The student and the teacher agree on "
            f"{agree['dev']:.1%} of dev pairs and {agree['test']:.1%} of test pairs.",
            "",
            "| agreement target (dev) | threshold | saved on dev | saved on test | agreement on test | macro-F1 | "
            "minus teacher alone [95%] | kappa | accuracy |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            *rows,
            f"| teacher alone | | 0% | 0% | 100% | {ta['macro_f1']:.3f} | | {ta['kappa']:.3f} | {ta['accuracy']:.3f} |",
            f"| student alone | | 100% | 100% | {agree['test']:.1%} | {sa['macro_f1']:.3f} | | {sa['kappa']:.3f} | "
            f"{sa['accuracy']:.3f} |",
            "",
            f"![cascade]({png})",
            "",
            "Intervals resample the test pairs (2,000 draws, paired). One student and one set of teacher labels: no "
            "seed variance is in these numbers.",
            "",
        ]
    )


def write_report(summary: dict[str, Any], md_path: Path, command: str) -> Path:
    md_path.parent.mkdir(parents=True, exist_ok=True)
    png = plot(summary, md_path.with_suffix(".png"))
    md_path.with_suffix(".json").write_text(json.dumps({"command": command, **summary}, indent=1))
    md_path.write_text(render_markdown(summary, command, png.name))
    return md_path
