"""The pass@k study: does AGPO raise pass@1 without shrinking pass@k at large k, where GRPO does?

From one base model, every method trains with the same rollouts per step and the same number of steps, its
learning rate tuned on the dev split, for several seeds; each final policy is evaluated with n samples per
test problem. Every run and evaluation is cached under ``out_dir``, so an interrupted study resumes where it
stopped and a finished one re-renders its report without recomputing anything.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agpo.evaluate import EvalResult, evaluate, load_results, plot_curves, save_results
from agpo.sampling import SamplingParams
from agpo.tasks.countdown import CountdownReward, make_splits
from agpo.train import TrainConfig, train

Log = Callable[[str], None]


@dataclass
class StudyConfig:
    title: str = "pass@k study: AGPO against GRPO-family baselines on Countdown"
    note: str = ""  # a paragraph printed under the title (e.g. what a reduced run does not show)
    base_model: str = "models/countdown-base"
    out_dir: str = "runs/study"
    # name -> TrainConfig settings; the name is the row label in the report
    methods: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "grpo": {"estimator": "grpo"},
            "dr_grpo": {"estimator": "dr_grpo"},
            "nsr": {"estimator": "nsr"},
            "w_reinforce": {"estimator": "w_reinforce"},
            "agpo": {"estimator": "agpo"},
        }
    )
    ablations: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            **{f"agpo_lp{lp}": {"estimator": "agpo", "lambda_pos": lp} for lp in (0.0, 0.05, 0.2, 0.5)},
            "agpo_const_pos": {"estimator": "agpo", "pos_term": "constant"},
        }
    )
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    lr_grid: list[float] = field(default_factory=lambda: [1e-5, 3e-5, 1e-4])
    train: dict[str, Any] = field(
        default_factory=lambda: {"steps": 100, "prompts_per_step": 16, "group_size": 8, "max_completion_length": 128}
    )
    dev_problems: int = 100
    dev_n: int = 16
    test_problems: int = 100
    test_n: int = 256
    splits: list[str] = field(default_factory=lambda: ["test_easy", "test_hard"])
    max_new_tokens: int = 128

    @classmethod
    def load(cls, path: Path | None) -> StudyConfig:
        """Settings from YAML (``configs/study.yaml`` is the full study); no file: the built-in defaults."""
        if path is None:
            return cls()
        data = yaml.safe_load(Path(path).read_text()) or {}
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown study setting(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


class Study:
    def __init__(self, config: StudyConfig, log: Log = print) -> None:
        self.cfg = config
        self.out = Path(config.out_dir)
        self.log = log
        self.splits = make_splits()

    # ------------------------------------------------------------------ building blocks, all cached on disk

    def _evaluate(self, model_dir: Path, split: str, n: int, problems: int, cache: Path, label: str) -> EvalResult:
        if cache.exists():
            cached = load_results(cache)[0]
            if (cached.n, len(cached.counts)) != (n, problems):
                raise ValueError(
                    f"{cache} holds an evaluation with n={cached.n} on {len(cached.counts)} problems, not n={n} on "
                    f"{problems}: use a new out_dir for new settings"
                )
            return cached
        chosen = getattr(self.splits, split)[:problems]
        self.log(f"  eval {label} on {split}: {len(chosen)} problems x {n} samples")
        result = evaluate(
            model_dir,
            [p.prompt for p in chosen],
            [p.reference for p in chosen],
            CountdownReward(),
            SamplingParams(n=n, max_new_tokens=self.cfg.max_new_tokens, seed=0),
            label=label,
            split=split,
        )
        save_results([result], cache)
        return result

    def _train(self, name: str, settings: dict[str, Any], lr: float, seed: int, run_dir: Path) -> Path:
        values = {**self.cfg.train, **settings, "learning_rate": lr, "seed": seed}
        config = TrainConfig(base_model=self.cfg.base_model, output_dir=str(run_dir), **values)
        done = run_dir / "agpo_run.json"
        if done.exists():
            # A cached run is reused only if it was trained with exactly these settings.
            if json.loads(done.read_text())["config"] != asdict(config):
                raise ValueError(f"{run_dir} was trained with other settings: use a new out_dir for new settings")
            return run_dir
        self.log(f"  train {name} lr={lr:g} seed={seed}")
        train(config)
        return run_dir

    def _run_dir(self, name: str, settings: dict[str, Any], lr: float, seed: int) -> Path:
        # Tuning trains seed 0 at every rate: the chosen rate's tuning run *is* the seed-0 run, not a rerun.
        if seed == 0 and "learning_rate" not in settings:
            return self.out / "tune" / f"{name}-lr{lr:g}"
        return self.out / "runs" / f"{name}-s{seed}"

    # ------------------------------------------------------------------ stages

    def tune(self, name: str, settings: dict[str, Any]) -> float:
        """The learning rate with the best dev pass@1 (seed 0), ties to the smaller rate."""
        if "learning_rate" in settings:
            return float(settings["learning_rate"])
        best: tuple[float, float] | None = None
        for lr in self.cfg.lr_grid:
            run = self._train(name, settings, lr, 0, self._run_dir(name, settings, lr, 0))
            dev = self._evaluate(run, "dev", self.cfg.dev_n, self.cfg.dev_problems, run / "eval_dev.json", name)
            if best is None or dev.curve[1] > best[1]:
                best = (lr, dev.curve[1])
        assert best is not None
        self.log(f"  {name}: lr {best[0]:g} (dev pass@1 {best[1]:.3f})")
        return best[0]

    def run(self, report: Path, include_ablations: bool = True) -> dict[str, Any]:
        """Every stage (cached), then raw JSON (``<report>.json``) and plots (``<report>_<split>.png``) beside
        the report."""
        base = Path(self.cfg.base_model)
        if not (base / "config.json").exists():
            raise FileNotFoundError(f"base model {base} not found: build it first (agpo base build --out {base})")
        results: dict[str, dict[str, list[EvalResult]]] = {}
        for split in self.cfg.splits:
            r = self._evaluate(
                base, split, self.cfg.test_n, self.cfg.test_problems, self.out / "base" / f"eval_{split}.json", "base"
            )
            results.setdefault("base", {})[split] = [r]
        arms = dict(self.cfg.methods)
        if include_ablations:
            arms.update(self.cfg.ablations)
        lrs = {}
        for name, settings in arms.items():
            self.log(f"{name}:")
            lrs[name] = self.tune(name, settings)
            for seed in self.cfg.seeds:
                run = self._train(name, settings, lrs[name], seed, self._run_dir(name, settings, lrs[name], seed))
                for split in self.cfg.splits:
                    cache = run / f"eval_{split}.json"
                    r = self._evaluate(run, split, self.cfg.test_n, self.cfg.test_problems, cache, name)
                    results.setdefault(name, {}).setdefault(split, []).append(r)
        summary = {"config": asdict(self.cfg), "learning_rates": lrs, "cells": _cells(results)}
        raw = {name: {split: [r.to_json() for r in runs] for split, runs in by.items()} for name, by in results.items()}
        report.parent.mkdir(parents=True, exist_ok=True)
        report.with_suffix(".json").write_text(json.dumps({**summary, "raw": raw}, indent=1))
        self._plot(results, report)
        return summary

    def _plot(self, results: dict[str, dict[str, list[EvalResult]]], report: Path) -> None:
        for split in self.cfg.splits:
            mean_curves = []
            for name, by_split in results.items():
                runs = by_split.get(split, [])
                if not runs or (name not in self.cfg.methods and name != "base"):
                    continue
                ks = sorted(runs[0].curve)
                mean = {k: statistics.fmean(r.curve[k] for r in runs) for k in ks}
                low = {k: min(r.curve[k] for r in runs) for k in ks}
                high = {k: max(r.curve[k] for r in runs) for k in ks}
                mean_curves.append(EvalResult(name, "", split, runs[0].n, [], mean, low, high))
            plot_curves(
                mean_curves, _plot_path(report, split), title=f"Countdown {split}: mean over seeds (band: min-max)"
            )


def _plot_path(report: Path, split: str) -> Path:
    return report.with_name(f"{report.stem}_{split}.png")


def _cells(results: dict[str, dict[str, list[EvalResult]]]) -> dict[str, dict[str, dict[str, list[float]]]]:
    """method -> split -> k -> [mean, std, seeds]."""
    cells: dict[str, dict[str, dict[str, list[float]]]] = {}
    for name, by_split in results.items():
        for split, runs in by_split.items():
            ks = sorted(runs[0].curve)
            cells.setdefault(name, {})[split] = {
                str(k): [
                    statistics.fmean(r.curve[k] for r in runs),
                    statistics.stdev([r.curve[k] for r in runs]) if len(runs) > 1 else 0.0,
                    float(len(runs)),
                ]
                for k in ks
            }
    return cells


def render_report(summary: dict[str, Any], path: Path, command: str) -> None:
    """``docs/results/passk_study.md``: settings, the exact command, and one table per split."""
    cfg = summary["config"]
    lines = [
        f"# {cfg['title']}",
        "",
        *([cfg["note"], ""] if cfg["note"] else []),
        f"Command: `{command}`",
        "",
        f"Base model `{cfg['base_model']}`; training {cfg['train']} for every method; learning rate tuned per "
        f"method on dev over {cfg['lr_grid']} (dev pass@1 with n = {cfg['dev_n']}); seeds {cfg['seeds']}; "
        f"test: first {cfg['test_problems']} problems of each split, n = {cfg['test_n']} samples each, "
        "temperature 1. Cells: mean ± std over seeds.",
        "",
        "| method | lr |",
        "| --- | --- |",
        *[f"| {m} | {lr:g} |" for m, lr in summary["learning_rates"].items()],
        "",
    ]
    for split in cfg["splits"]:
        ks = sorted({int(k) for m in summary["cells"].values() for k in m.get(split, {})})
        lines += [f"## {split}", "", f"![pass@k on {split}]({_plot_path(path, split).name})", ""]
        lines.append("| method | " + " | ".join(f"pass@{k}" for k in ks) + " |")
        lines.append("| --- |" + " --- |" * len(ks))
        for name, by_split in summary["cells"].items():
            if split not in by_split:
                continue
            row = by_split[split]
            cells = [f"{row[str(k)][0]:.3f} ± {row[str(k)][1]:.3f}" if str(k) in row else "" for k in ks]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
