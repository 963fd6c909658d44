"""The pass@k study's report: per-arm cells over seeds, paired differences, plots and the Markdown page."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from agpo.passk import PassAtK, paired_difference
from experiments.countdown.study.config import StudyConfig
from experiments.countdown.study.runs import TRAINING_STATS
from experiments.kit import format_interval, format_mean_std, mean_std_count
from rlvr.evaluate import EvalResult, plot_curves


def training_summary(runs: list[dict[str, float]]) -> dict[str, list[float]]:
    """stat -> [mean, std, seeds] over the runs that logged it."""
    out = {}
    for stat in TRAINING_STATS:
        values = [run[stat] for run in runs if stat in run]
        if values:
            out[stat] = mean_std_count(values)
    return out


def plot_study(config: StudyConfig, results: dict[str, dict[str, list[EvalResult]]], report: Path) -> None:
    """Per split: the methods' mean pass@k curves, and each method's paired difference from the base."""
    for split, _, _ in config.evaluations():
        mean_curves, differences = [], []
        base = results.get("base", {}).get(split)
        for name, by_split in results.items():
            runs = by_split.get(split, [])
            if not runs or (name not in config.methods and name != "base"):
                continue
            ks = sorted(runs[0].curve)
            mean = {k: statistics.fmean(r.curve[k] for r in runs) for k in ks}
            low = {k: min(r.curve[k] for r in runs) for k in ks}
            high = {k: max(r.curve[k] for r in runs) for k in ks}
            mean_curves.append(EvalResult(name, "", split, runs[0].n, [], mean, low, high))
            if base and name != "base":
                differences.append(difference_curve(name, runs, base, config.resample_seeds))
        if not mean_curves:
            continue
        plot_curves(mean_curves, plot_path(report, split), title=f"Countdown {split}: mean over seeds (band: min-max)")
        if differences:
            plot_curves(
                differences,
                plot_path(report, f"{split}_minus_base"),
                title=f"Countdown {split}: minus the base, paired (95% CI)",
                ylabel="Δ pass@k vs base",
                ylim=None,
            )


def trajectory_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Per arm and step: KL to the base and pass@1 / pass@n on the first split, each the mean over seeds; the base
    is step 0 at KL 0."""
    cfg = summary["config"]
    split, n = cfg["splits"][0], cfg["test_n"]
    keys = ("kl", "pass@1", f"pass@{n}")
    rows = []
    base = summary["cells"].get("base", {}).get(split)
    if base:
        rows.append(
            {"arm": "base", "step": 0, "seeds": 1, "kl": 0.0, "pass@1": base["1"][0], f"pass@{n}": base[str(n)][0]}
        )
    for name, runs in summary.get("trajectories", {}).items():
        for step in sorted({point["step"] for run in runs for point in run}):
            points = [point for run in runs for point in run if point["step"] == step]
            row: dict[str, Any] = {"arm": name, "step": step, "seeds": len(points)}
            for key in keys:
                values = [point[key] for point in points if key in point]
                if values:
                    row[key] = statistics.fmean(values)
            rows.append(row)
    return rows


def plot_trajectories(summary: dict[str, Any], path: Path) -> None:
    """pass@1 and pass@n against KL to the base, one line per arm through its checkpoints (means over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = summary["config"]
    n = cfg["test_n"]
    rows = [row for row in trajectory_rows(summary) if "kl" in row]
    if not any(row["arm"] != "base" for row in rows):
        return
    base = next((row for row in rows if row["arm"] == "base"), None)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), dpi=120)
    for ax, key in zip(axes, ("pass@1", f"pass@{n}"), strict=True):
        for arm in dict.fromkeys(row["arm"] for row in rows if row["arm"] != "base"):
            line = [row for row in rows if row["arm"] == arm and key in row]
            if base is not None:
                line = [base, *line]
            ax.plot([r["kl"] for r in line], [r[key] for r in line], marker="o", markersize=3, label=arm)
        if base is not None:
            ax.axhline(base[key], color="black", linewidth=0.8, linestyle=":")
        ax.set_xlabel("KL(policy || base), nats per completion")
        ax.set_ylabel(f"{key} on {cfg['splits'][0]}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Countdown {cfg['splits'][0]}: accuracy and coverage against distance moved (dotted: the base)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _trajectory_lines(summary: dict[str, Any], path: Path) -> list[str]:
    rows = trajectory_rows(summary)
    if not summary.get("trajectories"):
        return []
    cfg = summary["config"]
    n = cfg["test_n"]
    lines = [
        f"## Trajectories on {cfg['splits'][0]}: pass@k against KL to the base",
        "",
        f"![trade-off]({plot_path(path, 'tradeoff').name})",
        "",
        f"KL(policy || base) is estimated from {cfg['kl_n']} temperature-1 samples of the policy on each of the "
        f"first {cfg['kl_problems']} problems (nats per completion); pass@k from the evaluation's {n} samples per "
        "problem. Each row is the mean over the seeds that reached it: read methods against each other at matched "
        "KL, not at matched step.",
        "",
        f"| arm | step | seeds | KL | pass@1 | pass@{n} |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        cells = [f"{row[key]:.3f}" if key in row else "" for key in ("kl", "pass@1", f"pass@{n}")]
        lines.append(f"| {row['arm']} | {row['step']} | {row['seeds']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def difference_curve(
    name: str, runs: list[EvalResult], base: list[EvalResult], resample_seeds: bool = False
) -> EvalResult:
    """``name`` minus the base at every k both share, as a curve with its paired bootstrap interval."""
    cells = paired_pass_at_k(runs, base, sorted(runs[0].curve), resample_seeds)
    curve, low, high = ({c.k: getattr(c, field) for c in cells} for field in ("mean", "low", "high"))
    return EvalResult(f"{name} − base", "", runs[0].split, min(runs[0].n, base[0].n), [], curve, low, high)


def paired_pass_at_k(
    runs: list[EvalResult], theirs: list[EvalResult], ks: Sequence[int], resample_seeds: bool = False
) -> list[PassAtK]:
    """pass@k of ``runs`` minus ``theirs`` on the same problems, at each k both sides' samples allow."""
    n = min(runs[0].n, theirs[0].n)
    mine, other = [r.counts for r in runs], [r.counts for r in theirs]
    return [
        paired_difference(mine, other, runs[0].n, theirs[0].n, k, resample_seeds=resample_seeds) for k in ks if k <= n
    ]


