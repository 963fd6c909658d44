"""The pass@k study: does AGPO raise pass@1 without shrinking pass@k at large k, where GRPO does?

From one base model, every method trains with the same rollouts per step and the same number of steps, its
learning rate tuned on the dev split, for several seeds; each final policy is evaluated with n samples per
test problem. Every run and evaluation is cached under ``out_dir``, so an interrupted study resumes where it
stopped and a finished one re-renders its report without recomputing anything. The small files (each run's
settings and every evaluation) are also kept in ``record_dir``: committed, they let a study of many CPU-hours
advance in slices (``--hours``) from fresh checkouts.

Two arms can name the same training: NSR is AGPO with lambda_pos 0, W-REINFORCE is AGPO with a constant
positive term. A run is known by what it trains (the advantage rule the estimator's name resolves to, the rate,
the seed, every other setting), not by its arm's name, so such arms share one run and its evaluations.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

from agpo.advantages import get_estimator
from agpo.passk import PassAtK, paired_difference
from rlvr.evaluate import EvalResult, evaluate, load_results, plot_curves, save_results
from rlvr.sampling import SamplingParams
from rlvr.tasks.countdown import CountdownReward, make_splits
from rlvr.train import TrainConfig, train

Log = Callable[[str], None]
T = TypeVar("T")

# What each run's training log says about where its policy ended up, by the name the report gives it.
TRAINING_STATS = {
    "train reward": "reward",
    "negative share": "advantages/neg_share",
    "truncated": "completions/clipped_ratio",
}


@dataclass
class StudyConfig:
    title: str = "pass@k study: AGPO against GRPO-family baselines on Countdown"
    note: str = ""  # a paragraph printed under the title (e.g. what a reduced run does not show)
    base_model: str = "models/countdown-base"
    out_dir: str = "runs/study"
    # Where each run's settings and every evaluation (small JSON files, no weights) are also written, and read
    # from when out_dir lacks them: commit it, and a fresh checkout resumes the study where it stopped.
    record_dir: str = ""
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
    # An ablation without its own learning_rate trains at this method's tuned rate ("" = tune it too).
    ablation_lr_from: str = "agpo"
    # Every arm's pass@k is compared, problem by problem, with the base's and with each of these arms'
    # (none given: the first method's). An ablation reads best against the method it ablates.
    references: list[str] = field(default_factory=list)
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
        config = cls(**data)
        lr_from = config.ablation_lr_from
        if lr_from and config.ablations and lr_from not in config.methods:
            raise ValueError(f"{path}: ablation_lr_from {lr_from!r} is not one of the methods {sorted(config.methods)}")
        arms = {**config.methods, **config.ablations}
        unknown_refs = [r for r in config.references if r not in arms]
        if unknown_refs:
            raise ValueError(f"{path}: references {unknown_refs} are not arms of the study; arms: {sorted(arms)}")
        return config

    def reference_arms(self) -> list[str]:
        """The arms every other arm is compared with, besides the base."""
        return self.references or list(self.methods)[:1]


class OutOfTimeError(Exception):
    """The study's deadline passed before this piece of work could start."""


@dataclass(frozen=True)
class Policy:
    rel: Path  # its directory under out_dir (and under record_dir for its small files)
    model: Callable[[], Path]  # trains it unless its weights are in out_dir; returns the model directory


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    """Training settings that make a run what it is: where it was written is not one of them.

    A setting added to ``TrainConfig`` after a run was recorded is absent from its record; new settings default to
    the behaviour that came before them, so the run counts as trained with the default.
    """
    return {k: v for k, v in {**asdict(TrainConfig()), **config}.items() if k != "output_dir"}


# TrainConfig's fields that, with the estimator's name, make up the advantage rule a run trains with.
_ADVANTAGE_SETTINGS = ("lambda_pos", "lambda_neg", "pos_term", "neg_term", "tau")


def run_identity(config: dict[str, Any]) -> str:
    """What a run trains, as a key: its settings with the estimator's name and overrides resolved into the advantage
    rule they give. ``{estimator: nsr}`` and ``{estimator: agpo, lambda_pos: 0}`` have one identity."""
    settings = _settings(config)
    overrides = {k: settings.pop(k) for k in _ADVANTAGE_SETTINGS if k in settings}
    rule = get_estimator(settings.pop("estimator"), **overrides)
    return json.dumps({**settings, "advantages": asdict(rule)}, sort_keys=True)


