"""``agpo teacher compare``: GRPO vs AGPO teachers trained from the same SFT base, as the paper compares them.

Protocol (all from one YAML file):

1. The SFT base: an existing SFT-only teacher directory, or built with the teacher recipe's SFT stage.
2. Learning rate per method, chosen on **dev** (never on gold-test): one run per (method, lr) at the first seed,
   scored by dev macro-F1 at majority of ``dev.n``.
3. Every seed of each method at its chosen lr, scored on **gold-test** at majority of ``gold.n``; the SFT base is
   scored the same way. All runs share the rollout budget (steps x prompts per step x group size).

Each run lives in ``<runs_dir>/<method>/lr<lr>/seed<seed>/`` with its model and ``dev.json`` / ``gold.json``; a
run or evaluation already on disk is reused, so an interrupted comparison resumes where it stopped, and
``max_new_runs`` lets a caller spend a bounded amount of compute per invocation. The report states which runs
are missing whenever the grid is incomplete.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from experiments.kit import mean_std_cell
from rlvr.config import from_mapping, read_mapping
from teacher.config import RlSettings, load_teacher_config
from teacher.data import benchmark_of_model, subset, write_jsonl
from teacher.evaluate import EvalSettings, evaluate_teacher, plot_confusion, write_report

Log = Callable[[str], None]


@dataclass(frozen=True)
class MethodSpec:
    estimator: str
    learning_rates: tuple[float, ...]
    lambda_pos: float | None = None
    lambda_neg: float | None = None
    protect_shared_prefix: bool = False


@dataclass(frozen=True)
class EvalSpec:
    pairs: int | None = None  # None: the whole split
    n: int = 8
    max_new_tokens: int = 112
    batch_size: int = 128


@dataclass(frozen=True)
class CompareConfig:
    base: str = "runs/teacher/sft"
    teacher_config: str = "configs/teacher.yaml"
    methods: dict[str, MethodSpec] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 40
    prompts_per_step: int = 16
    group_size: int = 8
    max_completion_length: int = 96
    temperature: float = 1.0
    dev: EvalSpec = field(default_factory=lambda: EvalSpec(pairs=400, n=4))
    gold: EvalSpec = field(default_factory=EvalSpec)
    note: str = ""  # free text (findings, caveats) printed at the end of the report
    source: str = "configs/teacher_compare.yaml"  # the file this config was read from (for the report)

    def with_seeds(self, count: int) -> CompareConfig:
        return replace(self, seeds=tuple(range(count)))


def load_compare_config(path: str | Path) -> CompareConfig:
    raw = read_mapping(path)
    methods = raw.get("methods") or {}
    if isinstance(methods, dict):  # a method's estimator defaults to its name
        raw["methods"] = {
            name: {"estimator": name, **spec} if isinstance(spec, dict) else spec for name, spec in methods.items()
        }
    cfg = from_mapping(CompareConfig, raw, str(path), internal=("source",))
    if not cfg.methods:
        raise ValueError(f"{path}: 'methods' must name at least one method with its learning_rates")
    return replace(cfg, source=str(path))


def _lr_tag(lr: float) -> str:
    return f"lr{lr:g}"


def run_dir(runs: Path, method: str, lr: float, seed: int) -> Path:
    return runs / method / _lr_tag(lr) / f"seed{seed}"


def _done(model_dir: Path) -> bool:
    return (model_dir / "model.safetensors").exists() and (model_dir / "agpo_run.json").exists()


def ensure_base(cfg: CompareConfig, log: Log) -> Path:
    """The SFT base directory, built with the teacher recipe's SFT stage when it is not there yet."""
    from teacher.build import build_teacher

    base = Path(cfg.base)
    if (base / "model.safetensors").exists():
        return base
    log(f"SFT base {base} missing: building it from {cfg.teacher_config} (SFT stage only)")
    recipe = load_teacher_config(cfg.teacher_config, ["rl.steps=0"])
    build_teacher(recipe, base, work_dir=base.parent / f"{base.name}.work", log=log, skip_eval=True)
    return base


