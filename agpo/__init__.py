"""AGPO: Asymmetric Group Policy Optimization for RL with verifiable rewards.

The algorithm's parts are plain functions on tensors, importable without any trainer:

- ``compute_advantages``: AGPO and its baselines (GRPO, Dr. GRPO, NSR, PSR, W-REINFORCE, RLOO) by name.
- ``policy_loss``: the clipped importance-ratio surrogate with asymmetric clipping and optional KL.
- ``pass_at_k`` and friends: the unbiased pass@k estimator, curves and bootstrap intervals.
- ``agpo.rewards``: the reward-function protocol and verifiable rewards.

Names are imported on first use, so ``import agpo.rewards`` (or the package itself) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ESTIMATORS": "agpo.advantages",
    "AdvantageConfig": "agpo.advantages",
    "compute_advantages": "agpo.advantages",
    "get_estimator": "agpo.advantages",
    "group_stats": "agpo.advantages",
    "register_estimator": "agpo.advantages",
    "PolicyLossConfig": "agpo.loss",
    "policy_loss": "agpo.loss",
    "pass_at_k": "agpo.passk",
    "pass_at_k_batch": "agpo.passk",
    "pass_at_k_bootstrap": "agpo.passk",
    "pass_at_k_curve": "agpo.passk",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'agpo' has no attribute {name!r}")