class Study:
    def __init__(self, config: StudyConfig, log: Log = print, deadline: float | None = None) -> None:
        self.cfg = config
        self.out = Path(config.out_dir)
        self.record = Path(config.record_dir) if config.record_dir else None
        self.deadline = deadline  # time.time() after which no new training or evaluation starts
        self._holding = False  # set while an arm outside ``run(only=...)`` is visited: cached results only
        # Policies trained by this process: their evaluations run even past the deadline, since their weights
        # are not in the record and a fresh checkout would have to train them again.
        self._trained_now: set[Path] = set()
        self.dev_pass1: dict[str, dict[str, float]] = {}  # method -> lr -> dev pass@1, for the report
        self.base_dev_pass1: float | None = None
        self.log = log
        self.splits = make_splits()
        self._runs: dict[str, Path] | None = None  # run_identity -> the run's place; see _known_runs
        self.shared: dict[str, dict[str, str]] = {}  # arm -> seed -> the other arm's run it shares

    def _known_runs(self) -> dict[str, Path]:
        """Every run recorded under out_dir or record_dir, by what it trains, plus the policies this study has
        placed since. The first found keeps an identity, in a fixed order, so every process shares the same run."""
        if self._runs is None:
            self._runs = {}
            for root in (self.out, self.record):
                for stage in ("runs", "tune"):
                    for path in sorted((root / stage).glob("*/agpo_run.json")) if root is not None else []:
                        identity = run_identity(json.loads(path.read_text())["config"])
                        self._runs.setdefault(identity, path.parent.relative_to(root))
        return self._runs

    def _shared_and_trained(self) -> dict[str, dict[str, str]]:
        """The shared runs that exist: a pending one is shared too, but there is nothing of it to report yet."""
        trained = {
            name: {seed: rel for seed, rel in by_seed.items() if self._cached(Path(rel, "agpo_run.json"))}
            for name, by_seed in self.shared.items()
        }
        return {name: by_seed for name, by_seed in trained.items() if by_seed}

    # ------------------------------------------------------------------ building blocks, all cached on disk

    def _cached(self, rel: Path) -> Path | None:
        """A result file of this study, from out_dir or else from the record."""
        for root in (self.out, self.record):
            if root is not None and (root / rel).exists():
                return root / rel
        return None

    def _keep(self, rel: Path) -> None:
        """Copy a small result file into the record, from which a checkout without out_dir resumes."""
        if self.record is not None and not (self.record / rel).exists():
            (self.record / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.out / rel, self.record / rel)

    def _start(self, what: str) -> None:
        if self._holding or (self.deadline is not None and time.time() >= self.deadline):
            raise OutOfTimeError(what)

    def _evaluate(
        self, model: Callable[[], Path], split: str, n: int, problems: int, rel: Path, label: str
    ) -> EvalResult:
        """``model`` is called (and may train the policy) only when the evaluation is not cached yet."""
        cached_path = self._cached(rel)
        if cached_path is not None:
            cached = load_results(cached_path)[0]
            if (cached.n, len(cached.counts)) != (n, problems):
                raise ValueError(
                    f"{cached_path} holds an evaluation with n={cached.n} on {len(cached.counts)} problems, not "
                    f"n={n} on {problems}: use a new out_dir and record_dir for new settings"
                )
            if cached_path.is_relative_to(self.out):
                self._keep(rel)
            return cached
        if rel.parent not in self._trained_now:
            self._start(f"eval {label} on {split}")
        model_dir = model()
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
        save_results([result], self.out / rel)
        self._keep(rel)
        return result

    def _policy(self, name: str, settings: dict[str, Any], lr: float, seed: int, tuning: bool) -> Policy:
        """A trained policy's place in out_dir and a function that trains it if its weights are not there."""
        # Tuning trains seed 0 at every rate: the chosen rate's tuning run *is* the seed-0 run, not a rerun.
        own = Path("tune", f"{name}-lr{lr:g}") if tuning else Path("runs", f"{name}-s{seed}")
        values = {**self.cfg.train, **settings, "learning_rate": lr, "seed": seed}
        config = TrainConfig(base_model=self.cfg.base_model, output_dir=str(self.out / own), **values)
        identity = run_identity(asdict(config))
        # An arm's own recorded run stands; otherwise the run of any arm that trains the same thing does.
        cached = self._cached(own / "agpo_run.json") is not None
        rel = own if cached else self._known_runs().setdefault(identity, own)
        if rel != own:
            self.log(f"  {name} seed {seed} trains what {rel} trains: that run and its evaluations are shared")
            self.shared.setdefault(name, {})[str(seed)] = str(rel)
            config = replace(config, output_dir=str(self.out / rel))
        recorded = self._cached(rel / "agpo_run.json")
        # A cached run or evaluation is reused only if it was trained with exactly these settings.
        if recorded is not None and run_identity(json.loads(recorded.read_text())["config"]) != identity:
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
            self._keep(rel / "agpo_run.json")
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
        base = Path(self.cfg.base_model)
        if not (base / "config.json").exists():
            raise FileNotFoundError(f"base model {base} not found: build it first (agpo base build --out {base})")
        results: dict[str, dict[str, list[EvalResult]]] = {}
        training: dict[str, list[dict[str, float]]] = {}
        pending: list[str] = []
        for split in self.cfg.splits:
            try:
                rel = Path("base", f"eval_{split}.json")
                r = self._evaluate(lambda: base, split, self.cfg.test_n, self.cfg.test_problems, rel, "base")
            except OutOfTimeError:
                pending.append(f"base on {split}")
                continue
            results.setdefault("base", {})[split] = [r]
        # The base on dev is the reference that tells whether a tuned rate improved on the base at all.
        try:
            rel = Path("base", "eval_dev.json")
            dev = self._evaluate(lambda: base, "dev", self.cfg.dev_n, self.cfg.dev_problems, rel, "base")
            self.base_dev_pass1 = dev.curve[1]
        except OutOfTimeError:
            pending.append("base on dev")
        arms = _arms_in_order(self.cfg, include_ablations, first, only)
        lrs: dict[str, float] = {}
        lr_sources: dict[str, str] = {}
        waiting: set[str] = set()  # arms whose learning rate could not be chosen before the deadline
        # Seed-major order: every arm's seed 0 comes before any arm's seed 1, so a study cut short by its deadline
        # still compares all methods on one seed rather than a few methods on all seeds.
        for seed in self.cfg.seeds:
            for name, settings in arms.items():
                if name in waiting:
                    continue
                self._holding = bool(only) and name not in only
                self.log(f"{name} seed {seed}:" + (" (cached results only)" if self._holding else ""))
                try:
                    self._learning_rate(name, settings, lrs, lr_sources)
                except OutOfTimeError:
                    pending.append(f"{name} (learning rate)")
                    waiting.add(name)
                    continue
                tuning = seed == 0 and lr_sources[name] == "tuned on dev"
                policy = self._policy(name, settings, lrs[name], seed, tuning=tuning)
                for split in self.cfg.splits:
                    rel = policy.rel / f"eval_{split}.json"
                    try:
                        r = self._evaluate(policy.model, split, self.cfg.test_n, self.cfg.test_problems, rel, name)
                    except OutOfTimeError:
                        pending.append(f"{name} seed {seed} on {split}")
                        continue
                    results.setdefault(name, {}).setdefault(split, []).append(r)
                run_json = self._cached(policy.rel / "agpo_run.json")
                if run_json is not None:
                    training.setdefault(name, []).append(training_tail(run_json))
        self._holding = False
        # Tables, JSON and plots list the arms as the config does, whatever order --first/--only ran them in.
        canonical = ["base", *_arms_in_order(self.cfg, include_ablations, (), ())]
        results, training = _in_order(results, canonical), _in_order(training, canonical)
        summary = {
            "config": asdict(self.cfg),
            "learning_rates": _in_order(lrs, canonical),
            "learning_rate_sources": _in_order(lr_sources, canonical),
            "dev_pass1": _in_order(self.dev_pass1, canonical),
            "shared_runs": _in_order(self._shared_and_trained(), canonical),
            "base_dev_pass1": self.base_dev_pass1,
            "pending": pending,
            "cells": _cells(results),
            "training": {name: _mean_std(runs) for name, runs in training.items()},
            "differences": _differences(results, references=self.cfg.reference_arms()),
        }
        raw = {name: {split: [r.to_json() for r in runs] for split, runs in by.items()} for name, by in results.items()}
        report.parent.mkdir(parents=True, exist_ok=True)
        report.with_suffix(".json").write_text(json.dumps({**summary, "raw": raw}, indent=1))
        self._plot(results, report)
        return summary

    def _plot(self, results: dict[str, dict[str, list[EvalResult]]], report: Path) -> None:
        """Per split: the methods' mean pass@k curves, and each method's paired difference from the base."""
        for split in self.cfg.splits:
            mean_curves, differences = [], []
            base = results.get("base", {}).get(split)
            for name, by_split in results.items():
                runs = by_split.get(split, [])
                if not runs or (name not in self.cfg.methods and name != "base"):
                    continue
                ks = sorted(runs[0].curve)
                mean = {k: statistics.fmean(r.curve[k] for r in runs) for k in ks}
                low = {k: min(r.curve[k] for r in runs) for k in ks}
                high = {k: max(r.curve[k] for r in runs) for k in ks}
                mean_curves.append(EvalResult(name, "", split, runs[0].n, [], mean, low, high))
                if base and name != "base":
                    differences.append(_difference_curve(name, runs, base))
            if not mean_curves:
                continue
            plot_curves(
                mean_curves, _plot_path(report, split), title=f"Countdown {split}: mean over seeds (band: min-max)"
            )
            if differences:
                plot_curves(
                    differences,
                    _plot_path(report, f"{split}_minus_base"),
                    title=f"Countdown {split}: minus the base, paired (95% CI)",
                    ylabel="Δ pass@k vs base",
                    ylim=None,
                )


