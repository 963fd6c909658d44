"""AGPO on TRL: a ``GRPOTrainer`` whose advantages come from any estimator in ``agpo.advantages``.

TRL 1.16 computes GRPO's advantages inline in ``_generate_and_score_completions`` and offers no hook. So the
trainer overrides two methods and touches nothing else (generation, vLLM rollouts in colocate or server mode,
the loss, logging all stay TRL's own):

- ``_calculate_rewards`` is TRL's, plus keeping the rewards it has gathered from every process;
- ``_generate_and_score_completions`` is TRL's, after which the advantages are recomputed from those global
  rewards with the configured estimator and sliced for this process exactly as TRL slices its own.

The estimator sees every process's completions, so groups split across processes are normalised as a whole.
With ``protect_shared_prefix`` the advantages become per token (TRL's loss accepts (B, T)): a wrong completion's
opening that a correct completion of its group shares gets 0 (:mod:`agpo.shared_prefix`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from trl import GRPOConfig, GRPOTrainer

from agpo.advantages import AdvantageConfig, compute_advantages, get_estimator
from agpo.shared_prefix import protected_lengths, token_advantages


@dataclass
class AGPOConfig(GRPOConfig):
    """``GRPOConfig`` plus the advantage estimator. ``None`` keeps the named estimator's own setting."""

    advantage_estimator: str = field(
        default="agpo", metadata={"help": "estimator name: agpo, grpo, dr_grpo, nsr, psr, w_reinforce, rloo"}
    )
    lambda_pos: float | None = field(default=None, metadata={"help": "scale of the correct side"})
    lambda_neg: float | None = field(default=None, metadata={"help": "scale of the wrong side"})
    pos_term: str | None = field(default=None, metadata={"help": "normalized | centered | loo | constant"})
    neg_term: str | None = field(default=None, metadata={"help": "normalized | centered | loo | constant"})
    tau: float | None = field(default=None, metadata={"help": "reward threshold for a correct completion"})
    adv_ddof: int | None = field(default=None, metadata={"help": "ddof of the group std (TRL's GRPO uses 1)"})
    adv_eps: float | None = field(default=None, metadata={"help": "added to the group std (TRL's GRPO uses 1e-4)"})
    protect_shared_prefix: bool = field(
        default=False,
        metadata={"help": "a wrong completion's tokens that a correct one of its group begins with get advantage 0"},
    )

    def advantage_config(self) -> AdvantageConfig:
        overrides = {
            "lambda_pos": self.lambda_pos,
            "lambda_neg": self.lambda_neg,
            "pos_term": self.pos_term,
            "neg_term": self.neg_term,
            "tau": self.tau,
            "ddof": self.adv_ddof,
            "eps": self.adv_eps,
        }
        return get_estimator(self.advantage_estimator, **overrides)


