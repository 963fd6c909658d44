"""GRPO here equals TRL's own group normalisation, taken from a real GRPOTrainer's scoring path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from agpo.advantages import compute_advantages

PROMPTS = ["1+1=", "2+3=", "4*5=", "9-3="]


@pytest.mark.parametrize("binary", [True, False])
def test_grpo_matches_trl_group_normalisation(tiny_lm_dir: Path, tmp_path: Path, binary: bool) -> None:
    generator = torch.Generator().manual_seed(11)
    seen: list[float] = []

    def reward(completions: list[str], **_: object) -> list[float]:
        n = len(completions)
        values = (
            torch.randint(0, 2, (n,), generator=generator).float() if binary else torch.rand(n, generator=generator)
        )
        seen.extend(values.tolist())
        return values.tolist()

    G = 4
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=len(PROMPTS) * G,
        num_generations=G,
        max_completion_length=6,
        scale_rewards="group",
        report_to="none",
        use_cpu=True,
        bf16=False,
        save_strategy="no",
    )
    trainer = GRPOTrainer(
        model=str(tiny_lm_dir),
        reward_funcs=reward,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": PROMPTS}),
    )
    inputs = [{"prompt": p} for p in PROMPTS for _ in range(G)]
    trl_advantages = trainer._generate_and_score_completions(inputs)["advantages"]

    rewards = torch.tensor(seen)
    assert rewards.numel() == len(PROMPTS) * G
    ours = compute_advantages(rewards, group_size=G, estimator="grpo", ddof=1, eps=1e-4)
    torch.testing.assert_close(ours, trl_advantages, rtol=1e-5, atol=1e-6)
    assert ours.abs().sum() > 0  # the draw produced at least one mixed group
