"""The advantage demo: what each estimator gives a correct and a wrong response as a group's success rate moves."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from agpo.advantages import ESTIMATORS, compute_advantages


@dataclass(frozen=True)
class DemoCell:
    correct: int
    pos: float | None  # advantage of a correct response (None when the group has none)
    neg: float | None  # advantage of a wrong response (None when the group has none)


@dataclass(frozen=True)
class DemoRow:
    estimator: str
    cells: list[DemoCell]
    neg_share: float  # share of |advantage| mass on wrong responses, over all mixed groups together


def advantage_table(group_size: int = 8, estimators: list[str] | None = None) -> list[DemoRow]:
    """Advantages for every success count 0..G of one group, per estimator."""
    G = group_size
    counts = range(G + 1)
    # One batch holding every possible group, so the table comes from one vectorised call per estimator.
    rewards = torch.tensor([1.0 if i < k else 0.0 for k in counts for i in range(G)], dtype=torch.float64)
    rows = []
    for name in estimators or list(ESTIMATORS):
        adv = compute_advantages(rewards, group_size=G, estimator=name).view(G + 1, G)
        cells = [DemoCell(k, float(adv[k, 0]) if k > 0 else None, float(adv[k, -1]) if k < G else None) for k in counts]
        mixed = adv[1:G]
        pos = float(mixed.clamp_min(0).sum())
        neg = float((-mixed).clamp_min(0).sum())
        rows.append(DemoRow(name, cells, neg / (pos + neg) if pos + neg > 0 else 0.0))
    return rows