def group_advantages(
    rewards_per_func: torch.Tensor, reward_weights: torch.Tensor, group_size: int, config: AdvantageConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages of a gathered generation batch, and the weighted rewards they came from.

    Rewards are aggregated as TRL's default ``sum_then_normalize`` does (weighted sum of reward functions).
    A completion for which every reward function returned ``None`` is unscorable, as in TRL: it is left out of
    its group's statistics and gets advantage 0.
    """
    rewards = (rewards_per_func * reward_weights.to(rewards_per_func.device).unsqueeze(0)).nansum(dim=1)
    scorable = ~torch.isnan(rewards_per_func).all(dim=1)
    group = torch.arange(rewards.numel(), device=rewards.device) // group_size
    advantages = torch.zeros_like(rewards)
    if bool(scorable.all()):
        advantages = compute_advantages(rewards, group_size=group_size, estimator=config)
    elif bool(scorable.any()):
        advantages[scorable] = compute_advantages(rewards[scorable], index=group[scorable], estimator=config)
    return advantages, rewards


class AGPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` with a pluggable advantage estimator (AGPO by default). Takes an ``AGPOConfig``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, AGPOConfig):
            raise TypeError(f"AGPOTrainer needs an AGPOConfig, got {type(self.args).__name__}")
        if self.multi_objective_aggregation != "sum_then_normalize":
            raise ValueError(
                "AGPOTrainer needs multi_objective_aggregation='sum_then_normalize': correctness is judged on "
                "the weighted sum of the rewards"
            )
        self.advantage_config = self.args.advantage_config()
        self._gathered_rewards: torch.Tensor | None = None

    def _calculate_rewards(
        self, inputs: list[dict[str, Any]], prompts: list[Any], completions: list[Any], completion_ids_list: list[Any]
    ) -> torch.Tensor:
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._gathered_rewards = rewards_per_func  # (all processes' completions, reward functions)
        return rewards_per_func

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        rewards_per_func, self._gathered_rewards = self._gathered_rewards, None
        if rewards_per_func is None:
            raise RuntimeError("TRL did not compute rewards through _calculate_rewards; this TRL is not supported")
        mode = "train" if self.model.training else "eval"
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        all_advantages, rewards = group_advantages(
            rewards_per_func, self.reward_weights, group_size, self.advantage_config
        )

        if self.args.mask_truncated_completions:
            # TRL keeps truncated completions out of the loss (an all-zero completion mask); zeroing their
            # advantages too makes the logged masses those of the update that really happens.
            kept = self.accelerator.gather(output["completion_mask"].any(dim=1))
            all_advantages = all_advantages * kept.to(all_advantages.dtype)

        local = output["advantages"].shape[0]
        start = self.accelerator.process_index * local  # the same slice TRL takes of its own advantages
        advantages = all_advantages[start : start + local]
        if self.args.protect_shared_prefix:
            advantages = self._spare_shared_prefixes(output, all_advantages, rewards, group_size, start, mode)
        output["advantages"] = advantages.to(output["advantages"].dtype)

        self._replace_logged_advantages(all_advantages)
        self._log_advantage_metrics(mode, all_advantages)
        return output

    def _spare_shared_prefixes(
        self,
        output: dict[str, Any],
        all_advantages: torch.Tensor,
        rewards: torch.Tensor,
        group_size: int,
        start: int,
        mode: str,
    ) -> torch.Tensor:
        """This process's (B, T) token advantages with the shared prefixes of wrong completions at 0."""
        from accelerate.utils import gather_object

        ids = output["completion_ids"]
        local_ids = [row[mask.bool()].tolist() for row, mask in zip(ids, output["completion_mask"], strict=True)]
        all_ids = gather_object(local_ids)  # a group may span processes
        correct = (rewards >= self.advantage_config.tau).tolist()
        protected = protected_lengths(all_ids, correct, all_advantages.tolist(), group_size)
        total = max(sum(len(c) for c in all_ids), 1)
        self._metrics[mode]["advantages/spared_token_share"].append(sum(protected) / total)
        local = ids.shape[0]
        return token_advantages(all_advantages[start : start + local], protected[start : start + local], ids.shape[1])

    def _replace_logged_advantages(self, advantages: torch.Tensor) -> None:
        # TRL logged its own GRPO advantages for the completions table; show the ones actually trained on.
        logged = self._logs["advantages"]
        for _ in range(min(advantages.numel(), len(logged))):
            logged.pop()
        logged.extend(advantages.tolist())

    def _log_advantage_metrics(self, mode: str, advantages: torch.Tensor) -> None:
        pos = float(advantages.clamp_min(0).sum())
        neg = float((-advantages).clamp_min(0).sum())
        n = max(advantages.numel(), 1)
        metrics = self._metrics[mode]
        metrics["advantages/mean"].append(float(advantages.mean()))
        metrics["advantages/pos_mass"].append(pos / n)
        metrics["advantages/neg_mass"].append(neg / n)
        metrics["advantages/neg_share"].append(neg / (pos + neg) if pos + neg > 0 else 0.0)
        metrics["advantages/frac_zero"].append(float((advantages == 0).float().mean()))
