"""How does a student grow with its training labels? Macro-F1 on a fixed test set against the number of training
pairs, for one recipe, beside the zero-shot bi-encoder and the majority class.

Training subsets are nested and made of whole queries: the training file's queries are shuffled once per seed and
the first ``n`` pairs of that order are taken, so 1k pairs contain the 500 and no query straddles train and test
(test and dev are separate files, split by query). Every run leaves ``eval.json`` in its folder and is skipped
when it is there, so an interrupted curve resumes where it stopped.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from experiments.kit import finished_run, format_mean_std, mean_std_cell
from rlvr.config import from_mapping, read_mapping

Log = Callable[[str], None]


@dataclass(frozen=True)
class CurveData:
    """Gold-labelled pairs JSONL files: where subsets are drawn from, where checkpoints are chosen, where scored."""

    train: str
    dev: str
    test: str


@dataclass(frozen=True)
class CurveConfig:
    datasets: dict[str, CurveData]
    sizes: tuple[int, ...] = (500, 1_000, 2_000, 5_000, 10_000, 20_000)
    seeds: tuple[int, ...] = (0,)
    recipe: dict[str, Any] = field(default_factory=dict)  # student.train.TrainConfig fields


def load_curve_config(path: str | Path) -> CurveConfig:
    return from_mapping(CurveConfig, read_mapping(path), source=str(path))


def select_datasets(cfg: CurveConfig, names: list[str] | None) -> CurveConfig:
    """``cfg`` with only the named datasets (all when ``names`` is empty); ValueError names unknown ones."""
    if not names:
        return cfg
    unknown = sorted(set(names) - set(cfg.datasets))
    if unknown:
        raise ValueError(f"unknown dataset(s) {', '.join(unknown)}; the config has {', '.join(cfg.datasets)}")
    return replace(cfg, datasets={k: v for k, v in cfg.datasets.items() if k in names})


def check_files(cfg: CurveConfig) -> None:
    """FileNotFoundError for the first missing data file, before anything trains."""
    for name, data in cfg.datasets.items():
        for role, path in asdict(data).items():
            if not Path(path).is_file():
                raise FileNotFoundError(
                    f"{name}.{role}: no file {path} "
                    "(`agpo relevance real` writes the real sets, `agpo relevance generate` the synthetic ones)"
                )


def query_subset(lines: list[str], n: int, seed: int) -> list[str]:
    """The first ``n`` pairs of ``lines`` after shuffling its queries (``meta.query_id``, else the query text)."""
    from relevance.pairs import Pair
    from student.data import query_group

    groups: dict[str, list[str]] = {}
    for line in lines:
        groups.setdefault(query_group(Pair.model_validate_json(line)), []).append(line)
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    picked = [line for group in order for line in groups[group]]
    if n > len(picked):
        raise ValueError(f"asked for {n:,} training pairs, the file has {len(picked):,}")
    return picked[:n]


def run_point(cfg: CurveConfig, data: CurveData, n: int, seed: int, out: Path, log: Log) -> dict[str, Any]:
    from student.evaluate import evaluate
    from student.train import TrainConfig, train

    if (done := finished_run(out)) is not None:
        return done
    report_path = out / "eval.json"
    subset = out / "train.jsonl"
    subset.write_text("\n".join(query_subset(Path(data.train).read_text().splitlines(), n, seed)) + "\n")
    config = TrainConfig(**{**cfg.recipe, "seed": seed, "progress": False})
    started = time.perf_counter()
    trained = train(subset, out / "model", config, source="gold", dev_path=data.dev)
    train_s = time.perf_counter() - started
    report = evaluate(out / "model", data.test, dev_path=data.dev, baselines=True)
    student = report["student"]
    summary = {
        "n": n,
        "seed": seed,
        "train_seconds": round(train_s, 1),
        "epochs": trained.meta["training"]["epochs"],
        "steps": trained.meta["training"]["steps"],
        "selected_step": (trained.meta["training"].get("selection") or {}).get("best_step"),
        **{k: student.get(k) for k in ("accuracy", "macro_f1", "cohen_kappa", "ndcg@10")},
        "predicted": _predicted_counts(student["confusion"]),
        "baselines": {
            name: {k: b.get(k) for k in ("macro_f1", "cohen_kappa", "ndcg@10")}
            for name, b in report.get("baselines", {}).items()
        },
    }
    report_path.write_text(json.dumps(summary, indent=2))
    # Metrics stay; 90 MB of weights per point do not.
    shutil.rmtree(out / "model", ignore_errors=True)
    subset.unlink()
    f1, kappa = summary["macro_f1"], summary["cohen_kappa"]
    log(f"  n={n:,} seed={seed}: macro-F1 {f1:.3f}, kappa {kappa:.3f} ({train_s:.0f}s)")
    return summary


def _predicted_counts(confusion: dict[str, Any]) -> dict[str, int]:
    """How often each label was predicted: the column sums of the gold-by-predicted matrix."""
    columns = confusion.get("columns", confusion["rows"])
    totals = [sum(row[j] for row in confusion["matrix"]) for j in range(len(columns))]
    return {name: int(total) for name, total in zip(columns, totals, strict=True)}


def run_curve(cfg: CurveConfig, out: Path, log: Log) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    curves: dict[str, Any] = {}
    for name, data in cfg.datasets.items():
        log(f"{name}: sizes {', '.join(f'{n:,}' for n in cfg.sizes)}; seeds {list(cfg.seeds)}")
        points = []
        for n in cfg.sizes:
            runs = [run_point(cfg, data, n, seed, out / name / f"n{n}" / f"seed{seed}", log) for seed in cfg.seeds]
            points.append(
                {
                    "n": n,
                    "macro_f1": mean_std_cell([r["macro_f1"] for r in runs], "seeds", 4),
                    "cohen_kappa": mean_std_cell([r["cohen_kappa"] for r in runs], "seeds", 4),
                    "runs": runs,
                }
            )
        baselines = points[0]["runs"][0]["baselines"]
        curves[name] = {"data": asdict(data), "points": points, "baselines": baselines}
    summary = {"config": _jsonable(cfg), "curves": curves}
    (out / "curve.json").write_text(json.dumps(summary, indent=2))
    return summary


def _jsonable(cfg: CurveConfig) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(cfg)))


def plot_curves(summary: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = summary["curves"]
    fig, axes = plt.subplots(1, len(curves), figsize=(5.2 * len(curves), 4.0), dpi=120, squeeze=False)
    for ax, (name, curve) in zip(axes[0], curves.items(), strict=True):
        ns = [p["n"] for p in curve["points"]]
        means = [p["macro_f1"]["mean"] for p in curve["points"]]
        stds = [p["macro_f1"]["std"] for p in curve["points"]]
        ax.errorbar(ns, means, yerr=stds, marker="o", capsize=3, label="student")
        for base, style in (("bi_encoder", "--"), ("majority", ":")):
            value = (curve["baselines"].get(base) or {}).get("macro_f1")
            if value is not None:
                ax.axhline(
                    value,
                    linestyle=style,
                    color="grey",
                    label=f"{base.replace('_', '-')} (zero-shot)" if base == "bi_encoder" else base,
                )
        ax.set_xscale("log")
        ax.set_xlabel("training pairs")
        ax.set_ylabel("macro-F1 on test")
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(summary: dict[str, Any], md_path: Path, command: str) -> Path:
    """The Markdown report, with the plot (.png) and the summary (.json) beside it."""
    png = plot_curves(summary, md_path.with_suffix(".png"))
    md_path.with_suffix(".json").write_text(json.dumps(summary, indent=2))
    recipe = summary["config"]["recipe"]
    lines = [
        "# Student learning curves",
        "",
        f"Command: `{command}`",
        "",
        f"Recipe (student.train.TrainConfig overrides): `{json.dumps(recipe)}`; seeds {summary['config']['seeds']}.",
        "Each point: a student trained on the first n pairs of the training file's queries in a seeded order,",
        "checkpoint chosen on dev macro-F1, scored on test. Baselines on the same test set: the zero-shot MiniLM",
        "bi-encoder (cosine cut points fitted on dev) and the majority class.",
        "",
        f"![learning curves]({png.name})",
        "",
    ]
    for name, curve in summary["curves"].items():
        base = curve["baselines"]
        bi, maj = base.get("bi_encoder") or {}, base.get("majority") or {}
        lines += [
            f"## {name}",
            "",
            f"train `{curve['data']['train']}`, dev `{curve['data']['dev']}`, test `{curve['data']['test']}`",
            "",
            "| training pairs | macro-F1 | Cohen's kappa | epochs | predicted (seed 0) |",
            "|---:|---|---|---:|---|",
        ]
        for p in curve["points"]:
            first = p["runs"][0]
            lines.append(
                f"| {p['n']:,} | {format_mean_std(p['macro_f1']['mean'], p['macro_f1']['std'])} "
                f"| {format_mean_std(p['cohen_kappa']['mean'], p['cohen_kappa']['std'])} "
                f"| {first['epochs']:.3g} | {', '.join(f'{k} {v}' for k, v in first['predicted'].items())} |"
            )
        lines += [
            f"| zero-shot bi-encoder | {bi.get('macro_f1', float('nan')):.3f} "
            f"| {bi.get('cohen_kappa') if bi.get('cohen_kappa') is None else round(bi['cohen_kappa'], 3)} | | |",
            f"| majority class | {maj.get('macro_f1', float('nan')):.3f} | 0.000 | | |",
            "",
        ]
    md_path.write_text("\n".join(lines) + "\n")
    return md_path
