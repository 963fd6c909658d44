"""The advantage estimators: closed forms, reductions, edge cases and the vectorised-vs-loop agreement."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agpo.advantages import ESTIMATORS, AdvantageConfig, compute_advantages, get_estimator, register_estimator
from agpo.advantages_loop import loop_advantages


def binary_rewards(num_groups: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (num_groups * size,), generator=g).to(torch.float64)


def group_mean_std(r: torch.Tensor, size: int, ddof: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    grouped = r.view(-1, size)
    mean = grouped.mean(1, keepdim=True).expand_as(grouped).reshape(-1)
    std = grouped.std(1, correction=ddof, keepdim=True).expand_as(grouped).reshape(-1)
    return mean, std


# ---------------------------------------------------------------- closed forms of each named estimator


@pytest.mark.parametrize("seed", range(5))
def test_each_estimator_equals_its_closed_form(seed: int) -> None:
    G, eps = 8, 1e-6
    r = binary_rewards(64, G, seed)
    mean, std = group_mean_std(r, G)
    c = r >= 1
    others = (mean * G - r) / (G - 1)

    def pick(if_correct: float, if_wrong: float) -> torch.Tensor:
        return torch.where(c, torch.full_like(r, if_correct), torch.full_like(r, if_wrong))

    expected = {
        "agpo": torch.where(c, 0.1 * (r - mean) / (std + eps), torch.full_like(r, -1.0)),
        "grpo": (r - mean) / (std + eps),
        "dr_grpo": r - mean,
        "nsr": pick(0.0, -1.0),
        "psr": pick(1.0, 0.0),
        "w_reinforce": pick(0.1, -1.0),
        "rloo": r - others,
    }
    for name, want in expected.items():
        got = compute_advantages(r, group_size=G, estimator=name)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12, msg=f"{name} differs from its closed form")


@pytest.mark.parametrize(
    ("target", "settings"),
    [
        ("grpo", dict(pos_term="normalized", neg_term="normalized", lambda_pos=1.0, lambda_neg=1.0)),
        ("dr_grpo", dict(pos_term="centered", neg_term="centered", lambda_pos=1.0, lambda_neg=1.0)),
        ("nsr", dict(lambda_pos=0.0)),
        ("psr", dict(pos_term="constant", lambda_pos=1.0, lambda_neg=0.0)),
        ("w_reinforce", dict(pos_term="constant", lambda_pos=0.1, lambda_neg=1.0)),
        ("rloo", dict(pos_term="loo", neg_term="loo", lambda_pos=1.0, lambda_neg=1.0)),
    ],
)
@pytest.mark.parametrize("seed", range(3))
def test_agpo_reduces_exactly_to_each_baseline(target: str, settings: dict, seed: int) -> None:
    r = binary_rewards(100, 16, seed)
    agpo = compute_advantages(r, group_size=16, estimator="agpo", **settings)
    baseline = compute_advantages(r, group_size=16, estimator=target)
    assert torch.equal(agpo, baseline)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("graded", [False, True])
def test_vectorised_equals_per_group_loop_on_unequal_unsorted_groups(name: str, ddof: int, graded: bool) -> None:
    g = torch.Generator().manual_seed(7)
    n = 3000
    index = torch.randint(-50, 400, (n,), generator=g)  # unsorted ids, unequal groups, some singletons
    r = torch.rand(n, generator=g, dtype=torch.float64) if graded else torch.randint(0, 2, (n,), generator=g).double()
    cfg = get_estimator(name, ddof=ddof, tau=0.7 if graded else 1.0)
    got = compute_advantages(r, index=index, estimator=cfg)
    want = torch.tensor(loop_advantages(r.tolist(), index.tolist(), cfg), dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_index_sizes_and_int_group_size_agree() -> None:
    r = binary_rewards(10, 6, 3)
    by_int = compute_advantages(r, group_size=6)
    by_sizes = compute_advantages(r, group_size=[6] * 10)
    by_index = compute_advantages(r, index=torch.arange(10).repeat_interleave(6))
    shuffled = torch.randperm(60, generator=torch.Generator().manual_seed(0))
    by_shuffled = compute_advantages(r[shuffled], index=torch.arange(10).repeat_interleave(6)[shuffled])
    torch.testing.assert_close(by_sizes, by_int, rtol=0, atol=1e-12)
    torch.testing.assert_close(by_index, by_int, rtol=0, atol=1e-12)
    torch.testing.assert_close(by_shuffled, by_int[shuffled], rtol=0, atol=1e-12)


# ---------------------------------------------------------------- the behaviour the paper asks for


@pytest.mark.parametrize("lambda_neg", [0.5, 1.0, 2.0])
def test_all_correct_group_is_zero_and_all_wrong_group_is_minus_lambda_neg(lambda_neg: float) -> None:
    r = torch.tensor([1.0] * 8 + [0.0] * 8)
    a = compute_advantages(r, group_size=8, lambda_neg=lambda_neg)
    assert torch.equal(a[:8], torch.zeros(8))
    assert torch.equal(a[8:], torch.full((8,), -lambda_neg))
    # GRPO, for contrast, gives an all-wrong group nothing to learn from.
    assert torch.equal(compute_advantages(r, group_size=8, estimator="grpo")[8:], torch.zeros(8))


@pytest.mark.parametrize("G", [4, 8, 16, 64])
def test_positive_advantage_falls_as_success_rate_rises(G: int) -> None:
    lam = 0.1
    values = []
    for k in range(1, G + 1):
        r = torch.tensor([1.0] * k + [0.0] * (G - k), dtype=torch.float64)
        a = compute_advantages(r, group_size=G, lambda_pos=lam, eps=0.0 if k < G else 1e-6)
        values.append(float(a[0]))
        p = k / G
        assert values[-1] == pytest.approx(lam * math.sqrt((1 - p) / p), abs=1e-12)
    assert all(x > y for x, y in itertools.pairwise(values)), values
    assert values[0] == pytest.approx(lam * math.sqrt(G - 1))  # a lone correct path gets the most
    assert values[-1] == 0.0  # trivial paths carry no update


@settings(max_examples=200, deadline=None)
@given(
    G=st.integers(min_value=2, max_value=64),
    lambda_neg=st.floats(min_value=0.05, max_value=5.0),
    rel=st.floats(min_value=0.05, max_value=3.0),
)
def test_negatives_dominate_every_mixed_group_iff_ratio_below_bound(G: int, lambda_neg: float, rel: float) -> None:
    bound = 1 / math.sqrt(G - 1)
    ratio = bound * rel
    if abs(rel - 1) < 1e-6:  # the boundary itself is a tie, decided by rounding
        return
    cfg = AdvantageConfig(lambda_pos=ratio * lambda_neg, lambda_neg=lambda_neg, eps=0.0)
    dominated = True
    for k in range(1, G):  # every mixed group: k correct out of G
        r = torch.tensor([1.0] * k + [0.0] * (G - k), dtype=torch.float64)
        a = compute_advantages(r, group_size=G, estimator=cfg)
        pos_mass, neg_mass = float(a[a > 0].sum()), float(-a[a < 0].sum())
        dominated &= neg_mass >= pos_mass
    assert dominated == (ratio <= bound)


def test_default_agpo_is_negative_dominant_for_groups_up_to_101() -> None:
    cfg = ESTIMATORS["agpo"]
    assert cfg.lambda_pos / cfg.lambda_neg <= 1 / math.sqrt(101 - 1)


def test_graded_rewards_use_tau_for_correctness() -> None:
    r = torch.tensor([0.2, 0.6, 0.9, 1.0], dtype=torch.float64)
    a = compute_advantages(r, group_size=4, tau=0.6, lambda_pos=1.0, lambda_neg=0.5)
    mean, std = r.mean(), r.std(correction=0)
    assert a[0] == -0.5
    torch.testing.assert_close(a[1:], (r[1:] - mean) / (std + 1e-6))


def test_keeps_dtype_and_accepts_integer_rewards() -> None:
    assert compute_advantages(torch.tensor([1.0, 0.0], dtype=torch.float16), group_size=2).dtype == torch.float16
    assert compute_advantages([1, 0, 0, 1], group_size=2).dtype == torch.get_default_dtype()


def test_register_estimator_and_overrides() -> None:
    register_estimator("agpo_const_test", dataclasses.replace(ESTIMATORS["agpo"], pos_term="constant"))
    r = torch.tensor([1.0, 0.0, 0.0, 0.0])
    assert compute_advantages(r, group_size=4, estimator="agpo_const_test").tolist() == pytest.approx(
        [0.1, -1.0, -1.0, -1.0]
    )
    with pytest.raises(ValueError, match="already registered"):
        register_estimator("agpo", ESTIMATORS["grpo"])
    ESTIMATORS.pop("agpo_const_test")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("rewards", "kwargs", "message"),
    [
        ([1.0, float("nan"), 0.0, 1.0], dict(group_size=2), "NaN or infinite value.*index 1"),
        ([1.0, 0.0, float("inf"), 1.0], dict(group_size=2), "first at index 2"),
        ([], dict(group_size=2), "rewards is empty"),
        ([[1.0, 0.0]], dict(group_size=2), "1-D tensor"),
        ([1.0, 0.0, 1.0], dict(group_size=2), "do not split into groups of 2"),
        ([1.0, 0.0], dict(group_size=0), "cannot be empty"),
        ([1.0, 0.0, 1.0], dict(group_size=[2, 0, 1]), "group 1 has size 0"),
        ([1.0, 0.0, 1.0], dict(group_size=[2, 2]), "add up to 4 but there are 3"),
        ([1.0, 0.0, 1.0], dict(index=[0, 0]), r"index has shape \(2,\)"),
        ([1.0, 0.0], dict(index=[0.0, 1.0]), "integer group ids"),
        ([1.0, 0.0], dict(), "exactly one of index"),
        ([1.0, 0.0], dict(index=[0, 0], group_size=2), "exactly one of index"),
        ([1.0, 0.0], dict(group_size=2, estimator="ppo"), "unknown estimator 'ppo'"),
        ([1.0, 0.0], dict(group_size=2, lambda_plus=1.0), "unknown advantage setting"),
        ([1.0, 0.0], dict(group_size=2, estimator=AdvantageConfig(), lambda_plus=1.0), "unknown advantage setting"),
        ([1.0, 0.0], dict(group_size=2, lambda_neg=-1.0), "lambda_neg must be a finite number >= 0"),
        ([1.0, 0.0], dict(group_size=2, pos_term="clipped"), "pos_term='clipped' is not one of"),
        ([1.0, 0.0], dict(group_size=2, ddof=2), "ddof must be 0 or 1"),
    ],
)
def test_bad_input_raises_a_clear_error(rewards: list, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compute_advantages(torch.tensor(rewards) if rewards and isinstance(rewards[0], list) else rewards, **kwargs)


def test_an_unset_override_keeps_the_estimators_value_and_an_unknown_name_still_fails() -> None:
    # Configs pass every optional setting, unset ones as None: they must not replace the estimator's values.
    assert get_estimator("nsr", lambda_pos=None, pos_term=None, tau=None) == ESTIMATORS["nsr"]
    assert get_estimator("agpo", lambda_pos=0.0, lambda_neg=None) == ESTIMATORS["nsr"]
    with pytest.raises(ValueError, match=r"unknown advantage setting\(s\) \['lambda_plus'\]"):
        get_estimator("agpo", lambda_plus=None)


def test_sorted_ids_with_unequal_groups_take_the_contiguous_path_correctly() -> None:
    sizes = [3, 5, 1, 7, 4]
    r = binary_rewards(1, sum(sizes), 9)
    index = torch.arange(len(sizes)).repeat_interleave(torch.tensor(sizes)) * 10  # sorted, gaps in ids
    for name in ESTIMATORS:
        got = compute_advantages(r, index=index, estimator=name)
        want = torch.tensor(loop_advantages(r.tolist(), index.tolist(), ESTIMATORS[name]), dtype=r.dtype)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(got, compute_advantages(r, group_size=sizes, estimator=name), rtol=0, atol=0)


def test_zero_eps_leaves_uniform_groups_at_zero_not_nan() -> None:
    r = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    a = compute_advantages(r, group_size=2, estimator="grpo", eps=0.0)
    assert torch.equal(a[:4], torch.zeros(4)) and torch.isfinite(a).all()