def rl_pairs(cfg: CompareConfig, base: Path, runs: Path) -> Path:
    """The RL prompts every run shares: teacher-train pairs the SFT stage did not see, in a fixed order."""
    from teacher.data import split_train

    path = runs / "rl_pairs.jsonl"
    if path.exists():
        return path
    card = json.loads((base / "model_card.json").read_text())
    bench = benchmark_of_model(base)
    _, rl_records = split_train(bench.splits["teacher_train"], card["data"]["sft_examples"], card["recipe"]["seed"])
    write_jsonl(rl_records[: cfg.steps * cfg.prompts_per_step], path)
    return path


def train_run(cfg: CompareConfig, base: Path, pairs: Path, method: str, lr: float, seed: int, out: Path) -> None:
    from rlvr.train import train
    from teacher.build import rl_train_config

    spec = cfg.methods[method]
    rl = RlSettings(
        estimator=spec.estimator,
        steps=cfg.steps,
        prompts_per_step=cfg.prompts_per_step,
        group_size=cfg.group_size,
        learning_rate=lr,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        lambda_pos=spec.lambda_pos,
        lambda_neg=spec.lambda_neg,
        protect_shared_prefix=spec.protect_shared_prefix,
    )
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    train(rl_train_config(rl, seed, base, pairs, tmp))
    (tmp / "training_args.bin").unlink(missing_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)  # only a finished run gets the final name, so a killed run is redone, not half-reused


def evaluate_run(model_dir: Path, split: str, records: list[dict[str, Any]], spec: EvalSpec) -> dict[str, Any]:
    path = model_dir / f"{'gold' if split == 'gold_test' else split}.json"
    if path.exists():
        return json.loads(path.read_text())
    settings = EvalSettings(n=spec.n, max_new_tokens=spec.max_new_tokens, batch_size=spec.batch_size, seed=0)
    report, _ = evaluate_teacher(model_dir, records, settings)
    report["split"] = split
    write_report(report, path)
    return report


def _metric(report: dict[str, Any], name: str) -> float:
    n = report["n"]
    table = {
        "macro_f1": report[f"majority@{n}"]["macro_f1"],
        "accuracy": report[f"majority@{n}"]["accuracy"],
        "kappa": report[f"majority@{n}"]["cohen_kappa"],
        "ece": report[f"majority@{n}"]["ece"],
        "single_macro_f1": report["single"]["macro_f1"],
        "unparseable": report["unparseable_rate"],
        "pass@1": report["pass@k"]["1"],
        f"pass@{n}": report["pass@k"][str(n)],
    }
    return float(table[name])


