"""The pass@k study's work: tune each arm's learning rate on dev, train every seed, evaluate every policy.

Every run and evaluation is cached (see :mod:`experiments.countdown.study.runs`), so an interrupted study resumes
where it stopped and a finished one re-renders its report without recomputing anything.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from experiments.countdown.study.config import StudyConfig
from experiments.countdown.study.report import (
    difference_rows,
    pass_at_k_cells,
    plot_path,
    plot_study,
    plot_trajectories,
    training_summary,
)
from experiments.countdown.study.runs import Policy, RunCache, recorded_identity, run_identity, training_tail
from rlvr.evaluate import EvalResult, evaluate, load_results, save_results
from rlvr.kl import KLEstimate, kl_to_base
from rlvr.sampling import SamplingParams
from rlvr.tasks.countdown import CountdownReward, make_splits
from rlvr.train import TrainConfig, train

Log = Callable[[str], None]
T = TypeVar("T")


class OutOfTimeError(Exception):
    """The study's deadline passed before this piece of work could start."""


@dataclass
class Progress:
    """What one ``Study.run`` has gathered so far, arm by arm."""

    results: dict[str, dict[str, list[EvalResult]]] = field(default_factory=dict)  # arm -> split -> one per seed
    training: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # arm -> training_tail per seed
    lrs: dict[str, float] = field(default_factory=dict)
    lr_sources: dict[str, str] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)  # work the deadline (or --only) left for a later run
    waiting: set[str] = field(default_factory=set)  # arms whose learning rate could not be chosen before the deadline
    trajectories: dict[str, list[list[dict[str, float]]]] = field(default_factory=dict)  # arm -> per seed: points


def _eval_file(label: str) -> str:
    """``eval_test_hard.json``; ``eval_test_hard_t0.6.json`` for the evaluation labelled ``test_hard@t0.6``."""
    return f"eval_{label.replace('@', '_')}.json"


def in_order(by_arm: dict[str, T], order: Sequence[str]) -> dict[str, T]:
    """``by_arm``'s entries in ``order`` (names not in ``order`` are dropped)."""
    return {name: by_arm[name] for name in order if name in by_arm}


