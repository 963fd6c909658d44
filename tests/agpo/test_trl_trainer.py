"""AGPOTrainer: TRL's GRPOTrainer with the estimator's advantages, checked down to what the loss consumes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import PROMPTS, make_trl_trainer, recording_reward
from trl import GRPOConfig, GRPOTrainer

from agpo.advantages import compute_advantages
from agpo.shared_prefix import protected_lengths, shared_prefix_lengths, token_advantages
from agpo.trainer import AGPOConfig, AGPOTrainer, group_advantages

G = 4


def agpo_config(**settings: object) -> AGPOConfig:
    return AGPOConfig(output_dir="unused", use_cpu=True, bf16=False, report_to="none", **settings)


INPUTS = [{"prompt": p} for p in PROMPTS for _ in range(G)]


def test_scoring_path_returns_the_estimators_advantages(tiny_lm_dir: Path, tmp_path: Path) -> None:
    seen: list[float] = []
    trainer = make_trl_trainer(AGPOTrainer, AGPOConfig, tiny_lm_dir, tmp_path, recording_reward(True, 3, seen), G)
    trainer.model.train()
    out = trainer._generate_and_score_completions(INPUTS)
    want = compute_advantages(torch.tensor(seen), group_size=G, estimator="agpo")
    assert torch.equal(out["advantages"], want)
    assert list(trainer._logs["advantages"]) == want.tolist()  # the completions table shows what was trained on
    assert trainer._metrics["train"]["advantages/neg_share"][-1] > 0.5


def test_grpo_setting_reproduces_plain_trl(tiny_lm_dir: Path, tmp_path: Path) -> None:
    seen_trl: list[float] = []
    seen_ours: list[float] = []
    plain = make_trl_trainer(GRPOTrainer, GRPOConfig, tiny_lm_dir, tmp_path / "a", recording_reward(False, 5, seen_trl))
    ours = make_trl_trainer(
        AGPOTrainer,
        AGPOConfig,
        tiny_lm_dir,
        tmp_path / "b",
        recording_reward(False, 5, seen_ours),
        advantage_estimator="grpo",
        adv_ddof=1,
        adv_eps=1e-4,
    )
    a = plain._generate_and_score_completions(INPUTS)["advantages"]
    b = ours._generate_and_score_completions(INPUTS)["advantages"]
    assert seen_trl == seen_ours
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_the_loss_consumes_exactly_the_estimators_output(tiny_lm_dir: Path, tmp_path: Path) -> None:
    seen: list[float] = []
    trainer = make_trl_trainer(
        AGPOTrainer,
        AGPOConfig,
        tiny_lm_dir,
        tmp_path,
        recording_reward(True, 8, seen),
        max_steps=1,
        lambda_pos=0.3,
        learning_rate=1e-3,
    )
    consumed: list[torch.Tensor] = []
    compute_loss = trainer._compute_loss

    def spy(model: torch.nn.Module, inputs: dict) -> torch.Tensor:
        consumed.append(inputs["advantages"].detach().clone())
        return compute_loss(model, inputs)

    trainer._compute_loss = spy
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()

    want = compute_advantages(torch.tensor(seen), group_size=G, estimator="agpo", lambda_pos=0.3)
    got = torch.cat(consumed)
    # TRL shuffles the generation batch before the loss sees it, so compare as multisets.
    assert torch.equal(got.sort().values, want.sort().values)
    grpo = compute_advantages(torch.tensor(seen), group_size=G, estimator="grpo")
    assert not torch.equal(got.sort().values, grpo.sort().values)  # the check above can tell the two apart
    assert any(not torch.equal(a, p.detach()) for a, p in zip(before, trainer.model.parameters(), strict=True))
    logged = [row for row in trainer.state.log_history if "advantages/neg_share" in row]
    assert logged and logged[0]["advantages/neg_share"] > 0.5


def test_unscorable_completions_get_zero_and_stay_out_of_their_group() -> None:
    rewards = torch.tensor([[1.0], [float("nan")], [0.0], [0.0], [1.0], [1.0], [0.0], [float("nan")]])
    cfg = agpo_config().advantage_config()
    adv, _ = group_advantages(rewards, torch.ones(1), 4, cfg)
    assert adv[1] == 0.0 and adv[7] == 0.0
    want_first = compute_advantages(torch.tensor([1.0, 0.0, 0.0]), group_size=3)
    assert torch.equal(adv[[0, 2, 3]], want_first)
    assert torch.equal(adv[[4, 5, 6]], compute_advantages(torch.tensor([1.0, 1.0, 0.0]), group_size=3))


def test_config_overrides_reach_the_estimator() -> None:
    cfg = agpo_config(advantage_estimator="nsr", lambda_neg=0.5, tau=0.8).advantage_config()
    assert (cfg.lambda_pos, cfg.lambda_neg, cfg.tau) == (0.0, 0.5, 0.8)
    with pytest.raises(ValueError, match="unknown estimator 'ppo'"):
        agpo_config(advantage_estimator="ppo").advantage_config()


def test_rejects_a_plain_grpo_config(tiny_lm_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="needs an AGPOConfig"):
        make_trl_trainer(AGPOTrainer, GRPOConfig, tiny_lm_dir, tmp_path, recording_reward(True, 0, []))


def test_shared_prefix_protection_spares_what_a_wrong_completion_shares_with_a_right_one(
    tiny_lm_dir: Path, tmp_path: Path
) -> None:
    # At a near-zero temperature a group's completions coincide, so every wrong completion shares its whole text
    # with a correct one: the protection must then zero it entirely, while correct ones keep their advantage.
    seen: list[float] = []
    trainer = make_trl_trainer(
        AGPOTrainer,
        AGPOConfig,
        tiny_lm_dir,
        tmp_path,
        recording_reward(True, 3, seen),
        G,
        protect_shared_prefix=True,
        temperature=0.001,
        max_steps=1,
        learning_rate=1e-3,
    )
    trainer.model.train()
    out = trainer._generate_and_score_completions(INPUTS)
    sequence = compute_advantages(torch.tensor(seen), group_size=G, estimator="agpo")
    ids, mask, tokens = out["completion_ids"], out["completion_mask"].bool(), out["advantages"]
    assert tokens.shape == ids.shape
    completions = [row[m].tolist() for row, m in zip(ids, mask, strict=True)]
    correct = [r >= 1.0 for r in seen]
    for start in range(0, len(seen), G):
        shared = shared_prefix_lengths(completions[start : start + G], correct[start : start + G])
        for i, length in zip(range(start, start + G), shared, strict=True):
            spared = length if not correct[i] and sequence[i] < 0 else 0
            assert torch.all(tokens[i, :spared] == 0)
            assert torch.all(tokens[i, spared:] == sequence[i])
    wrong_in_mixed = [
        i for i in range(len(seen)) if not correct[i] and any(correct[i - i % G : i - i % G + G]) and mask[i].any()
    ]
    assert wrong_in_mixed, "the seeded rewards must give some mixed groups"
    assert all(torch.all(tokens[i][mask[i]] == 0) for i in wrong_in_mixed)
    assert trainer._metrics["train"]["advantages/spared_token_share"][-1] > 0

    # And the loss trains on the (B, T) advantages.
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    assert any(not torch.equal(a, p.detach()) for a, p in zip(before, trainer.model.parameters(), strict=True))


def test_protected_lengths_only_touch_wrong_completions_with_a_negative_advantage() -> None:
    completions = [[1, 2, 3], [1, 2, 4], [1, 9], [7], [5, 5], [5, 6]]
    correct = [True, False, False, False, True, True]
    advantages = [0.1, -1.0, 0.0, -1.0, 0.0, 0.0]
    # Group 1: the two wrong ones share 2 and 1 tokens with [1,2,3] (the second's advantage is 0: untouched),
    # [7] shares nothing. Group 2 (size 2) is all correct.
    assert protected_lengths(completions[:4], correct[:4], advantages[:4], 4) == [0, 2, 0, 0]
    assert protected_lengths(completions[4:], correct[4:], advantages[4:], 2) == [0, 0]
    with pytest.raises(ValueError, match="groups of 4"):
        protected_lengths(completions, correct, advantages, 4)
    got = token_advantages(torch.tensor([0.1, -1.0]), [0, 2], width=3)
    assert torch.equal(got, torch.tensor([[0.1, 0.1, 0.1], [0.0, 0.0, -1.0]]))


def test_masked_truncated_completions_train_on_nothing_and_log_zero(tiny_lm_dir: Path, tmp_path: Path) -> None:
    seen: list[float] = []
    trainer = make_trl_trainer(
        AGPOTrainer,
        AGPOConfig,
        tiny_lm_dir,
        tmp_path,
        recording_reward(True, 3, seen),
        G,
        mask_truncated_completions=True,
    )
    trainer.model.train()
    out = trainer._generate_and_score_completions(INPUTS)
    kept = out["completion_mask"].any(dim=1)
    assert 0 < int(kept.sum()) < len(kept)  # both kinds are present, so the check below can fail either way
    want = compute_advantages(torch.tensor(seen), group_size=G, estimator="agpo") * kept
    assert torch.equal(out["advantages"], want)
    assert list(trainer._logs["advantages"]) == want.tolist()
    assert trainer._metrics["train"]["advantages/frac_zero"][-1] == pytest.approx(float((want == 0).float().mean()))
