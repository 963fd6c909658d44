"""The distillation loss against hand-computed values, and temperature scaling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from student.calibration import fit_temperature, nll
from student.losses import distillation_loss, pack_labels, unpack_labels

# softmax([ln 2, 0, 0]) = [1/2, 1/4, 1/4]
LOGITS = torch.tensor([[math.log(2.0), 0.0, 0.0]])
TARGET = torch.tensor([[0.5, 0.5, 0.0]])
HARD = torch.tensor([0])


def test_soft_loss_is_the_kl_divergence() -> None:
    # KL(p || q) = 1/2 ln(0.5 / 0.5) + 1/2 ln(0.5 / 0.25) + 0 = ln(2) / 2
    loss = distillation_loss(LOGITS, TARGET, HARD, targets="soft", temperature=1.0)
    assert loss.item() == pytest.approx(math.log(2.0) / 2, abs=1e-6)


def test_soft_loss_with_temperature_is_scaled_kl_of_softened_distributions() -> None:
    # T = 2: q = softmax([ln 2 / 2, 0, 0]) = [r, 1, 1] / (r + 2) with r = sqrt(2); p ** (1/2) renormalised stays
    # [1/2, 1/2, 0]; the loss is T^2 * KL.
    r = math.sqrt(2.0)
    q = [r / (r + 2), 1 / (r + 2)]
    kl = 0.5 * math.log(0.5 / q[0]) + 0.5 * math.log(0.5 / q[1])
    loss = distillation_loss(LOGITS, TARGET, HARD, targets="soft", temperature=2.0)
    assert loss.item() == pytest.approx(4 * kl, abs=1e-6)


def test_teacher_distribution_is_sharpened_by_temperature() -> None:
    # p = [0.8, 0.2, 0], T = 2: p^(1/2) = [sqrt(.8), sqrt(.2), 0] renormalised = [2/3, 1/3, 0]
    target = torch.tensor([[0.8, 0.2, 0.0]])
    logits = torch.log(torch.tensor([[2 / 3, 1 / 3, 1e-9]])) * 2  # student at T=2 equals [2/3, 1/3, ~0]
    loss = distillation_loss(logits, target, HARD, targets="soft", temperature=2.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_mixed_and_hard_losses() -> None:
    kl = math.log(2.0) / 2
    ce = -math.log(0.5)  # q[0] = 1/2
    mixed = distillation_loss(LOGITS, TARGET, HARD, targets="soft", alpha=0.25)
    assert mixed.item() == pytest.approx(0.75 * kl + 0.25 * ce, abs=1e-6)
    hard = distillation_loss(LOGITS, TARGET, HARD, targets="hard")
    assert hard.item() == pytest.approx(ce, abs=1e-6)
    # Label smoothing 0.3 over 3 classes: target [0.8, 0.1, 0.1]
    smooth = distillation_loss(LOGITS, TARGET, HARD, targets="hard", label_smoothing=0.3)
    expected = -(0.8 * math.log(0.5) + 0.1 * math.log(0.25) + 0.1 * math.log(0.25))
    assert smooth.item() == pytest.approx(expected, abs=1e-6)


def test_weights_give_a_weighted_mean() -> None:
    logits = torch.cat([LOGITS, torch.zeros(1, 3)])
    hard = torch.tensor([0, 2])
    ce = [-math.log(0.5), math.log(3.0)]
    loss = distillation_loss(logits, TARGET.repeat(2, 1), hard, torch.tensor([0.25, 0.75]), targets="hard")
    assert loss.item() == pytest.approx(0.25 * ce[0] + 0.75 * ce[1], abs=1e-6)


def test_label_packing_round_trips() -> None:
    row = pack_labels([0.75, 0.25, 0.0, 0.0], 0, 0.75)
    target, hard, weight = unpack_labels(torch.tensor([row, row]), 4)
    assert target.shape == (2, 4) and hard.tolist() == [0, 0] and weight.tolist() == [0.75, 0.75]
    with pytest.raises(ValueError, match="shape"):
        unpack_labels(torch.tensor([row]), 3)


def _overconfident(scale: float, n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4)) * 1.5
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in p])
    return z * scale, y


def test_temperature_fit_undoes_overconfidence() -> None:
    logits, labels = _overconfident(3.0)
    fit = fit_temperature(logits, labels)
    assert fit.temperature == pytest.approx(3.0, rel=0.15)
    assert fit.nll_after < fit.nll_before - 0.1
    assert fit.nll_after == pytest.approx(nll(logits, labels, fit.temperature))


def test_temperature_fit_never_worsens_nll() -> None:
    logits, labels = _overconfident(1.0, seed=1)
    fit = fit_temperature(logits, labels)
    assert fit.nll_after <= fit.nll_before
    assert fit.temperature == pytest.approx(1.0, rel=0.15)