class Study:
    def __init__(self, config: StudyConfig, log: Log = print, deadline: float | None = None) -> None:
        self.cfg = config
        self.out = Path(config.out_dir)
        self.record = Path(config.record_dir) if config.record_dir else None
        self.cache = RunCache(self.out, self.record)
        self.deadline = deadline  # time.time() after which no new training or evaluation starts
        self._holding = False  # set while an arm outside ``run(only=...)`` is visited: cached results only
        # Policies trained by this process: their evaluations run even past the deadline, since their weights
        # are not in the record and a fresh checkout would have to train them again.
        self._trained_now: set[Path] = set()
        self.dev_pass1: dict[str, dict[str, float]] = {}  # method -> lr -> dev pass@1, for the report
        self.base_dev_pass1: float | None = None
        self.log = log
        self.splits = make_splits()
        self.shared: dict[str, dict[str, str]] = {}  # arm -> seed -> the other arm's run it shares

    def _shared_and_trained(self) -> dict[str, dict[str, str]]:
        """The shared runs that exist: a pending one is shared too, but there is nothing of it to report yet."""
        trained = {
            name: {seed: rel for seed, rel in by_seed.items() if self.cache.cached(Path(rel, "agpo_run.json"))}
            for name, by_seed in self.shared.items()
        }
        return {name: by_seed for name, by_seed in trained.items() if by_seed}

    # ------------------------------------------------------------------ building blocks, all cached on disk

    def _start(self, what: str) -> None:
        if self._holding or (self.deadline is not None and time.time() >= self.deadline):
            raise OutOfTimeError(what)

    def _evaluate(
        self,
        model: Callable[[], Path],
        split: str,
        n: int,
        problems: int,
        rel: Path,
        label: str,
        sampling: dict[str, float] | None = None,
    ) -> EvalResult:
        """``model`` is called (and may train the policy) only when the evaluation is not cached yet."""
        cached_path = self.cache.cached(rel)
        if cached_path is not None:
            cached = load_results(cached_path)[0]
            if (cached.n, len(cached.counts)) != (n, problems):
                raise ValueError(
                    f"{cached_path} holds an evaluation with n={cached.n} on {len(cached.counts)} problems, not "
                    f"n={n} on {problems}: use a new out_dir and record_dir for new settings"
                )
            if cached_path.is_relative_to(self.out):
                self.cache.keep(rel)
            return cached
        if rel.parent not in self._trained_now:
            self._start(f"eval {label} on {split}")
        model_dir = model()
        chosen = getattr(self.splits, split)[:problems]
        how = "".join(f", {k} {v:g}" for k, v in (sampling or {}).items())
        self.log(f"  eval {label} on {split}: {len(chosen)} problems x {n} samples{how}")
        result = evaluate(
            model_dir,
            [p.prompt for p in chosen],
            [p.reference for p in chosen],
            CountdownReward(),
            SamplingParams(n=n, max_new_tokens=self.cfg.max_new_tokens, seed=0, **(sampling or {})),
            label=label,
            split=split,
        )
        save_results([result], self.out / rel)
        self.cache.keep(rel)
        return result

    def _kl(self, model: Callable[[], Path], rel: Path, label: str) -> KLEstimate:
        """KL(policy || base) on the first split's first ``kl_problems`` problems, cached like an evaluation."""
        cached_path = self.cache.cached(rel)
        if cached_path is not None:
            if cached_path.is_relative_to(self.out):
                self.cache.keep(rel)
            return KLEstimate(**json.loads(cached_path.read_text()))
        if rel.parent not in self._trained_now:
            self._start(f"KL of {label}")
        model_dir = model()
        chosen = getattr(self.splits, self.cfg.splits[0])[: self.cfg.kl_problems]
        self.log(f"  KL of {label} to the base: {len(chosen)} problems x {self.cfg.kl_n} samples")
        kl = kl_to_base(
            model_dir,
            self.cfg.base_model,
            [p.prompt for p in chosen],
            n=self.cfg.kl_n,
            max_new_tokens=self.cfg.max_new_tokens,
        )
        (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
        (self.out / rel).write_text(json.dumps(kl.to_json(), indent=1))
        self.cache.keep(rel)
        return kl

    def _trajectory(self, name: str, policy: Policy, final: EvalResult | None) -> list[dict[str, float]]:
        """The policy's path from the base: pass@1 and pass@n on the first split, and KL to the base, at each
        checkpoint and at the end. Raises OutOfTimeError when a piece of it cannot start."""
        split, steps, n = self.cfg.splits[0], int(self.cfg.train["steps"]), self.cfg.test_n
        points = []
        for step in [*self.cfg.checkpoints, steps]:
            suffix = "" if step == steps else f"_step{step}"

            def model(step: int = step) -> Path:
                trained = policy.model()
                return trained if step == steps else trained / f"checkpoint-{step}"

            result = final
            if step != steps:
                rel = policy.rel / f"eval_{split}{suffix}.json"
                result = self._evaluate(model, split, n, self.cfg.test_problems, rel, f"{name} step {step}")
            point: dict[str, float] = {"step": step}
            if result is not None:
                point |= {"pass@1": result.curve[1], f"pass@{n}": result.curve[n]}
            if self.cfg.kl_problems:
                kl = self._kl(model, policy.rel / f"kl{suffix}.json", f"{name} step {step}")
                point |= {"kl": kl.mean, "kl_stderr": kl.stderr}
            points.append(point)
        return points

    def _policy(self, name: str, settings: dict[str, Any], lr: float, seed: int, tuning: bool) -> Policy:
        """A trained policy's place in out_dir and a function that trains it if its weights are not there."""
        # Tuning trains seed 0 at every rate: the chosen rate's tuning run *is* the seed-0 run, not a rerun.
        own = Path("tune", f"{name}-lr{lr:g}") if tuning else Path("runs", f"{name}-s{seed}")
        trains = {k: v for k, v in settings.items() if k != "seeds"}  # which seeds run an arm is not how it trains
        values = {**self.cfg.train, **trains, "learning_rate": lr, "seed": seed}
        config = TrainConfig(base_model=self.cfg.base_model, output_dir=str(self.out / own), **values)
        identity = run_identity(asdict(config))
        # An arm's own recorded run stands; otherwise the run of any arm that trains the same thing does.
        cached = self.cache.cached(own / "agpo_run.json") is not None
        rel = own if cached else self.cache.known_runs().setdefault(identity, own)
        if rel != own:
            self.log(f"  {name} seed {seed} trains what {rel} trains: that run and its evaluations are shared")
            self.shared.setdefault(name, {})[str(seed)] = str(rel)
            config = replace(config, output_dir=str(self.out / rel))
        recorded = self.cache.cached(rel / "agpo_run.json")
        # A cached run or evaluation is reused only if it was trained with exactly these settings.
        if recorded is not None and recorded_identity(recorded) != identity:
            raise ValueError(
                f"{recorded.parent} was trained with other settings: use a new out_dir and record_dir for new settings"
            )

        def trained() -> Path:
            run_dir = self.out / rel
            if (run_dir / "agpo_run.json").exists() and (run_dir / "model.safetensors").exists():
                return run_dir
            self._start(f"train {name}")
            self.log(f"  train {name} lr={lr:g} seed={seed}")
            train(config)
            self._trained_now.add(rel)
            self.cache.keep(rel / "agpo_run.json")
            return run_dir

        return Policy(rel, trained)

    # ------------------------------------------------------------------ stages

    def tune(self, name: str, settings: dict[str, Any]) -> float:
        """The learning rate with the best dev pass@1 (seed 0), ties to the smaller rate."""
        scores: dict[float, float] = {}
        for lr in self.cfg.lr_grid:
            policy = self._policy(name, settings, lr, 0, tuning=True)
            rel = policy.rel / "eval_dev.json"
            scores[lr] = self._evaluate(policy.model, "dev", self.cfg.dev_n, self.cfg.dev_problems, rel, name).curve[1]
        self.dev_pass1[name] = {f"{lr:g}": score for lr, score in scores.items()}
        best = max(scores, key=lambda lr: (scores[lr], -lr))
        self.log(f"  {name}: lr {best:g} (dev pass@1 {scores[best]:.3f})")
        return best

    def _learning_rate(
        self, name: str, settings: dict[str, Any], lrs: dict[str, float], sources: dict[str, str]
    ) -> float:
        """The arm's rate, recorded in ``lrs`` and ``sources``; an ablation first settles its source method's."""
        if name in lrs:
            return lrs[name]
        source = self.cfg.ablation_lr_from
        if "learning_rate" in settings:
            lrs[name], sources[name] = float(settings["learning_rate"]), "fixed"
        elif name in self.cfg.ablations and source:
            # Tuning the source here (cached when it already ran) lets an ablation run before its source's turn.
            lrs[name] = self._learning_rate(source, self.cfg.methods[source], lrs, sources)
            sources[name] = f"{source}'s"
        else:
            lrs[name], sources[name] = self.tune(name, settings), "tuned on dev"
        return lrs[name]

    def run(
        self, report: Path, include_ablations: bool = True, first: Sequence[str] = (), only: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Every stage (cached), then raw JSON (``<report>.json``) and plots (``<report>_<split>.png``) beside
        the report. Past the deadline no new training or evaluation starts (a policy this run trained is still
        evaluated): the report holds what is done and lists the rest as pending. The arms named in ``first``
        take their turn before the others within each seed; the work and the report are the same. When ``only``
        names arms, new work starts for them alone (and for the rate an ablation among them takes from its
        source): every other arm reports what is cached and lists the rest as pending."""
        base = self._base_model()
        progress = Progress()
        self._evaluate_base(base, progress)
        arms = self.cfg.arms_in_order(include_ablations, first, only)
        # Seed-major order: every arm's seed 0 comes before any arm's seed 1, so a study cut short by its deadline
        # still compares all methods on one seed rather than a few methods on all seeds.
        for seed in self.cfg.seeds:
            for name, settings in arms.items():
                if seed not in settings.get("seeds", self.cfg.seeds):
                    continue
                if name not in progress.waiting:
                    self._holding = bool(only) and name not in only
                    self._run_arm_seed(name, settings, seed, progress)
        self._holding = False
        summary = self._summarise(progress, include_ablations)
        self._write_raw(summary, progress.results, report)
        plot_study(self.cfg, progress.results, report)
        plot_trajectories(summary, plot_path(report, "tradeoff"))
        return summary

    def _base_model(self) -> Path:
        base = Path(self.cfg.base_model)
        if not (base / "config.json").exists():
            raise FileNotFoundError(f"base model {base} not found: build it first (agpo base build --out {base})")
        return base

    def _evaluate_base(self, base: Path, progress: Progress) -> None:
        """The base on every test split, and on dev: the yardstick that tells whether a tuned rate improved on the
        base at all."""
        for label, split, sampling in self.cfg.evaluations():
            try:
                rel = Path("base", _eval_file(label))
                r = self._evaluate(lambda: base, split, self.cfg.test_n, self.cfg.test_problems, rel, "base", sampling)
            except OutOfTimeError:
                progress.pending.append(f"base on {label}")
                continue
            progress.results.setdefault("base", {})[label] = [r]
        try:
            rel = Path("base", "eval_dev.json")
            dev = self._evaluate(lambda: base, "dev", self.cfg.dev_n, self.cfg.dev_problems, rel, "base")
            self.base_dev_pass1 = dev.curve[1]
        except OutOfTimeError:
            progress.pending.append("base on dev")

    def _run_arm_seed(self, name: str, settings: dict[str, Any], seed: int, progress: Progress) -> None:
        """One arm at one seed: its learning rate (tuned if need be), its policy, every test split's evaluation and
        its training log; what cannot start goes to ``progress.pending``."""
        self.log(f"{name} seed {seed}:" + (" (cached results only)" if self._holding else ""))
        try:
            self._learning_rate(name, settings, progress.lrs, progress.lr_sources)
        except OutOfTimeError:
            progress.pending.append(f"{name} (learning rate)")
            progress.waiting.add(name)
            return
        tuning = seed == 0 and progress.lr_sources[name] == "tuned on dev"
        policy = self._policy(name, settings, progress.lrs[name], seed, tuning=tuning)
        seeds_done = len(progress.results.get(name, {}).get(self.cfg.splits[0], []))
        for label, split, sampling in self.cfg.evaluations():
            rel = policy.rel / _eval_file(label)
            try:
                r = self._evaluate(policy.model, split, self.cfg.test_n, self.cfg.test_problems, rel, name, sampling)
            except OutOfTimeError:
                progress.pending.append(f"{name} seed {seed} on {label}")
                continue
            progress.results.setdefault(name, {}).setdefault(label, []).append(r)
        if self.cfg.checkpoints or self.cfg.kl_problems:
            final = progress.results.get(name, {}).get(self.cfg.splits[0], [])
            try:
                points = self._trajectory(name, policy, final[-1] if len(final) > seeds_done else None)
                progress.trajectories.setdefault(name, []).append(points)
            except OutOfTimeError:
                progress.pending.append(f"{name} seed {seed}: checkpoints and KL")
        run_json = self.cache.cached(policy.rel / "agpo_run.json")
        if run_json is not None:
            progress.training.setdefault(name, []).append(training_tail(run_json))

    def _summarise(self, progress: Progress, include_ablations: bool) -> dict[str, Any]:
        """The report's numbers. Tables, JSON and plots list the arms as the config does, whatever order
        --first/--only ran them in; ``progress.results`` and ``progress.training`` are put in that order too."""
        canonical = ["base", *self.cfg.arms_in_order(include_ablations)]
        progress.results = in_order(progress.results, canonical)
        progress.training = in_order(progress.training, canonical)
        return {
            "config": asdict(self.cfg),
            "learning_rates": in_order(progress.lrs, canonical),
            "learning_rate_sources": in_order(progress.lr_sources, canonical),
            "dev_pass1": in_order(self.dev_pass1, canonical),
            "shared_runs": in_order(self._shared_and_trained(), canonical),
            "base_dev_pass1": self.base_dev_pass1,
            "pending": progress.pending,
            "cells": pass_at_k_cells(progress.results),
            "training": {name: training_summary(runs) for name, runs in progress.training.items()},
            "trajectories": in_order(progress.trajectories, canonical),
            "differences": difference_rows(
                progress.results, references=self.cfg.reference_arms(), resample_seeds=self.cfg.resample_seeds
            ),
        }

    @staticmethod
    def _write_raw(summary: dict[str, Any], results: dict[str, dict[str, list[EvalResult]]], report: Path) -> None:
        """``<report>.json``: the summary and every evaluation it was computed from."""
        raw = {name: {split: [r.to_json() for r in runs] for split, runs in by.items()} for name, by in results.items()}
        report.parent.mkdir(parents=True, exist_ok=True)
        report.with_suffix(".json").write_text(json.dumps({**summary, "raw": raw}, indent=1))