def _difference_curve(name: str, runs: list[EvalResult], base: list[EvalResult]) -> EvalResult:
    """``name`` minus the base at every k both share, as a curve with its paired bootstrap interval."""
    cells = _paired(runs, base, sorted(runs[0].curve))
    curve, low, high = ({c.k: getattr(c, field) for c in cells} for field in ("mean", "low", "high"))
    return EvalResult(f"{name} − base", "", runs[0].split, min(runs[0].n, base[0].n), [], curve, low, high)


def _paired(runs: list[EvalResult], theirs: list[EvalResult], ks: Sequence[int]) -> list[PassAtK]:
    """pass@k of ``runs`` minus ``theirs`` on the same problems, at each k both sides' samples allow."""
    n = min(runs[0].n, theirs[0].n)
    mine, other = [r.counts for r in runs], [r.counts for r in theirs]
    return [paired_difference(mine, other, runs[0].n, theirs[0].n, k) for k in ks if k <= n]


def _in_order(by_arm: dict[str, T], order: Sequence[str]) -> dict[str, T]:
    """``by_arm``'s entries in ``order`` (names not in ``order`` are dropped)."""
    return {name: by_arm[name] for name in order if name in by_arm}


def _arms_in_order(
    config: StudyConfig, include_ablations: bool, first: Sequence[str], only: Sequence[str] = ()
) -> dict[str, dict[str, Any]]:
    """Methods, then ablations (when included); the ones named in ``only``, then in ``first``, moved to the front."""
    arms = {**config.methods, **(config.ablations if include_ablations else {})}
    for option, names in (("--only", only), ("--first", first)):
        unknown = [name for name in names if name not in arms]
        if unknown:
            raise ValueError(f"{option}: unknown arm(s) {unknown}; the study's arms are {list(arms)}")
    return {**{name: arms[name] for name in [*only, *first]}, **arms}


