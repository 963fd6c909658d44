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
    # name -> TrainConfig settings; the name is the row label in the report. An arm's ``seeds`` (a subset of
    # ``seeds``) runs it on those alone: a secondary arm on one seed, the arms the reading rule needs on all.
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
    # Further sampling settings the splits are also evaluated under, by name: {"t0.6": {temperature: 0.6, top_p:
    # 0.95}} (NSR's protocol) reports "test_rare@t0.6" beside "test_rare" (temperature 1, top-p 1); a setting's
    # ``splits`` (default: all of them) limits it to those.
    eval_sampling: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Intervals of differences redraw each side's seeds as well as the problems (agpo.passk.paired_difference).
    resample_seeds: bool = False
    # Trajectories, so that methods moving at different speeds are compared at matched KL rather than at one step:
    # each policy's checkpoints at these steps (train.save_steps must divide them) are evaluated on the first split
    # at temperature 1, and every policy's and checkpoint's KL to the base is estimated from kl_n samples on that
    # split's first kl_problems problems (0: none).
    checkpoints: list[int] = field(default_factory=list)
    kl_problems: int = 0
    kl_n: int = 16

    @classmethod
    def load(cls, path: Path | None) -> StudyConfig:
        """Settings from YAML (``configs/study.yaml`` is the full study); no file: the built-in defaults."""
        if path is None:
            return cls()
        config = load_config(cls, path)
        config.check(path)
        return config

    def check(self, path: Path | str) -> None:
        """The arms named by ``ablation_lr_from`` and ``references`` exist, arms' seeds and sampling settings' splits
        are the study's; errors name ``path``."""
        lr_from = self.ablation_lr_from
        if lr_from and self.ablations and lr_from not in self.methods:
            raise ValueError(f"{path}: ablation_lr_from {lr_from!r} is not one of the methods {sorted(self.methods)}")
        arms = {**self.methods, **self.ablations}
        for name, settings in arms.items():
            extra = [s for s in settings.get("seeds", []) if s not in self.seeds]
            if extra:
                raise ValueError(f"{path}: arm {name!r} names seeds {extra} that are not in seeds {self.seeds}")
        for name, setting in self.eval_sampling.items():
            unknown = sorted(set(setting) - {"temperature", "top_p", "splits"})
            if unknown or not set(setting) - {"splits"}:
                raise ValueError(
                    f"{path}: eval_sampling {name!r} may set temperature, top_p and splits only, got {setting}"
                )
            stray = [s for s in setting.get("splits", []) if s not in self.splits]
            if stray:
                raise ValueError(f"{path}: eval_sampling {name!r} names splits {stray} that are not in splits")
        save_steps = int(self.train.get("save_steps", 0))
        steps = int(self.train.get("steps", 100))
        for step in self.checkpoints:
            if not save_steps or step % save_steps or not 0 < step < steps:
                raise ValueError(
                    f"{path}: checkpoint {step} needs train.save_steps dividing it (now {save_steps}) and 0 < step < "
                    f"train.steps ({steps})"
                )
        unknown_refs = [r for r in self.references if r not in arms]
        if unknown_refs:
            raise ValueError(f"{path}: references {unknown_refs} are not arms of the study; arms: {sorted(arms)}")

    def evaluations(self) -> list[tuple[str, str, dict[str, float]]]:
        """``(label, split, sampling overrides)`` of every test evaluation: each split at temperature 1, then under
        each of ``eval_sampling``."""
        plain: list[tuple[str, str, dict[str, float]]] = [(split, split, {}) for split in self.splits]
        for name, setting in self.eval_sampling.items():
            sampling = {k: float(v) for k, v in setting.items() if k != "splits"}
            plain += [(f"{split}@{name}", split, sampling) for split in setting.get("splits", self.splits)]
        return plain

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
