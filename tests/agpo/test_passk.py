"""pass@k: equal to brute-force enumeration, stable at n = 1024, vectorised, with bootstrap intervals."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from agpo.passk import (
    default_ks,
    paired_difference,
    pass_at_k,
    pass_at_k_batch,
    pass_at_k_bootstrap,
    pass_at_k_curve,
)


@pytest.mark.parametrize("n", range(1, 9))
def test_equals_enumeration_of_all_k_subsets(n: int) -> None:
    for c in range(n + 1):
        samples = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(samples, k))
            brute = sum(any(s) for s in subsets) / len(subsets)
            assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12), (n, c, k)


def test_equals_exact_binomial_formula_for_moderate_n() -> None:
    n = 60
    for c in (0, 1, 7, 30, 59, 60):
        for k in (1, 5, 20, 60):
            exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
            assert pass_at_k(n, c, k) == pytest.approx(float(exact), abs=1e-12)


def test_finite_bounded_and_monotone_at_n_1024() -> None:
    n = 1024
    counts = np.arange(n + 1)
    previous = np.zeros(n + 1)
    for k in [*default_ks(n), 3, 1000]:
        values = pass_at_k_batch(counts, n, k)
        assert np.all(np.isfinite(values)) and np.all((values >= 0) & (values <= 1))
        if k in default_ks(n):
            assert np.all(values >= previous - 1e-12)  # more tries never hurt
            previous = values
    assert pass_at_k(n, 1, n) == 1.0
    assert pass_at_k(n, 1, 1) == pytest.approx(1 / n)
    assert pass_at_k(n, 0, n) == 0.0


def test_vectorised_equals_scalar_with_per_problem_n() -> None:
    rng = np.random.default_rng(0)
    n = rng.integers(4, 300, size=200)
    c = rng.integers(0, n + 1)
    got = pass_at_k_batch(c, n, 4)
    want = [pass_at_k(int(ni), int(ci), 4) for ni, ci in zip(n, c, strict=True)]
    np.testing.assert_allclose(got, want, atol=1e-14)


def test_default_ks_and_curve() -> None:
    assert default_ks(8) == [1, 2, 4, 8]
    assert default_ks(12) == [1, 2, 4, 8, 12]
    curve = pass_at_k_curve([0, 4, 8], 8)
    assert list(curve) == [1, 2, 4, 8]
    assert curve[1] == pytest.approx((0 + 0.5 + 1) / 3)
    assert curve[8] == pytest.approx(2 / 3)


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_more_problems() -> None:
    rng = np.random.default_rng(1)
    small = rng.binomial(16, 0.3, size=30)
    large = rng.binomial(16, 0.3, size=3000)
    for counts in (small, large):
        for row in pass_at_k_bootstrap(counts, 16, seed=3):
            assert row.low <= row.mean <= row.high
    width = lambda rows: rows[0].high - rows[0].low  # noqa: E731
    assert width(pass_at_k_bootstrap(large, 16)) < width(pass_at_k_bootstrap(small, 16)) / 3
    assert pass_at_k_bootstrap(small, 16, seed=5) == pass_at_k_bootstrap(small, 16, seed=5)


def test_paired_difference_averages_seeds_per_problem_and_keeps_the_pairing() -> None:
    rng = np.random.default_rng(2)
    hardness = rng.uniform(0.02, 0.9, size=200)
    base = rng.binomial(64, hardness)
    better = [rng.binomial(64, np.minimum(hardness + 0.05, 1.0)) for _ in range(3)]
    diff = paired_difference(better, [base], 64, 64, 1, seed=0)
    expected = np.mean([pass_at_k_batch(c, 64, 1) for c in better], axis=0) - pass_at_k_batch(base, 64, 1)
    assert diff.mean == pytest.approx(expected.mean())
    assert 0 < diff.low < diff.mean < diff.high  # the pairing sees a small, consistent gain
    # Two unpaired intervals overlap widely for the same gain: pairing is what makes it visible.
    separate = pass_at_k_bootstrap(better[0], 64, [1])[0], pass_at_k_bootstrap(base, 64, [1])[0]
    assert separate[0].low < separate[1].high
    assert paired_difference([base], [base], 64, 64, 64) == paired_difference([base], [base], 64, 64, 64)
    assert paired_difference([base], [base], 64, 64, 64).mean == 0.0
    with pytest.raises(ValueError, match="pairs need the same problems"):
        paired_difference([base], [base[:10]], 64, 64, 1)
    with pytest.raises(ValueError, match="at least one run"):
        paired_difference([], [base], 64, 64, 1)


def test_resampling_seeds_widens_the_interval_of_a_difference_one_seed_carries() -> None:
    rng = np.random.default_rng(3)
    hardness = rng.uniform(0.02, 0.9, size=150)
    base = rng.binomial(64, hardness)
    # One seed gains a lot, two gain nothing: over problems alone the mean gain looks resolved.
    lucky = [rng.binomial(64, np.minimum(hardness + shift, 1.0)) for shift in (0.12, 0.0, 0.0)]
    problems_only = paired_difference(lucky, [base], 64, 64, 1)
    with_seeds = paired_difference(lucky, [base], 64, 64, 1, resample_seeds=True)
    assert with_seeds.mean == problems_only.mean
    assert problems_only.low > 0
    assert with_seeds.low < 0.01 < problems_only.low  # a draw of the two flat seeds sits near zero
    assert with_seeds.high - with_seeds.low > 2 * (problems_only.high - problems_only.low)
    # Seeds that agree add little: the interval stays about as wide as over problems alone.
    steady = [rng.binomial(64, np.minimum(hardness + 0.04, 1.0)) for _ in range(3)]
    a = paired_difference(steady, [base], 64, 64, 1)
    b = paired_difference(steady, [base], 64, 64, 1, resample_seeds=True)
    assert b.low > 0 and (b.high - b.low) < 1.6 * (a.high - a.low)
    # One run a side: nothing to redraw but the problems.
    single = paired_difference([steady[0]], [base], 64, 64, 1, resample_seeds=True)
    assert single.low > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([3], 4, 8), "k=8 exceeds its n=4"),
        (([5], 4, 1), "correct count 5 is outside"),
        (([-1], 4, 1), "correct count -1 is outside"),
        (([1], 4, 0), "k must be >= 1"),
        (([1], 0, 1), "n >= 1"),
    ],
)
def test_bad_input(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pass_at_k_batch(*args)