def training_tail(run_json: Path, fraction: float = 1 / 3) -> dict[str, float]:
    """A run's logged reward, negative share of the advantage mass and truncated share, averaged over the last
    third of its logged steps: where the policy ended up, with less noise than the last step alone."""
    rows = [row for row in json.loads(run_json.read_text())["log_history"] if "reward" in row]
    tail = rows[-max(1, round(len(rows) * fraction)) :]
    return {
        name: statistics.fmean(float(row[key]) for row in tail)
        for name, key in TRAINING_STATS.items()
        if tail and all(key in row for row in tail)
    }


def _mean_std(runs: list[dict[str, float]]) -> dict[str, list[float]]:
    """stat -> [mean, std, seeds] over the runs that logged it."""
    out = {}
    for stat in TRAINING_STATS:
        values = [run[stat] for run in runs if stat in run]
        if values:
            out[stat] = _spread(values)
    return out


def _spread(values: Sequence[float]) -> list[float]:
    """[mean, std, count] over seeds, the form of every cell in the report's JSON (std 0 for a single seed)."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return [statistics.fmean(values), std, float(len(values))]


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
        cells = [f"{stats[s][0]:.3f} ± {stats[s][1]:.3f}" if s in stats else "" for s in TRAINING_STATS]
        lines.append(f"| {name} | {seeds} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _plot_path(report: Path, split: str) -> Path:
    return report.with_name(f"{report.stem}_{split}.png")


def _cells(results: dict[str, dict[str, list[EvalResult]]]) -> dict[str, dict[str, dict[str, list[float]]]]:
    """method -> split -> k -> [mean, std, seeds]."""
    cells: dict[str, dict[str, dict[str, list[float]]]] = {}
    for name, by_split in results.items():
        for split, runs in by_split.items():
            ks = sorted(runs[0].curve)
            cells.setdefault(name, {})[split] = {str(k): _spread([r.curve[k] for r in runs]) for k in ks}
    return cells


def _differences(results: dict[str, dict[str, list[EvalResult]]], references: Sequence[str]) -> list[dict[str, Any]]:
    """Every arm minus the base, and minus each of ``references`` (other arms), at k = 1, n / 4 and n.

    The arms are evaluated on the same problems, so the difference is taken per problem (each side averaged
    over its seeds) and its interval resamples problems: the question "does GRPO lose coverage the base had?"
    is about these problems, and pairing removes their shared difficulty from the noise.
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
                cells = {str(c.k): asdict(c) for c in _paired(runs, theirs, sorted({1, max(n // 4, 1), n}))}
                rows.append({"arm": name, "minus": other, "split": split, "seeds": [len(runs), len(theirs)], **cells})
    return rows


def _difference_lines(rows: list[dict[str, Any]], split: str) -> list[str]:
    rows = [row for row in rows if row["split"] == split]
    if not rows:
        return []
    ks = [k for k in rows[0] if k.isdigit()]
    lines = [
        f"Paired differences on {split} (same problems; each side averaged over its seeds; 95% bootstrap interval "
        "over problems, which leaves out seed-to-seed variation: read it beside the ± above):",
        "",
        "| difference | seeds | " + " | ".join(f"Δ pass@{k}" for k in ks) + " |",
        "| --- | --- |" + " --- |" * len(ks),
    ]
    for row in rows:
        cells = [f"{row[k]['mean']:+.3f} [{row[k]['low']:+.3f}, {row[k]['high']:+.3f}]" if k in row else "" for k in ks]
        seeds = "/".join(str(s) for s in row["seeds"])
        lines.append(f"| {row['arm']} − {row['minus']} | {seeds} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _lr_sentence(summary: dict[str, Any]) -> str:
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
        f"Base model `{cfg['base_model']}`; training {cfg['train']} for every method; {_lr_sentence(summary)}; "
        f"seeds {cfg['seeds']}; "
        f"test: first {cfg['test_problems']} problems of each split, n = {cfg['test_n']} samples each, "
        "temperature 1. Cells: mean ± std over seeds.",
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
    for split in cfg["splits"]:
        ks = sorted({int(k) for m in summary["cells"].values() for k in m.get(split, {})})
        lines += [f"## {split}", "", f"![pass@k on {split}]({_plot_path(path, split).name})", ""]
        lines.append("| method | seeds | " + " | ".join(f"pass@{k}" for k in ks) + " |")
        lines.append("| --- | --- |" + " --- |" * len(ks))
        for name, by_split in summary["cells"].items():
            if split not in by_split:
                continue
            row = by_split[split]
            cells = [f"{row[str(k)][0]:.3f} ± {row[str(k)][1]:.3f}" if str(k) in row else "" for k in ks]
            seeds = int(next(iter(row.values()))[2])
            lines.append(f"| {name} | {seeds} | " + " | ".join(cells) + " |")
        lines.append("")
        difference_lines = _difference_lines(summary.get("differences", []), split)
        if difference_lines:
            name = _plot_path(path, f"{split}_minus_base").name
            difference_lines[1:1] = ["", f"![pass@k minus the base's on {split}]({name})"]
        lines += difference_lines
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


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
