"""Where a sequence-level advantage moves probability: the shared-prefix measurement.

A wrong completion often begins exactly as a correct one of the same prompt does, and a negative advantage pushes
that shared opening down with the rest of it (see :mod:`agpo.shared_prefix`; GRPO's zero-sum groups roughly cancel
the push, AGPO's negative-dominant ones do not).

This module measures that on completions sampled from the base. Each completion of a prompt with both outcomes is
split at the longest prefix it shares with a completion of the other outcome:

- ``correct/shared``: tokens of a correct completion that some wrong completion also starts with;
- ``correct/own``: the rest of a correct completion (after it parted from every wrong one);
- ``wrong/shared`` and ``wrong/own``: the same for wrong completions.

For each trained model it reports the mean change of per-token log-probability against the base in each kind, and
the mean change of whole-completion log-probability for correct and wrong completions. If the hypothesis holds, a
negative-dominant method lowers ``correct/shared`` where GRPO leaves it near zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agpo.rewards import RewardFunction, score
from agpo.shared_prefix import shared_prefix_lengths
from rlvr.sampling import SamplingParams, sample_transformers

KINDS = ("correct/shared", "correct/own", "wrong/shared", "wrong/own")


def parse_models(specs: Sequence[str]) -> dict[str, Path]:
    """``LABEL=DIR`` options as {label: model directory}; a bad spec raises ValueError naming it."""
    models: dict[str, Path] = {}
    for spec in specs:
        label, sep, directory = spec.partition("=")
        if not sep or not label or not directory:
            raise ValueError(f"--model {spec!r}: write LABEL=DIR, e.g. --model grpo=runs/grpo")
        if not (Path(directory) / "config.json").exists():
            raise ValueError(f"--model {spec!r}: no config.json in {directory}; is it a model directory?")
        if label in models:
            raise ValueError(f"--model {spec!r}: label {label!r} is used twice")
        models[label] = Path(directory)
    return models


def check_references(models: Mapping[str, Any], references: Sequence[str]) -> None:
    unknown = [r for r in references if r not in models]
    if unknown:
        raise ValueError(f"--reference {unknown[0]!r} is not one of the --model labels {list(models)}")


def models_to_compare(specs: Sequence[str], differences_from: Sequence[str]) -> dict[str, Path]:
    """The ``--model LABEL=DIR`` options as {label: model directory}, every ``--reference`` one of their labels."""
    models = parse_models(specs)
    check_references(models, differences_from)
    return models


def token_logprobs(
    model: Any, prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], batch_size: int = 64
) -> list[np.ndarray]:
    """Teacher-forced log-probability of each completion token given its prompt and the tokens before it.

    Sequences are right-padded with an attention mask, which leaves a causal model's outputs at the real
    positions unchanged, so the values do not depend on the batch.
    """
    out: list[np.ndarray] = []
    for start in range(0, len(prompts), batch_size):
        stop = start + batch_size
        rows = [list(p) + list(c) for p, c in zip(prompts[start:stop], completions[start:stop], strict=True)]
        width = max(len(r) for r in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
        for i, r in enumerate(rows):
            p = len(prompts[start + i])
            c = len(r) - p
            # The logits at position t predict token t + 1.
            positions = torch.arange(p - 1, p - 1 + c)
            out.append(logp[i, positions, ids[i, p : p + c]].numpy().copy())
    return out


@dataclass
class Samples:
    """Completions sampled from the base for each prompt, tokenized, with their outcome and shared-prefix length."""

    prompt_ids: list[list[int]]  # one per completion (repeated for a prompt's completions)
    completion_ids: list[list[int]]
    correct: list[bool]
    shared: list[int]
    mixed: list[bool]  # the completion's prompt has both outcomes
    prompts: int
    mixed_prompts: int = 0
    prompt_index: list[int] = field(default_factory=list)  # which prompt each completion answers


def draw_samples(
    base: str | Path,
    prompts: Sequence[str],
    references: Sequence[str],
    reward: RewardFunction,
    params: SamplingParams,
    progress: Callable[[int], None] | None = None,
) -> Samples:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    texts = sample_transformers(base, prompts, params, progress=progress)
    s = Samples([], [], [], [], [], len(prompts))
    for index, (prompt, reference, outs) in enumerate(zip(prompts, references, texts, strict=True)):
        ok = [v >= 1.0 for v in score(reward, outs, [reference] * len(outs))]
        # Completions are re-tokenized from text, as a trainer sees them; empty ones have nothing to score.
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in outs]
        keep = [i for i, x in enumerate(ids) if x]
        ids, ok = [ids[i] for i in keep], [ok[i] for i in keep]
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        mixed = any(ok) and not all(ok)
        s.prompt_ids += [prompt_ids] * len(ids)
        s.prompt_index += [index] * len(ids)
        s.completion_ids += ids
        s.correct += ok
        s.shared += shared_prefix_lengths(ids, ok)
        s.mixed += [mixed] * len(ids)
        s.mixed_prompts += mixed
    return s


def _logprobs_of(model_dir: str | Path, samples: Samples, batch_size: int) -> list[np.ndarray]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.eval()
    return token_logprobs(model, samples.prompt_ids, samples.completion_ids, batch_size)


BOOTSTRAP_REPS = 1000


def per_prompt_sums(
    samples: Samples, base_lp: Sequence[np.ndarray], model_lp: Sequence[np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per kind, the summed log-probability change and the token count of each prompt (mixed prompts only)."""
    sums = {k: np.zeros(samples.prompts) for k in KINDS}
    counts = {k: np.zeros(samples.prompts) for k in KINDS}
    for i, (ok, shared, mixed, b, m) in enumerate(
        zip(samples.correct, samples.shared, samples.mixed, base_lp, model_lp, strict=True)
    ):
        if not mixed:
            continue
        d = m - b
        outcome = "correct" if ok else "wrong"
        prompt = samples.prompt_index[i]
        for part, values in (("shared", d[:shared]), ("own", d[shared:])):
            sums[f"{outcome}/{part}"][prompt] += values.sum()
            counts[f"{outcome}/{part}"][prompt] += values.size
    return sums, counts