def _training_lines(training: dict[str, dict[str, list[float]]]) -> list[str]:
    if not training:
        return []
    lines = [
        "Training logs, each run averaged over the last third of its logged steps (mean ± std over seeds): the "
        "reward of its rollouts on the training problems, the negative share of its advantage mass "
        "(`advantages/neg_share`; GRPO's is 0.5 by construction) and the share of completions cut at the "
        "length limit.",
        "",
        "| method | seeds | " + " | ".join(TRAINING_STATS) + " |",
        "| --- | --- |" + " --- |" * len(TRAINING_STATS),
    ]
    for name, stats in training.items():
        seeds = int(max(cell[2] for cell in stats.values())) if stats else 0
        cells = [format_mean_std(stats[s][0], stats[s][1]) if s in stats else "" for s in TRAINING_STATS]
        lines.append(f"| {name} | {seeds} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def plot_path(report: Path, split: str) -> Path:
    return report.with_name(f"{report.stem}_{split}.png")


def pass_at_k_cells(results: dict[str, dict[str, list[EvalResult]]]) -> dict[str, dict[str, dict[str, list[float]]]]:
    """method -> split -> k -> [mean, std, seeds]."""
    cells: dict[str, dict[str, dict[str, list[float]]]] = {}
    for name, by_split in results.items():
        for split, runs in by_split.items():
            ks = sorted(runs[0].curve)
            cells.setdefault(name, {})[split] = {str(k): mean_std_count([r.curve[k] for r in runs]) for k in ks}
    return cells


def difference_rows(
    results: dict[str, dict[str, list[EvalResult]]], references: Sequence[str], resample_seeds: bool = False
) -> list[dict[str, Any]]:
    """Every arm minus the base, and minus each of ``references`` (other arms), at k = 1, n / 4 and n.

    The arms are evaluated on the same problems, so the difference is taken per problem (each side averaged
    over its seeds) and its interval resamples problems: the question "does GRPO lose coverage the base had?"
    is about these problems, and pairing removes their shared difficulty from the noise. ``resample_seeds``
    redraws each side's seeds too, so that a difference one seed carries does not pass for a resolved one.
    """
    rows = []
    for name, by_split in results.items():
        for other in ("base", *references):
            if name in ("base", other) or other not in results:
                continue
            for split, runs in by_split.items():
                theirs = results[other].get(split)
                if not theirs:
                    continue
                n = min(runs[0].n, theirs[0].n)
                ks = sorted({1, max(n // 4, 1), n})
                cells = {str(c.k): asdict(c) for c in paired_pass_at_k(runs, theirs, ks, resample_seeds)}
                rows.append({"arm": name, "minus": other, "split": split, "seeds": [len(runs), len(theirs)], **cells})
    return rows


def _difference_lines(rows: list[dict[str, Any]], split: str, resample_seeds: bool = False) -> list[str]:
    rows = [row for row in rows if row["split"] == split]
    if not rows:
        return []
    ks = [k for k in rows[0] if k.isdigit()]
    interval = (
        "95% bootstrap interval over problems and seeds (each side's seeds redrawn; a side with one seed adds no "
        "seed variation)"
        if resample_seeds
        else "95% bootstrap interval over problems, which leaves out seed-to-seed variation: read it beside the ± above"
    )
    lines = [
        f"Paired differences on {split} (same problems; each side averaged over its seeds; {interval}):",
        "",
        "| difference | seeds | " + " | ".join(f"Δ pass@{k}" for k in ks) + " |",
        "| --- | --- |" + " --- |" * len(ks),
    ]
    for row in rows:
        cells = [format_interval(row[k]["mean"], row[k]["low"], row[k]["high"]) if k in row else "" for k in ks]
        seeds = "/".join(str(s) for s in row["seeds"])
        lines.append(f"| {row['arm']} − {row['minus']} | {seeds} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def learning_rate_sentence(summary: dict[str, Any]) -> str:
    cfg = summary["config"]
    if summary["learning_rate_sources"] and all(s == "fixed" for s in summary["learning_rate_sources"].values()):
        return "learning rate fixed per method (no dev tuning)"
    return f"learning rate tuned per method on dev over {cfg['lr_grid']} (dev pass@1 with n = {cfg['dev_n']})"


def render_report(summary: dict[str, Any], path: Path, command: str) -> None:
    """``docs/results/passk_study.md``: settings, the exact command, and one table per split."""
    cfg = summary["config"]
    lines = [
        f"# {cfg['title']}",
        "",
        *([cfg["note"], ""] if cfg["note"] else []),
        f"Command: `{command}`",
        "",
        f"Base model `{cfg['base_model']}`; training {cfg['train']} for every method; "
        f"{learning_rate_sentence(summary)}; seeds {cfg['seeds']}; "
        f"test: first {cfg['test_problems']} problems of each split, n = {cfg['test_n']} samples each, "
        f"temperature 1{_sampling_sentence(cfg.get('eval_sampling', {}))}. Cells: mean ± std over seeds.",
        "",
        *_pending_lines(summary.get("pending", [])),
        "| method | lr | chosen |",
        "| --- | --- | --- |",
        *[
            f"| {m} | {lr:g} | {summary.get('learning_rate_sources', {}).get(m, '')} |"
            for m, lr in summary["learning_rates"].items()
        ],
        "",
        *_shared_lines(summary.get("shared_runs", {})),
        *_tuning_lines(summary.get("dev_pass1", {}), summary.get("base_dev_pass1"), cfg["lr_grid"]),
        *_training_lines(summary.get("training", {})),
    ]
    for split, _, _ in StudyConfig(**cfg).evaluations():
        ks = sorted({int(k) for m in summary["cells"].values() for k in m.get(split, {})})
        lines += [f"## {split}", "", f"![pass@k on {split}]({plot_path(path, split).name})", ""]
        lines.append("| method | seeds | " + " | ".join(f"pass@{k}" for k in ks) + " |")
        lines.append("| --- | --- |" + " --- |" * len(ks))
        for name, by_split in summary["cells"].items():
            if split not in by_split:
                continue
            row = by_split[split]
            cells = [format_mean_std(*row[str(k)][:2]) if str(k) in row else "" for k in ks]
            seeds = int(next(iter(row.values()))[2])
            lines.append(f"| {name} | {seeds} | " + " | ".join(cells) + " |")
        lines.append("")
        difference_lines = _difference_lines(summary.get("differences", []), split, cfg.get("resample_seeds", False))
        if difference_lines:
            name = plot_path(path, f"{split}_minus_base").name
            difference_lines[1:1] = ["", f"![pass@k minus the base's on {split}]({name})"]
        lines += difference_lines
    lines += _trajectory_lines(summary, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def _sampling_sentence(eval_sampling: dict[str, dict[str, Any]]) -> str:
    """``; split@t0.6: temperature 0.6, top_p 0.95`` for each further sampling setting."""
    return "".join(
        f"; split@{name}: " + ", ".join(f"{k} {v:g}" for k, v in setting.items() if k != "splits")
        for name, setting in eval_sampling.items()
    )


def _shared_lines(shared: dict[str, dict[str, str]]) -> list[str]:
    """Which arms train exactly what another arm trains, and so report that arm's runs."""
    if not shared:
        return []
    lines = [
        "Arms that train exactly what another arm trains (the same advantage rule, rate, seed and settings) "
        "share its runs:",
        "",
    ]
    for name, by_seed in shared.items():
        runs = ", ".join(f"seed {seed}: `{rel}`" for seed, rel in by_seed.items())
        lines.append(f"- {name}: {runs}")
    return [*lines, ""]


def _tuning_lines(dev_pass1: dict[str, dict[str, float]], base: float | None, grid: list[float]) -> list[str]:
    """Dev pass@1 of every tuning run, beside the base's, so a reader sees how close the choice was."""
    if not dev_pass1:
        return []
    lrs = [f"{lr:g}" for lr in grid]
    lines = ["Dev pass@1 of the tuning runs (seed 0):", ""]
    if base is not None:
        lines += [f"Base on dev: {base:.3f}.", ""]
    lines += ["| method | " + " | ".join(f"lr {lr}" for lr in lrs) + " |", "| --- |" + " --- |" * len(lrs)]
    for name, by_lr in dev_pass1.items():
        lines.append(f"| {name} | " + " | ".join(f"{by_lr[lr]:.3f}" if lr in by_lr else "" for lr in lrs) + " |")
    return [*lines, ""]


def _pending_lines(pending: list[str], shown: int = 12) -> list[str]:
    if not pending:
        return []
    listed = "; ".join(pending[:shown]) + (f"; and {len(pending) - shown} more" if len(pending) > shown else "")
    return [
        f"**Partial results.** {len(pending)} pieces of work have not run yet ({listed}). The command resumes "
        "where this stopped; the table cells below hold the seeds done so far.",
        "",
    ]