def run_comparison(
    cfg: CompareConfig,
    runs_dir: str | Path,
    report_path: str | Path,
    *,
    command: str = "",
    max_new_runs: int | None = None,
    log: Log = print,
) -> dict[str, Any]:
    """Run (or resume) the comparison and write the markdown report; returns the summary it was made from."""
    from teacher.build import quiet_libraries

    quiet_libraries()
    runs = Path(runs_dir)
    runs.mkdir(parents=True, exist_ok=True)
    base = ensure_base(cfg, log)
    pairs = rl_pairs(cfg, base, runs)
    bench = benchmark_of_model(base)
    dev = subset(bench.splits["dev"], cfg.dev.pairs, seed=0)
    gold = subset(bench.splits["gold_test"], cfg.gold.pairs, seed=0)
    budget = {"new_runs": 0, "limit": max_new_runs}

    def trained(method: str, lr: float, seed: int) -> Path | None:
        out = run_dir(runs, method, lr, seed)
        if _done(out):
            return out
        if budget["limit"] is not None and budget["new_runs"] >= budget["limit"]:
            return None
        log(f"training {method} lr={lr:g} seed={seed} -> {out}")
        start = time.time()
        train_run(cfg, base, pairs, method, lr, seed, out)
        budget["new_runs"] += 1
        log(f"trained {method} lr={lr:g} seed={seed} in {time.time() - start:.0f} s")
        return out

    base_gold = evaluate_run(base, "gold_test", gold, cfg.gold)
    base_dev = evaluate_run(base, "dev", dev, cfg.dev)
    first_seed = cfg.seeds[0]
    tuning: dict[str, dict[str, float | None]] = {}
    chosen: dict[str, float | None] = {}
    for method, spec in cfg.methods.items():
        scores: dict[str, float | None] = {}
        for lr in spec.learning_rates:
            out = trained(method, lr, first_seed)
            scores[f"{lr:g}"] = _metric(evaluate_run(out, "dev", dev, cfg.dev), "macro_f1") if out else None
        tuning[method] = scores
        complete = all(v is not None for v in scores.values())
        known = {lr: v for lr, v in scores.items() if v is not None}
        chosen[method] = float(max(known, key=lambda k: known[k])) if known and complete else None
    results: dict[str, dict[int, dict[str, Any]]] = {}
    for method, lr in chosen.items():
        results[method] = {}
        if lr is None:
            continue
        for seed in cfg.seeds:
            out = trained(method, lr, seed)
            if out is not None:
                results[method][seed] = evaluate_run(out, "gold_test", gold, cfg.gold)
    summary = summarise(cfg, base_gold, base_dev, tuning, chosen, results, runs, Path(report_path).parent)
    write_markdown(summary, cfg, Path(report_path), command, cfg.source)
    (Path(report_path).with_suffix(".json")).write_text(json.dumps(summary, indent=1))
    return summary


METRICS = ("macro_f1", "accuracy", "kappa", "single_macro_f1", "unparseable", "ece", "pass@1")


def summarise(
    cfg: CompareConfig,
    base_gold: dict[str, Any],
    base_dev: dict[str, Any],
    tuning: dict[str, dict[str, float | None]],
    chosen: dict[str, float | None],
    results: dict[str, dict[int, dict[str, Any]]],
    runs: Path,
    plot_dir: Path,
) -> dict[str, Any]:
    n = cfg.gold.n
    names = (*METRICS, f"pass@{n}")
    rows: dict[str, Any] = {"sft": {m: mean_std_cell([_metric(base_gold, m)]) for m in names}}
    for method, by_seed in results.items():
        rows[method] = {m: mean_std_cell([_metric(r, m) for r in by_seed.values()]) for m in names}
    expected = {m: len(cfg.seeds) for m in cfg.methods}
    missing = [
        f"{m} seed {s}" + ("" if chosen.get(m) is not None else " (lr not chosen yet)")
        for m in cfg.methods
        for s in cfg.seeds
        if s not in results.get(m, {})
    ]
    plots = {}
    for method, by_seed in results.items():
        if by_seed:
            seed = min(by_seed)
            png = plot_dir / f"teacher_quality_confusion_{method}.png"
            plot_confusion(by_seed[seed], png, f"{method} teacher (seed {seed}) on gold-test, majority of {n}")
            plots[method] = str(png)
    png = plot_dir / "teacher_quality_confusion_sft.png"
    plot_confusion(base_gold, png, f"SFT base on gold-test, majority of {n}")
    plots["sft"] = str(png)
    return {
        "status": "complete" if not missing else "partial",
        "missing": missing,
        "expected_seeds": expected,
        "rows": rows,
        "tuning_dev_macro_f1": tuning,
        "chosen_lr": chosen,
        "sft_dev_macro_f1": _metric(base_dev, "macro_f1"),
        "gold_pairs": base_gold["pairs"],
        "dev_pairs": base_dev["pairs"],
        "runs_dir": str(runs),
        "plots": plots,
        "config": {**asdict(cfg), "methods": {k: asdict(v) for k, v in cfg.methods.items()}},
    }


