"""AGPO on verl: registers ``agpo`` (and ``nsr``, ``psr``, ``w_reinforce``) as verl advantage estimators.

verl loads this module on ``import verl`` through the ``verl.plugins`` entry point declared in pyproject.toml,
so ``algorithm.adv_estimator=agpo`` works in any verl launch with this package installed. verl only logs plugin
load errors at debug level, so launchers should call ``ensure_registered()`` at start-up to fail loudly instead.

Hyper-parameters come from the ``algorithm`` config, under a key named after the estimator, e.g.::

    algorithm.adv_estimator=agpo
    +algorithm.agpo.lambda_pos=0.1 +algorithm.agpo.lambda_neg=1.0 +algorithm.agpo.tau=1.0

Any field of ``agpo.advantages.AdvantageConfig`` may be set there; unset ones keep the estimator's defaults.
Estimators verl already ships (``grpo``, ``rloo``, Dr. GRPO via ``norm_adv_by_std_in_grpo=False``) are left to verl.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from agpo.advantages import AdvantageConfig, compute_advantages, get_estimator

PLUGIN_ESTIMATORS = ("agpo", "nsr", "psr", "w_reinforce")


def estimator_config(name: str, algorithm_config: Mapping[str, Any] | None) -> AdvantageConfig:
    """The estimator's settings, overridden by ``algorithm.<name>`` when the config has that section."""
    section = algorithm_config.get(name) if algorithm_config is not None else None
    overrides = dict(section.items()) if section else {}
    return get_estimator(name, **overrides)


def group_ids(index: np.ndarray | list[Any]) -> torch.Tensor:
    """verl's per-sample ``uid`` strings as integer group ids."""
    _, inverse = np.unique(np.asarray(index, dtype=object).astype(str), return_inverse=True)
    return torch.from_numpy(inverse.reshape(-1).astype(np.int64))


def _make_estimator(name: str) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    def estimator(
        token_level_rewards: torch.Tensor,
        response_mask: torch.Tensor,
        index: np.ndarray,
        config: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Outcome reward: the sequence's reward is the sum of its token-level rewards (one non-zero token).
        scores = token_level_rewards.sum(dim=-1)
        cfg = estimator_config(name, config)
        with torch.no_grad():
            ids = group_ids(index).to(scores.device)
            advantages = compute_advantages(scores, index=ids, estimator=cfg)
            advantages = advantages.unsqueeze(-1) * response_mask
        return advantages, advantages

    estimator.__name__ = f"compute_{name}_outcome_advantage"
    estimator.__doc__ = f"verl advantage estimator '{name}' from agpo.advantages (see agpo.verl_plugin)."
    return estimator


def register() -> list[str]:
    """Register the plugin's estimators in verl's registry; returns the names it added."""
    from verl.trainer.ppo import core_algos

    added = []
    for name in PLUGIN_ESTIMATORS:
        if name not in core_algos.ADV_ESTIMATOR_REGISTRY:
            core_algos.register_adv_est(name)(_make_estimator(name))
            added.append(name)
    return added


def ensure_registered() -> None:
    """Raise if verl's registry lacks the plugin's estimators (the entry point failed or is disabled)."""
    from verl.trainer.ppo import core_algos

    missing = [n for n in PLUGIN_ESTIMATORS if n not in core_algos.ADV_ESTIMATOR_REGISTRY]
    if missing:
        raise RuntimeError(
            f"verl has no advantage estimator(s) {missing}: install this package (pip install -e .) so verl "
            "loads its 'verl.plugins' entry point, and leave VERL_USE_EXTERNAL_PLUGINS unset or 'auto'"
        )


register()