def bootstrap_interval(
    sums: np.ndarray, counts: np.ndarray, reps: int = BOOTSTRAP_REPS, seed: int = 0
) -> tuple[float, float] | None:
    """95% interval of sum(sums) / sum(counts) when prompts are resampled (tokens of a prompt are not independent)."""
    used = counts > 0
    if not used.any():
        return None
    s, c = sums[used], counts[used]
    picks = np.random.default_rng(seed).integers(0, s.size, size=(reps, s.size))
    ratios = s[picks].sum(axis=1) / c[picks].sum(axis=1)
    low, high = np.quantile(ratios, [0.025, 0.975])
    return float(low), float(high)


def shifts(samples: Samples, base_lp: Sequence[np.ndarray], model_lp: Sequence[np.ndarray]) -> dict[str, Any]:
    """Mean change of per-token log-probability per kind (mixed prompts only), with a 95% interval over prompts,
    and the mean change of whole-completion log-probability (every prompt)."""
    return _shifts(samples, base_lp, model_lp, *per_prompt_sums(samples, base_lp, model_lp))


def _shifts(
    samples: Samples,
    base_lp: Sequence[np.ndarray],
    model_lp: Sequence[np.ndarray],
    sums: dict[str, np.ndarray],
    counts: dict[str, np.ndarray],
) -> dict[str, Any]:
    sequence: dict[str, list[float]] = {"correct": [], "wrong": []}
    for ok, b, m in zip(samples.correct, base_lp, model_lp, strict=True):
        sequence["correct" if ok else "wrong"].append(float((m - b).sum()))
    total = {k: counts[k].sum() for k in KINDS}
    return {
        "token_logprob_shift": {k: float(sums[k].sum() / total[k]) if total[k] else None for k in KINDS},
        "token_logprob_shift_95": {k: bootstrap_interval(sums[k], counts[k]) for k in KINDS},
        "tokens": {k: int(total[k]) for k in KINDS},
        "completion_logprob_shift": {k: float(np.mean(v)) if v else None for k, v in sequence.items()},
        "completions": {k: len(v) for k, v in sequence.items()},
    }


def paired_differences(
    sums: Mapping[str, dict[str, np.ndarray]], counts: dict[str, np.ndarray], reference: str
) -> dict[str, dict[str, Any]]:
    """Each model's token shift minus ``reference``'s, per kind, on the same tokens, with a paired 95% interval.

    ``sums`` holds each model's per-prompt sums and ``counts`` the shared token counts (:func:`per_prompt_sums`).
    """
    ref_sums = sums[reference]
    out: dict[str, dict[str, Any]] = {}
    for label, model_sums in sums.items():
        if label == reference:
            continue
        out[label] = {}
        for k in KINDS:
            total = counts[k].sum()
            diff = model_sums[k] - ref_sums[k]
            out[label][k] = {
                "difference": float(diff.sum() / total) if total else None,
                "interval_95": bootstrap_interval(diff, counts[k]),
            }
    return out


