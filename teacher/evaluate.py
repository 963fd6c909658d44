"""Teacher evaluation on a labelled split: n sampled answers per pair, parsed, voted and scored.

Reported, from the same n samples per pair:

- ``single``: the first sample of each pair as the label (what one call to the teacher gives);
- ``majority@m`` for m in 1, 4, ..., n: the majority label of the first m samples (:func:`relevance.votes.vote`),
  with accuracy, macro-F1, Cohen's kappa, per-difficulty accuracy and the ECE of its vote-share confidence;
- ``unparseable_rate`` over all samples, and ``pass@k`` on the label (some of k samples is right; unbiased
  estimator of :mod:`agpo.passk`), whose k = n value is the teacher's coverage.

With ``method="score"`` the teacher answers once, greedily, and its label is read as probabilities at the answer's
label line (:mod:`relevance.label_scores`); ``method="overlap"`` writes the reasoning by rule
(:mod:`relevance.overlap`) and only scores the label. Their report is the ``scored`` block: the most probable
label, with the ECE of its probability and the mean label mass.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from agpo.passk import pass_at_k_curve
from relevance.label_scores import LABEL_METHODS, ScoredLabel, reasoning_of, scored_answer, scored_label, scoring_prefix
from relevance.metrics import evaluate_labels
from relevance.overlap import overlap_reasoning
from relevance.parsing import parse_label
from relevance.schemas import LabelSchema, get_schema
from relevance.tasks import Task
from relevance.votes import vote
from rlvr.sampling import SamplingParams, sample_transformers
from teacher.data import difficulty_of, label_of, messages


@dataclass(frozen=True)
class EvalSettings:
    n: int = 8
    max_new_tokens: int = 112
    temperature: float = 1.0
    batch_size: int = 256
    seed: int = 0
    schema: str | LabelSchema = "esci"
    template: str = "compact"
    # A labelling task (relevance.tasks): its schema and prompts instead of schema and template.
    task: Task | None = None
    dtype: str | None = None  # None: the stored dtype; "bfloat16" is about 1.6x faster on AMX CPUs
    method: str = "sample"  # relevance.label_scores.LABEL_METHODS

    def __post_init__(self) -> None:
        if self.method not in LABEL_METHODS:
            raise ValueError(f"method must be one of {', '.join(LABEL_METHODS)}, got {self.method!r}")


def progress_enabled() -> bool:
    return os.environ.get("AGPO_NO_PROGRESS") != "1"


def chat_prompts(
    tokenizer: Any,
    records: Sequence[dict[str, Any]],
    schema: str | LabelSchema,
    template: str,
    task: Task | None = None,
) -> list[str]:
    def chat(r: dict[str, Any]) -> list[dict[str, str]]:
        if task is not None:
            return task.messages({k: v for k, v in r.items() if k != "meta"})
        return messages(r, schema, template)

    return [tokenizer.apply_chat_template(chat(r), add_generation_prompt=True, tokenize=False) for r in records]


def sample_answers(
    model_dir: str | Path,
    records: Sequence[dict[str, Any]],
    settings: EvalSettings,
    progress: Callable[[int], None] | None = None,
) -> list[list[str]]:
    """``settings.n`` sampled answers per record, batched with transformers' ``generate``."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompts = chat_prompts(tokenizer, records, settings.schema, settings.template, settings.task)
    params = SamplingParams(
        n=settings.n, temperature=settings.temperature, max_new_tokens=settings.max_new_tokens, seed=settings.seed
    )
    return sample_transformers(
        model_dir, prompts, params, batch_size=settings.batch_size, dtype=settings.dtype, progress=progress
    )


def score_labels(
    model_dir: str | Path,
    records: Sequence[dict[str, Any]],
    reasonings: Sequence[str],
    settings: EvalSettings,
    progress: Callable[[int], None] | None = None,
) -> list[ScoredLabel]:
    """The labels' probabilities after each record's prompt and reasoning, at its label line."""
    from transformers import AutoTokenizer

    from llm.bases import load_causal_lm
    from llm.scoring import first_tokens, next_token_logprobs

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    schema = get_schema(settings.schema)
    prompts = chat_prompts(tokenizer, records, settings.schema, settings.template, settings.task)
    texts = [p + scoring_prefix(text) for p, text in zip(prompts, reasonings, strict=True)]
    token_lists = tokenizer(texts, add_special_tokens=False)["input_ids"]
    model = load_causal_lm(model_dir, dtype=settings.dtype).eval()
    logprobs = next_token_logprobs(
        model,
        tokenizer,
        token_lists,
        first_tokens(tokenizer, schema.names),
        batch_size=settings.batch_size,
        progress=progress,
    )
    return [scored_label(row, schema) for row in logprobs]


def _vote_sizes(n: int) -> list[int]:
    return sorted({m for m in (1, 4, n) if m <= n})


