"""pass@k: the chance that at least one of k samples is correct, estimated without bias from n >= k samples.

With c correct among n samples, pass@k = 1 - C(n - c, k) / C(n, k). The binomials overflow long before n = 1024,
so it is computed as the product 1 - prod_{i = n - c + 1}^{n} (1 - k / i), whose factors all lie in [0, 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


def _check(n: np.ndarray, c: np.ndarray, k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if np.any(n < 1):
        raise ValueError("every problem needs n >= 1 samples")
    if np.any(c < 0) or np.any(c > n):
        bad = int(np.flatnonzero((c < 0) | (c > n))[0])
        raise ValueError(f"problem {bad}: correct count {int(c[bad])} is outside [0, n={int(n[bad])}]")
    if np.any(k > n):
        bad = int(np.flatnonzero(k > n)[0])
        raise ValueError(f"problem {bad}: k={k} exceeds its n={int(n[bad])} samples; pass@k needs k <= n")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with ``c`` correct out of ``n`` samples."""
    return float(pass_at_k_batch([c], n, k)[0])


def pass_at_k_batch(counts: ArrayLike, n: int | ArrayLike, k: int) -> np.ndarray:
    """pass@k of each problem, vectorised: ``counts[j]`` correct out of ``n`` (or ``n[j]``) samples."""
    c = np.asarray(counts, dtype=np.int64).reshape(-1)
    n_arr = np.broadcast_to(np.asarray(n, dtype=np.int64), c.shape)
    _check(n_arr, c, k)
    # Only the factors i in (n - c, n] enter; pad each problem's row to the largest c with factor 1.
    width = int(c.max()) if c.size else 0
    offsets = np.arange(width)
    i = (n_arr - c + 1)[:, None] + offsets[None, :]
    active = offsets[None, :] < c[:, None]
    factors = np.where(active, 1.0 - k / np.maximum(i, 1), 1.0)
    result = 1.0 - np.prod(factors, axis=1)
    # Fewer than k wrong samples: every k-subset holds a correct one.
    return np.where(n_arr - c < k, 1.0, np.clip(result, 0.0, 1.0))


def default_ks(n: int) -> list[int]:
    """1, 2, 4, ... up to n, with n itself last even when it is not a power of two."""
    ks = [1 << e for e in range(n.bit_length()) if (1 << e) <= n]
    return ks if ks[-1] == n else [*ks, n]


def pass_at_k_curve(counts: ArrayLike, n: int | ArrayLike, ks: Iterable[int] | None = None) -> dict[int, float]:
    """Mean pass@k over problems for each k (default: powers of two up to n)."""
    n_min = int(np.min(n))
    return {k: float(pass_at_k_batch(counts, n, k).mean()) for k in (ks or default_ks(n_min))}


@dataclass(frozen=True)
class PassAtK:
    """Mean pass@k over problems with a percentile bootstrap interval (problems resampled)."""

    k: int
    mean: float
    low: float
    high: float


def pass_at_k_bootstrap(
    counts: ArrayLike,
    n: int | ArrayLike,
    ks: Sequence[int] | None = None,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[PassAtK]:
    """pass@k curve with a bootstrap confidence interval over problems, for each k."""
    c = np.asarray(counts, dtype=np.int64).reshape(-1)
    if c.size == 0:
        raise ValueError("no problems given")
    out = []
    for k in ks or default_ks(int(np.min(n))):
        per_problem = pass_at_k_batch(c, n, k)
        low, high = _bootstrap_mean(per_problem, resamples, confidence, seed)
        out.append(PassAtK(k, float(per_problem.mean()), low, high))
    return out


def _bootstrap_mean(values: np.ndarray, resamples: int, confidence: float, seed: int) -> tuple[float, float]:
    """Percentile interval of the mean of per-problem ``values`` with the problems resampled (same draws per seed)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    draws = np.random.default_rng(seed).integers(0, values.size, size=(resamples, values.size))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values[draws].mean(axis=1), [alpha, 1 - alpha])
    return float(low), float(high)


def paired_difference(
    counts_a: Sequence[ArrayLike],
    counts_b: Sequence[ArrayLike],
    n_a: int,
    n_b: int,
    k: int,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    resample_seeds: bool = False,
) -> PassAtK:
    """pass@k of A minus pass@k of B on the same problems, with a bootstrap interval over problems.

    Each side may hold several runs (seeds), each a count of correct samples per problem; a problem's pass@k is
    first averaged over its side's runs. Resampling the problems jointly for both sides keeps the pairing, so
    the interval is far narrower than two separate intervals would suggest when the sides agree on which
    problems are hard. Seed-to-seed variation beyond the runs given is not in the interval, unless
    ``resample_seeds``: then each bootstrap draw also redraws each side's runs with replacement (independently,
    since seed s of one method has nothing to do with seed s of another), so a difference that one lucky seed
    carries widens its interval. A side with one run contributes no seed variation either way.
    """
    if not counts_a or not counts_b:
        raise ValueError("each side needs at least one run")
    per_run = [
        np.stack([pass_at_k_batch(c, n, k) for c in runs]) for runs, n in ((counts_a, n_a), (counts_b, n_b))
    ]  # each side: runs x problems
    if per_run[0].shape[1] != per_run[1].shape[1]:
        raise ValueError(
            f"the sides hold {per_run[0].shape[1]} and {per_run[1].shape[1]} problems: pairs need the same problems"
        )
    diff = per_run[0].mean(axis=0) - per_run[1].mean(axis=0)
    if not resample_seeds:
        return PassAtK(k, float(diff.mean()), *_bootstrap_mean(diff, resamples, confidence, seed))
    return PassAtK(k, float(diff.mean()), *_bootstrap_runs_and_problems(per_run, resamples, confidence, seed))


def _bootstrap_runs_and_problems(
    sides: Sequence[np.ndarray], resamples: int, confidence: float, seed: int
) -> tuple[float, float]:
    """Percentile interval of side 0's mean minus side 1's, problems drawn jointly and each side's runs apart."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    problems = rng.integers(0, sides[0].shape[1], size=(resamples, sides[0].shape[1]))
    means = []
    for values in sides:
        # Each run's mean over each draw's problems (runs x resamples), then a draw of runs averaged per resample.
        run_means = values[:, problems].mean(axis=2)
        runs = rng.integers(0, values.shape[0], size=(resamples, values.shape[0]))
        means.append(np.take_along_axis(run_means.T, runs, axis=1).mean(axis=1))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means[0] - means[1], [alpha, 1 - alpha])
    return float(low), float(high)
