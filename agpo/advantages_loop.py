"""A slow, obviously correct per-group implementation of the advantage rule.

It loops over groups in Python and reads like the formula in ``agpo.advantages``. Tests hold the vectorised
estimators to it, and the benchmark times against it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from agpo.advantages import AdvantageConfig


def _side(term: str, scale: float, sign: float, r: float, mean: float, std: float, n: int, eps: float) -> float:
    if term == "constant":
        return sign * scale
    if term == "centered":
        return scale * (r - mean)
    if term == "normalized":
        return scale * (r - mean) / (std + eps)
    if term == "loo":
        if n == 1:
            return 0.0
        others = (mean * n - r) / (n - 1)
        return scale * (r - others)
    raise ValueError(term)


def loop_advantages(rewards: Sequence[float], index: Sequence[int], cfg: AdvantageConfig) -> list[float]:
    """Advantages computed group by group with Python floats."""
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(index):
        members[int(g)].append(i)
    out = [0.0] * len(rewards)
    for idx in members.values():
        values = [float(rewards[i]) for i in idx]
        n = len(values)
        mean = sum(values) / n
        var = sum((v - mean) ** 2 for v in values) / (n - cfg.ddof) if n > cfg.ddof else 0.0
        std = math.sqrt(var)
        for i, r in zip(idx, values, strict=True):
            if r >= cfg.tau:
                out[i] = _side(cfg.pos_term, cfg.lambda_pos, 1.0, r, mean, std, n, cfg.eps)
            else:
                out[i] = _side(cfg.neg_term, cfg.lambda_neg, -1.0, r, mean, std, n, cfg.eps)
    return out
