"""The study's runs: what makes a run what it is (its identity), where its results are cached and recorded, and
what its training log says.

A run is known by what it trains (the advantage rule the estimator's name resolves to, the rate, the seed, every
other setting), not by its arm's name, so arms that train the same thing share one run and its evaluations.
"""

from __future__ import annotations

import json
import shutil
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agpo.advantages import get_estimator
from rlvr.train import TrainConfig

# What each run's training log says about where its policy ended up, by the name the report gives it.
TRAINING_STATS = {
    "train reward": "reward",
    "negative share": "advantages/neg_share",
    "truncated": "completions/clipped_ratio",
}

# TrainConfig's fields that, with the estimator's name, make up the advantage rule a run trains with.
ADVANTAGE_SETTINGS = ("lambda_pos", "lambda_neg", "pos_term", "neg_term", "tau")


NOT_TRAINING = ("output_dir", "save_steps")


def run_settings(config: dict[str, Any]) -> dict[str, Any]:
    """Training settings that make a run what it is: where it was written is not one of them.

    A setting added to ``TrainConfig`` after a run was recorded is absent from its record; new settings default to
    the behaviour that came before them, so the run counts as trained with the default.
    """
    # Where a run is written, how often it logs and whether it keeps checkpoints do not change what it trains.
    return {k: v for k, v in {**asdict(TrainConfig()), **config}.items() if k not in NOT_TRAINING}


def run_identity(config: dict[str, Any]) -> str:
    """What a run trains, as a key: its settings with the estimator's name and overrides resolved into the advantage
    rule they give. ``{estimator: nsr}`` and ``{estimator: agpo, lambda_pos: 0}`` have one identity."""
    settings = run_settings(config)
    overrides = {k: settings.pop(k) for k in ADVANTAGE_SETTINGS if k in settings}
    rule = get_estimator(settings.pop("estimator"), **overrides)
    return json.dumps({**settings, "advantages": asdict(rule)}, sort_keys=True)


def recorded_identity(run_json: Path) -> str:
    """The identity of the run an ``agpo_run.json`` records."""
    return run_identity(json.loads(run_json.read_text())["config"])


@dataclass(frozen=True)
class Policy:
    rel: Path  # its directory under out_dir (and under record_dir for its small files)
    model: Callable[[], Path]  # trains it unless its weights are in out_dir; returns the model directory


class RunCache:
    """The study's result files: everything under ``out``, the small files also under ``record`` (when given),
    from which a checkout without ``out`` resumes."""

    def __init__(self, out: Path, record: Path | None) -> None:
        self.out = out
        self.record = record
        self._runs: dict[str, Path] | None = None  # run_identity -> the run's place; see known_runs

    def cached(self, rel: Path) -> Path | None:
        """A result file of this study, from out_dir or else from the record."""
        for root in (self.out, self.record):
            if root is not None and (root / rel).exists():
                return root / rel
        return None

    def keep(self, rel: Path) -> None:
        """Copy a small result file into the record, from which a checkout without out_dir resumes."""
        if self.record is not None and not (self.record / rel).exists():
            (self.record / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.out / rel, self.record / rel)

    def known_runs(self) -> dict[str, Path]:
        """Every run recorded under out_dir or record_dir, by what it trains, plus the policies the study has
        placed since. The first found keeps an identity, in a fixed order, so every process shares the same run."""
        if self._runs is None:
            self._runs = {}
            for root in (self.out, self.record):
                for stage in ("runs", "tune"):
                    for path in sorted((root / stage).glob("*/agpo_run.json")) if root is not None else []:
                        self._runs.setdefault(recorded_identity(path), path.parent.relative_to(root))
        return self._runs


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