def measure(
    base: str | Path,
    models: Mapping[str, str | Path],
    prompts: Sequence[str],
    references: Sequence[str],
    reward: RewardFunction,
    params: SamplingParams,
    *,
    references_for_differences: Sequence[str] = (),
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Sample from ``base``, then score the samples under the base and every model in ``models`` (label -> dir).

    For each label in ``references_for_differences`` (default: the first model) the others' shifts are also given
    as paired differences from it, on the same tokens.
    """
    check_references(models, references_for_differences)
    samples = draw_samples(base, prompts, references, reward, params, progress)
    base_lp = _logprobs_of(base, samples, batch_size)
    result: dict[str, Any] = {
        "base": str(base),
        "prompts": samples.prompts,
        "n": params.n,
        "completions": len(samples.correct),
        "correct_share": float(np.mean(samples.correct)) if samples.correct else 0.0,
        "mixed_prompts": samples.mixed_prompts,
        "completions_in_mixed_groups": int(sum(samples.mixed)),
        "models": {},
    }
    sums: dict[str, dict[str, np.ndarray]] = {}
    counts: dict[str, np.ndarray] = {}
    for label, model_dir in models.items():
        lp = _logprobs_of(model_dir, samples, batch_size)
        sums[label], counts = per_prompt_sums(samples, base_lp, lp)  # counts depend on the samples only
        result["models"][label] = {**_shifts(samples, base_lp, lp, sums[label], counts), "model": str(model_dir)}
    if len(models) > 1:
        references = list(references_for_differences) or [next(iter(models))]
        result["differences"] = {r: paired_differences(sums, counts, r) for r in references}
    return result


def save(result: Mapping[str, Any], out: str | Path, title: str) -> None:
    """The result as JSON at ``out`` and its bar plot beside it (.png)."""
    import json

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    plot(result, out.with_suffix(".png"), title)


def save_and_show(result: Mapping[str, Any], out: str | Path, title: str, console: Any) -> None:
    """What both prefix-effect commands end with: JSON and plot written, tables printed."""
    save(result, out, title)
    console.print(summary_table(result, title))
    if result.get("differences"):
        console.print(differences_table(result))
    console.print(f"wrote {out} and {Path(out).with_suffix('.png')}")


def measure_and_report(
    base: str | Path,
    models: Mapping[str, str | Path],
    prompts: Sequence[Any],
    answers: Sequence[str],
    reward: RewardFunction,
    params: SamplingParams,
    *,
    differences_from: Sequence[str],
    split: str,
    command: str,
    out: str | Path,
    title: str,
    console: Any,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """The body both prefix-effect commands share (Countdown's and the relevance teacher's): :func:`measure`, the
    split and command recorded with the result, JSON and plot written to ``out``, tables printed."""
    result = measure(
        base, models, prompts, answers, reward, params, references_for_differences=differences_from, progress=progress
    )
    result.update(split=split, command=command)
    save_and_show(result, out, title, console)
    return result


def summary_table(result: Mapping[str, Any], title: str) -> Any:
    """A rich table of the shifts, one row per model, with the token counts in its caption."""
    from rich.table import Table

    tokens = next(iter(result["models"].values()))["tokens"] if result["models"] else {}
    caption = f"{result['mixed_prompts']} of {result['prompts']} prompts have both outcomes; tokens: {tokens}"
    table = Table(title=f"{title}: mean change of log-prob vs the base", caption=caption)
    table.add_column("model")
    for kind in KINDS:
        table.add_column(kind.replace("/", "\n"), justify="right")
    table.add_column("correct\nsequence", justify="right")
    table.add_column("wrong\nsequence", justify="right")
    for label, entry in result["models"].items():
        cells = [entry["token_logprob_shift"][k] for k in KINDS] + list(entry["completion_logprob_shift"].values())
        table.add_row(label, *("-" if v is None else f"{v:+.3f}" for v in cells))
    return table


def differences_table(result: Mapping[str, Any]) -> Any:
    """A rich table of the paired differences, one row per (model, reference)."""
    from rich.table import Table

    table = Table(title="paired difference of token log-prob shift (model - reference), 95% interval over prompts")
    table.add_column("model - reference")
    for kind in KINDS:
        table.add_column(kind, justify="right")
    for reference, rows in result.get("differences", {}).items():
        for label, cells in rows.items():
            texts = []
            for kind in KINDS:
                cell = cells[kind]
                if cell["difference"] is None:
                    texts.append("-")
                    continue
                low, high = cell["interval_95"]
                texts.append(f"{cell['difference']:+.4f} [{low:+.4f}, {high:+.4f}]")
            table.add_row(f"{label} - {reference}", *texts)
    return table


def plot(result: Mapping[str, Any], path: str | Path, title: str) -> None:
    """Grouped bars: per-token log-probability shift by kind, one bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(result["models"])
    width = 0.8 / max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for j, label in enumerate(labels):
        values = [result["models"][label]["token_logprob_shift"][k] or 0.0 for k in KINDS]
        ax.bar([i + (j - (len(labels) - 1) / 2) * width for i in range(len(KINDS))], values, width, label=label)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(KINDS)), KINDS)
    ax.set_ylabel("mean change of token log-prob vs base")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
