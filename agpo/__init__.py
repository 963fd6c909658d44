"""AGPO: Asymmetric Group Policy Optimization for RL with verifiable rewards.

The algorithm's parts are plain functions on tensors, importable without any trainer:

- ``compute_advantages``: AGPO and its baselines (GRPO, Dr. GRPO, NSR, PSR, W-REINFORCE, RLOO) by name.
- ``policy_loss``: the clipped importance-ratio surrogate with asymmetric clipping and optional KL.
- ``pass_at_k`` and friends: the unbiased pass@k estimator, curves and bootstrap intervals.
- ``agpo.rewards``: the reward-function protocol and verifiable rewards.
"""

from agpo.advantages import (
    ESTIMATORS,
    AdvantageConfig,
    compute_advantages,
    get_estimator,
    group_stats,
    register_estimator,
)
from agpo.loss import PolicyLossConfig, policy_loss
from agpo.passk import pass_at_k, pass_at_k_batch, pass_at_k_bootstrap, pass_at_k_curve

__all__ = [
    "ESTIMATORS",
    "AdvantageConfig",
    "PolicyLossConfig",
    "compute_advantages",
    "get_estimator",
    "group_stats",
    "pass_at_k",
    "pass_at_k_batch",
    "pass_at_k_bootstrap",
    "pass_at_k_curve",
    "policy_loss",
    "register_estimator",
]
