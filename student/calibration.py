"""Temperature scaling (Guo et al., 2017): one scalar T that divides the logits, fitted on dev by NLL.

It changes no prediction (argmax is invariant to T), only how confident the probabilities are. The fit runs
LBFGS on log T, which keeps T positive, and keeps T = 1 when the optimum it finds is not better, so fitting
never makes dev NLL worse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TemperatureFit:
    temperature: float
    nll_before: float
    nll_after: float


def nll(logits: np.ndarray, labels: Sequence[int], temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true labels under ``softmax(logits / T)``."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    y = np.asarray(labels, dtype=np.int64)
    return float(-log_p[np.arange(len(y)), y].mean())


def fit_temperature(logits: np.ndarray, labels: Sequence[int], max_iter: int = 100) -> TemperatureFit:
    import torch

    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or len(logits) != len(labels) or len(labels) == 0:
        raise ValueError(f"need matching non-empty logits (n, K) and labels, got {logits.shape} and {len(labels)}")
    z = torch.tensor(logits, dtype=torch.float64)
    y = torch.tensor(np.asarray(labels), dtype=torch.long)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    temperature = float(log_t.exp().item())
    before = nll(logits, labels, 1.0)
    after = nll(logits, labels, temperature) if np.isfinite(temperature) and temperature > 0 else float("inf")
    if not after < before:
        return TemperatureFit(1.0, before, before)
    return TemperatureFit(temperature, before, after)