def score_answers(
    records: Sequence[dict[str, Any]], answers: Sequence[Sequence[str]], schema: str = "esci"
) -> dict[str, Any]:
    """Every metric of the module docstring from ``answers[i]`` (n texts) for ``records[i]``."""
    if len(records) != len(answers) or not records:
        raise ValueError(f"{len(records)} records but {len(answers)} answer lists")
    n = min(len(a) for a in answers)
    sch = get_schema(schema)
    gold = [label_of(r) for r in records]
    tiers = [difficulty_of(r) for r in records]
    parsed = [[parse_label(text, sch) for text in row[:n]] for row in answers]
    report: dict[str, Any] = {"pairs": len(records), "n": n}
    report["unparseable_rate"] = float(np.mean([p is None for row in parsed for p in row]))
    first = [row[0] for row in parsed]
    single = evaluate_labels(gold, first, sch)
    report["single"] = {k: single[k] for k in ("accuracy", "macro_f1", "cohen_kappa", "unparsed")}
    for m in _vote_sizes(n):
        votes = [vote(row[:m], sch) for row in parsed]
        labels = [v.label for v in votes]
        scores = evaluate_labels(gold, labels, sch, confidences=[v.confidence for v in votes])
        by_tier: dict[str, list[bool]] = defaultdict(list)
        for tier, truth, label in zip(tiers, gold, labels, strict=True):
            by_tier[tier].append(label == sch.normalize(truth))
        report[f"majority@{m}"] = {
            "accuracy": scores["accuracy"],
            "macro_f1": scores["macro_f1"],
            "cohen_kappa": scores["cohen_kappa"],
            "ece": scores["ece"],
            "no_label": scores["unparsed"],
            "per_difficulty_accuracy": {t: float(np.mean(v)) for t, v in sorted(by_tier.items())},
            "per_class": scores["per_class"],
            "confusion": scores["confusion"],
        }
    correct = [sum(p == sch.normalize(t) for p in row) for row, t in zip(parsed, gold, strict=True)]
    report["pass@k"] = {str(k): v for k, v in pass_at_k_curve(correct, n).items()}
    report["headline"] = {
        "macro_f1": report[f"majority@{n}"]["macro_f1"],
        "accuracy": report[f"majority@{n}"]["accuracy"],
        "cohen_kappa": report[f"majority@{n}"]["cohen_kappa"],
        "unparseable_rate": report["unparseable_rate"],
        f"pass@{n}": report["pass@k"][str(n)],
        "single_macro_f1": report["single"]["macro_f1"],
    }
    return report


def scored_report(
    records: Sequence[dict[str, Any]],
    scored: Sequence[ScoredLabel],
    schema: str = "esci",
    answers: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Metrics of scored labels: the ``scored`` block (with the ECE of the label probability and the mean label
    mass) and the headline; with the greedy ``answers`` also how often their written label is the scored one."""
    sch = get_schema(schema)
    gold = [label_of(r) for r in records]
    scores = evaluate_labels(gold, [s.label for s in scored], sch, confidences=[s.confidence for s in scored])
    block = {k: scores[k] for k in ("accuracy", "macro_f1", "cohen_kappa", "ece", "per_class", "confusion")}
    block["mean_label_mass"] = float(np.mean([s.mass for s in scored]))
    report: dict[str, Any] = {"pairs": len(records), "n": 1, "unparseable_rate": 0.0, "scored": block}
    if answers is not None:
        written = [parse_label(a, sch) for a in answers]
        # The written label differs where the model's top token there was no label, or where it went on past a
        # label line and revised it.
        report["answer_unparseable_rate"] = float(np.mean([w is None for w in written]))
        report["agrees_with_answer"] = float(np.mean([s.label == w for s, w in zip(scored, written, strict=True)]))
    report["headline"] = {
        "macro_f1": block["macro_f1"],
        "accuracy": block["accuracy"],
        "cohen_kappa": block["cohen_kappa"],
        "ece": block["ece"],
        "unparseable_rate": 0.0,  # every pair gets its most probable label
    }
    return report


def evaluate_teacher(
    model_dir: str | Path,
    records: Sequence[dict[str, Any]],
    settings: EvalSettings,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], list[list[str]]]:
    """Sample, parse, vote and score; returns the report and the raw answers."""
    start = time.time()
    if settings.method == "sample":
        answers = sample_answers(model_dir, records, settings, progress)
        report = score_answers(records, answers, settings.schema)
    else:
        settings = replace(settings, n=1, temperature=0.0)
        if settings.method == "score":
            answers = sample_answers(model_dir, records, settings, progress)
            reasonings = [reasoning_of(a[0]) for a in answers]
        else:
            reasonings = [overlap_reasoning(r["query"], r["ad"]["title"]) for r in records]
        scored = score_labels(
            model_dir, records, reasonings, settings, progress if settings.method == "overlap" else None
        )
        written = [a[0] for a in answers] if settings.method == "score" else None
        report = scored_report(records, scored, settings.schema, written)
        if settings.method == "overlap":
            answers = [[scored_answer(text, s.label)] for text, s in zip(reasonings, scored, strict=True)]
    report["model"] = str(model_dir)
    record = asdict(replace(settings, task=None, schema=get_schema(settings.schema).name))
    if settings.task is not None:
        record["task"] = {"name": settings.task.name, "prompt_version": settings.task.prompt_version}
    report["settings"] = record
    report["seconds"] = round(time.time() - start, 1)
    return report, answers


def plot_confusion(report: dict[str, Any], path: str | Path, title: str, key: str | None = None) -> None:
    """A confusion-matrix heat map (rows: gold, columns: predicted, last column: no label) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    block = report[key or f"majority@{report['n']}"]["confusion"]
    matrix = np.asarray(block["matrix"], dtype=float)
    rows, cols = block["rows"], [c if c != "<unparsed>" else "none" for c in block["columns"]]
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.6, 4.4))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(
                j, i, f"{int(matrix[i, j])}", ha="center", va="center", color="white" if share[i, j] > 0.5 else "black"
            )
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(report: dict[str, Any], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=1))
