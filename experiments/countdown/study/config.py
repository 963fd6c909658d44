"""The pass@k study's settings: arms, seeds, the learning-rate grid, training and evaluation sizes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlvr.config import load_config


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
        config = load_config(cls, path)
        config.check(path)
        return config

    def check(self, path: Path | str) -> None:
        """The arms named by ``ablation_lr_from`` and ``references`` exist; errors name ``path``."""
        lr_from = self.ablation_lr_from
        if lr_from and self.ablations and lr_from not in self.methods:
            raise ValueError(f"{path}: ablation_lr_from {lr_from!r} is not one of the methods {sorted(self.methods)}")
        arms = {**self.methods, **self.ablations}
        unknown_refs = [r for r in self.references if r not in arms]
        if unknown_refs:
            raise ValueError(f"{path}: references {unknown_refs} are not arms of the study; arms: {sorted(arms)}")

    def reference_arms(self) -> list[str]:
        """The arms every other arm is compared with, besides the base."""
        return self.references or list(self.methods)[:1]

    def arms_in_order(
        self, include_ablations: bool, first: Sequence[str] = (), only: Sequence[str] = ()
    ) -> dict[str, dict[str, Any]]:
        """Methods, then ablations (when included); the ones named in ``only``, then in ``first``, moved to the
        front. A name that is not an arm raises ValueError naming its option."""
        arms = {**self.methods, **(self.ablations if include_ablations else {})}
        for option, names in (("--only", only), ("--first", first)):
            unknown = [name for name in names if name not in arms]
            if unknown:
                raise ValueError(f"{option}: unknown arm(s) {unknown}; the study's arms are {list(arms)}")
        return {**{name: arms[name] for name in [*only, *first]}, **arms}
