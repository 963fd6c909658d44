"""Benchmark of the advantage computation: AGPO against plain GRPO normalisation and a per-group loop.

Contenders, on the same 1M binary rewards:

- ``agpo``: ``compute_advantages(..., estimator="agpo")`` on contiguous groups (``group_size=G``);
- ``grpo``: the same engine with the symmetric GRPO settings (no correct/wrong split: a lower bound);
- ``trl_grpo``: GRPO's normalisation exactly as TRL 1.16's ``GRPOTrainer`` computes it (nanmean, TRL's
  ``nanstd``, ``repeat_interleave``), the plain baseline that trainers ship;
- ``agpo_index``: AGPO given shuffled group ids per sample (the general scatter path, for unequal or
  unsorted groups);
- ``loop``: the slow per-group Python loop in ``agpo.advantages_loop`` (``loop_advantages``).

They run side by side in one process, interleaved round by round, so machine noise hits them alike; the
figures that matter are the ratios.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from agpo.advantages import ESTIMATORS, compute_advantages
from agpo.advantages_loop import loop_advantages


@dataclass(frozen=True)
class BenchRow:
    group_size: int
    num_rewards: int
    agpo_ms: float
    grpo_ms: float
    trl_grpo_ms: float
    agpo_index_ms: float
    loop_ms: float

    @property
    def agpo_over_grpo(self) -> float:
        return self.agpo_ms / self.grpo_ms

    @property
    def agpo_over_trl(self) -> float:
        return self.agpo_ms / self.trl_grpo_ms

    @property
    def loop_over_agpo(self) -> float:
        return self.loop_ms / self.agpo_ms

    def as_dict(self) -> dict[str, float]:
        return asdict(self) | {
            "agpo_over_grpo": self.agpo_over_grpo,
            "agpo_over_trl": self.agpo_over_trl,
            "loop_over_agpo": self.loop_over_agpo,
        }


def trl_grpo(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """GRPO's group normalisation as TRL 1.16's ``_generate_and_score_completions`` writes it."""
    from trl.trainer.utils import nanstd

    mean = torch.nanmean(rewards.view(-1, group_size), dim=1).repeat_interleave(group_size, dim=0)
    std = nanstd(rewards.view(-1, group_size), dim=1).repeat_interleave(group_size, dim=0)
    return (rewards - mean) / (std + 1e-4)


def _time_ms(fn: Callable[[], object], times: list[float]) -> None:
    start = time.perf_counter()
    fn()
    times.append((time.perf_counter() - start) * 1e3)


def bench_advantages(
    num_rewards: int = 1_000_000,
    group_sizes: tuple[int, ...] = (8, 16, 64),
    repeats: int = 7,
    loop_repeats: int = 1,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[BenchRow]:
    """Time each contender on ``num_rewards`` binary rewards for each group size."""
    rows = []
    for G in group_sizes:
        n = num_rewards - num_rewards % G
        g = torch.Generator().manual_seed(seed)
        rewards = torch.randint(0, 2, (n,), generator=g).float()
        order = torch.randperm(n, generator=g)
        shuffled_rewards, index = rewards[order], torch.arange(n // G).repeat_interleave(G)[order]
        contenders: dict[str, Callable[[], object]] = {
            "agpo": lambda r=rewards, G=G: compute_advantages(r, group_size=G, estimator="agpo"),
            "grpo": lambda r=rewards, G=G: compute_advantages(r, group_size=G, estimator="grpo"),
            "trl_grpo": lambda r=rewards, G=G: trl_grpo(r, G),
            "agpo_index": lambda r=shuffled_rewards, i=index: compute_advantages(r, index=i, estimator="agpo"),
        }
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for fn in contenders.values():  # warm-up
            fn()
        for _ in range(repeats):
            for name, fn in contenders.items():
                _time_ms(fn, times[name])
        if progress:
            progress(f"G={G}: vectorised contenders done, timing the per-group loop")
        r_list, i_list = shuffled_rewards.tolist(), index.tolist()
        loop_times: list[float] = []
        for _ in range(loop_repeats):
            _time_ms(lambda r=r_list, i=i_list: loop_advantages(r, i, ESTIMATORS["agpo"]), loop_times)
        med = {name: statistics.median(t) for name, t in times.items()}
        rows.append(
            BenchRow(
                G,
                n,
                med["agpo"],
                med["grpo"],
                med["trl_grpo"],
                med["agpo_index"],
                statistics.median(loop_times),
            )
        )
    return rows


@dataclass(frozen=True)
class TrainerStepBench:
    steps: int
    grpo_s: float
    agpo_s: float

    @property
    def ratio(self) -> float:
        return self.agpo_s / self.grpo_s


def bench_trainer_step(
    model_dir: str,
    steps: int = 3,
    repeats: int = 3,
    prompts: int = 8,
    group_size: int = 8,
    max_len: int = 32,
    device: str = "cpu",
) -> TrainerStepBench:
    """Wall time of ``steps`` TRL training steps, AGPOTrainer against plain GRPOTrainer, alternating runs.

    Both train the same model on the same prompts with the same seed, so they sample the same completions and
    differ only in how advantages are computed. ``device`` is ``cpu`` or ``cuda`` (TRL's first GPU); both
    trainers run in float32 on either.
    """
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', not {device!r}")
    import tempfile

    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from agpo.trainer import AGPOConfig, AGPOTrainer

    def reward(completions: list[str], **_: object) -> list[float]:
        return [float(len(c) % 2) for c in completions]

    data = Dataset.from_dict({"prompt": [f"{i}+{i}=" for i in range(prompts)]})
    common = dict(
        per_device_train_batch_size=prompts * group_size,
        num_generations=group_size,
        max_completion_length=max_len,
        max_steps=steps,
        report_to="none",
        use_cpu=device == "cpu",
        bf16=False,
        save_strategy="no",
        logging_steps=steps,
        seed=0,
        disable_tqdm=True,
    )
    times: dict[str, list[float]] = {"grpo": [], "agpo": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for name, trainer_cls, config_cls in (
                ("grpo", GRPOTrainer, GRPOConfig),
                ("agpo", AGPOTrainer, AGPOConfig),
            ):
                trainer = trainer_cls(
                    model=model_dir,
                    reward_funcs=reward,
                    args=config_cls(output_dir=f"{tmp}/{name}", **common),
                    train_dataset=data,
                )
                start = time.perf_counter()
                trainer.train()
                times[name].append(time.perf_counter() - start)
    return TrainerStepBench(steps, statistics.median(times["grpo"]), statistics.median(times["agpo"]))
