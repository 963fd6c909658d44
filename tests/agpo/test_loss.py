"""The clipped surrogate: direction of one update on a real tiny model, clipping, aggregation, KL, metrics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from agpo.loss import PolicyLossConfig, aggregate, policy_loss

PROMPT_LEN = 4


def sequence_logprobs(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Log-probs of the response tokens (everything after the prompt), shape (B, T)."""
    logits = model(input_ids=ids).logits[:, PROMPT_LEN - 1 : -1]
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[:, PROMPT_LEN:, None]).squeeze(-1)


@pytest.fixture
def model_and_batch(tiny_lm_dir: Path) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)
    ids = torch.randint(3, model.config.vocab_size, (2, PROMPT_LEN + 6))
    return model, ids


def sgd_step(model: torch.nn.Module, ids: torch.Tensor, advantage: float, log_ratio: float = 0.0) -> float:
    """One SGD step; returns the change in the sampled sequences' total log-prob."""
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    before = sequence_logprobs(model, ids)
    mask = torch.ones_like(before)
    old = before.detach() - log_ratio  # old policy such that ratio = exp(log_ratio)
    loss, _ = policy_loss(before, old, torch.full((ids.shape[0],), advantage), mask)
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        after = sequence_logprobs(model, ids)
    return float(after.sum() - before.detach().sum())


def test_positive_advantage_raises_the_sampled_sequence(model_and_batch: tuple) -> None:
    model, ids = model_and_batch
    assert sgd_step(model, ids, advantage=1.0) > 0


def test_negative_advantage_lowers_the_sampled_sequence(model_and_batch: tuple) -> None:
    model, ids = model_and_batch
    assert sgd_step(model, ids, advantage=-1.0) < 0


def grad_norm(model: torch.nn.Module, ids: torch.Tensor, advantage: float, ratio: float) -> float:
    model.zero_grad()
    logp = sequence_logprobs(model, ids)
    cfg = PolicyLossConfig(eps_low=0.2, eps_high=0.28)
    loss, _ = policy_loss(
        logp,
        logp.detach() - math.log(ratio),
        torch.full((ids.shape[0],), advantage),
        torch.ones_like(logp),
        cfg,
    )
    loss.backward()
    return math.sqrt(sum(float(p.grad.square().sum()) for p in model.parameters() if p.grad is not None))


@pytest.mark.parametrize(
    ("advantage", "ratio", "clipped"),
    [
        (1.0, 1.30, True),  # above 1 + eps_high, pulling further up: no gradient
        (1.0, 1.25, False),  # inside the trust region
        (1.0, 0.50, False),  # below: a positive advantage may still pull it back up
        (-1.0, 0.70, True),  # below 1 - eps_low, pushing further down: no gradient
        (-1.0, 0.85, False),
        (-1.0, 1.50, False),  # above: a negative advantage may still push it back down
    ],
)
def test_clipping_stops_the_update_outside_the_trust_region(
    model_and_batch: tuple, advantage: float, ratio: float, clipped: bool
) -> None:
    model, ids = model_and_batch
    norm = grad_norm(model, ids, advantage, ratio)
    assert (norm == 0.0) == clipped, norm


def test_aggregation_modes_by_hand() -> None:
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0], [9.0, 9.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # last sequence has no tokens
    assert float(aggregate(values, mask, "token-mean")) == pytest.approx((1 + 2 + 3 + 4) / 4)
    assert float(aggregate(values, mask, "seq-mean-token-sum")) == pytest.approx((6 + 4) / 2)
    assert float(aggregate(values, mask, "seq-mean-token-mean")) == pytest.approx((2 + 4) / 2)


def test_loss_value_and_metrics_on_known_inputs() -> None:
    logp = torch.log(torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    old = torch.log(torch.tensor([[0.25, 0.5], [0.5, 0.5]]))  # ratios 2, 1 | 1, 1
    adv = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    loss, m = policy_loss(logp, old, adv, mask, PolicyLossConfig(eps_low=0.2, eps_high=0.2))
    # tokens: -min(2, 1.2) = -1.2 ; -1 ; +1  -> token mean -1.2/3
    assert float(loss) == pytest.approx(-1.2 / 3)
    assert m["clip_frac"] == pytest.approx(1 / 3)
    assert m["clip_frac_high"] == pytest.approx(1 / 3)
    assert m["clip_frac_low"] == 0.0
    assert m["ratio_max"] == pytest.approx(2.0)
    assert m["ratio_mean"] == pytest.approx(4 / 3)
    assert m["adv_pos_mass"] == pytest.approx(2 / 3)
    assert m["adv_neg_mass"] == pytest.approx(1 / 3)
    assert m["adv_neg_share"] == pytest.approx(1 / 3)


def test_padding_garbage_does_not_leak_into_loss_or_gradient() -> None:
    logp = torch.tensor([[-1.0, 500.0]], requires_grad=True)
    old = torch.tensor([[-1.0, -500.0]])
    loss, m = policy_loss(logp, old, torch.tensor([1.0]), torch.tensor([[1.0, 0.0]]))
    loss.backward()
    assert math.isfinite(loss.item()) and m["ratio_max"] == 1.0
    assert logp.grad[0, 1] == 0.0 and logp.grad[0, 0] != 0.0


def test_k3_kl_penalty() -> None:
    logp = torch.log(torch.tensor([[0.5, 0.25]])).requires_grad_()
    mask = torch.ones(1, 2)
    cfg = PolicyLossConfig(beta=0.5)
    same, m0 = policy_loss(logp, logp.detach(), torch.zeros(1), mask, cfg, ref_logprobs=logp.detach())
    assert same.detach().item() == 0.0 and m0["kl"] == 0.0
    ref = torch.log(torch.tensor([[0.25, 0.25]]))
    loss, m1 = policy_loss(logp, logp.detach(), torch.zeros(1), mask, cfg, ref_logprobs=ref)
    delta = math.log(0.25) - math.log(0.5)
    k3 = math.exp(delta) - delta - 1
    assert m1["kl"] == pytest.approx(k3 / 2)
    assert loss.detach().item() == pytest.approx(0.5 * k3 / 2)
    loss.backward()
    assert logp.grad[0, 0] > 0  # the penalty pulls logp toward the reference (down)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(old_logprobs=torch.zeros(2, 4)), "old_logprobs has shape"),
        (dict(advantages=torch.zeros(3)), "advantages have shape"),
        (dict(advantages=torch.tensor([0.0, float("nan")])), "NaN or infinite"),
        (dict(config=PolicyLossConfig(beta=0.1)), "beta > 0 needs ref_logprobs"),
    ],
)
def test_bad_input(kwargs: dict, message: str) -> None:
    args = dict(
        logprobs=torch.zeros(2, 3),
        old_logprobs=torch.zeros(2, 3),
        advantages=torch.zeros(2),
        mask=torch.ones(2, 3),
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        policy_loss(**args)


def test_bad_config() -> None:
    with pytest.raises(ValueError, match="aggregation='mean'"):
        PolicyLossConfig(aggregation="mean")
    with pytest.raises(ValueError, match="eps_low must be below 1"):
        PolicyLossConfig(eps_low=1.0)
