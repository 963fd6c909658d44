"""GRPO here equals TRL's own group normalisation, taken from a real GRPOTrainer's scoring path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import PROMPTS, make_trl_trainer, recording_reward
from trl import GRPOConfig, GRPOTrainer

from agpo.advantages import compute_advantages


@pytest.mark.parametrize("binary", [True, False])
def test_grpo_matches_trl_group_normalisation(tiny_lm_dir: Path, tmp_path: Path, binary: bool) -> None:
    seen: list[float] = []
    G = 4
    trainer = make_trl_trainer(
        GRPOTrainer, GRPOConfig, tiny_lm_dir, tmp_path, recording_reward(binary, 11, seen), G, scale_rewards="group"
    )
    inputs = [{"prompt": p} for p in PROMPTS for _ in range(G)]
    trl_advantages = trainer._generate_and_score_completions(inputs)["advantages"]

    rewards = torch.tensor(seen)
    assert rewards.numel() == len(PROMPTS) * G
    ours = compute_advantages(rewards, group_size=G, estimator="grpo", ddof=1, eps=1e-4)
    torch.testing.assert_close(ours, trl_advantages, rtol=1e-5, atol=1e-6)
    assert ours.abs().sum() > 0  # the draw produced at least one mixed group