def _cell(stat: dict[str, float], pct: bool = False) -> str:
    if not stat["count"]:
        return "-"
    scale, fmt = (100.0, "{:.1f}%") if pct else (1.0, "{:.3f}")
    text = fmt.format(stat["mean"] * scale)
    if stat["count"] > 1:
        text += " ± " + fmt.format(stat["std"] * scale).rstrip("%")
    return text


def write_markdown(
    summary: dict[str, Any], cfg: CompareConfig, path: Path, command: str, config_path: str = "<config.yaml>"
) -> None:
    n = cfg.gold.n
    rollouts = cfg.steps * cfg.prompts_per_step * cfg.group_size
    lines = [
        "# Teacher quality: GRPO vs AGPO from the same SFT base",
        "",
        f"Status: **{summary['status']}**."
        + (" Missing runs: " + ", ".join(summary["missing"]) + "." if summary["missing"] else ""),
        "",
        f"Regenerate, or finish the grid (runs and evaluations already in `{summary['runs_dir']}` are reused):",
        "",
        f"    agpo teacher compare --config {config_path} --runs-dir {summary['runs_dir']}",
        "",
        f"This version was written by `{command or 'agpo teacher compare'}`.",
        "",
        f"- SFT base: `{cfg.base}` (built by `{cfg.teacher_config}`'s SFT stage when missing).",
        f"- RL budget per run: {cfg.steps} steps x {cfg.prompts_per_step} prompts x {cfg.group_size} samples"
        f" = {rollouts} rollouts, max {cfg.max_completion_length} new tokens, temperature {cfg.temperature}.",
        f"- Learning rate per method chosen on dev ({summary['dev_pairs']} pairs, majority of {cfg.dev.n});"
        f" gold-test: {summary['gold_pairs']} pairs, {n} samples each. Seeds: {list(cfg.seeds)}.",
        "",
        f"## Gold-test (mean ± std over seeds; majority of {n} unless noted)",
        "",
        f"| teacher | lr | seeds | macro-F1 | accuracy | kappa | single-sample macro-F1 | unparseable | ECE@{n} "
        f"| pass@1 | pass@{n} |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in summary["rows"].items():
        lr = "-" if name == "sft" else (f"{summary['chosen_lr'][name]:g}" if summary["chosen_lr"].get(name) else "?")
        cells = [
            _cell(row["macro_f1"]),
            _cell(row["accuracy"]),
            _cell(row["kappa"]),
            _cell(row["single_macro_f1"]),
            _cell(row["unparseable"], pct=True),
            _cell(row["ece"]),
            _cell(row["pass@1"]),
            _cell(row[f"pass@{n}"]),
        ]
        label = "SFT base" if name == "sft" else name.upper()
        lines.append(f"| {label} | {lr} | {row['macro_f1']['count']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"## Learning-rate choice (dev macro-F1, majority of {cfg.dev.n}, seed {cfg.seeds[0]})",
        "",
        f"SFT base on dev: {summary['sft_dev_macro_f1']:.3f}.",
        "",
    ]
    all_lrs = sorted({x for m in cfg.methods.values() for x in m.learning_rates})
    lines.append("| method | " + " | ".join(f"lr {lr:g}" for lr in all_lrs) + " | chosen |")
    lines.append("| --- " * (len(all_lrs) + 2) + "|")
    for method, scores in summary["tuning_dev_macro_f1"].items():
        cells = []
        for lr in all_lrs:
            key = f"{lr:g}"
            cells.append("n/a" if key not in scores else "not run" if scores[key] is None else f"{scores[key]:.3f}")
        chosen = summary["chosen_lr"].get(method)
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {'pending' if chosen is None else f'{chosen:g}'} |")
    lines += ["", "## Confusion matrices (gold-test, majority vote)", ""]
    for name, png in summary["plots"].items():
        lines.append(f"![{name}]({Path(png).name})")
    if cfg.note.strip():
        lines += ["", "## Notes", "", cfg.note.strip()]
    lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
