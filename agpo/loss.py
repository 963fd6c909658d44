"""The clipped importance-ratio policy loss that turns per-sequence advantages into a gradient.

Per response token t of sequence i, with ratio rho = exp(logp - old_logp):

    loss_t = -min(rho * A_i, clip(rho, 1 - eps_low, 1 + eps_high) * A_i) + beta * KL_t

where KL_t is the k3 estimator exp(ref - logp) - (ref - logp) - 1 of KL(pi || pi_ref). Tokens are then
aggregated by one of three modes (see ``Aggregation``). A token whose ratio has left the trust region in the
direction its advantage pushes gets no gradient: that is what the clip is for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch

Aggregation = Literal["token-mean", "seq-mean-token-sum", "seq-mean-token-mean"]


@dataclass(frozen=True)
class PolicyLossConfig:
    """Settings of the surrogate.

    Attributes:
        eps_low: lower clip, the ratio may fall to 1 - eps_low before a negative advantage stops pushing.
        eps_high: upper clip, the ratio may rise to 1 + eps_high before a positive advantage stops pulling
            (DAPO's "clip-higher" sets this above eps_low).
        aggregation: "token-mean" (every token of the batch weighs the same), "seq-mean-token-sum"
            (each sequence's token sum, averaged over sequences), or "seq-mean-token-mean" (each sequence's
            token mean, averaged over sequences: the original GRPO).
        beta: weight of the k3 KL penalty to the reference policy; 0 needs no reference log-probs.
    """

    eps_low: float = 0.2
    eps_high: float = 0.2
    aggregation: Aggregation = "token-mean"
    beta: float = 0.0

    def __post_init__(self) -> None:
        if self.aggregation not in get_args(Aggregation):
            raise ValueError(f"aggregation={self.aggregation!r} is not one of {', '.join(get_args(Aggregation))}")
        for name in ("eps_low", "eps_high", "beta"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.eps_low >= 1:
            raise ValueError(f"eps_low must be below 1 (the ratio is positive), got {self.eps_low}")


def aggregate(values: torch.Tensor, mask: torch.Tensor, mode: Aggregation) -> torch.Tensor:
    """Reduce per-token values (B, T) under a response mask to a scalar by ``mode``."""
    per_seq_tokens = mask.sum(dim=1)
    if mode == "token-mean":
        return (values * mask).sum() / mask.sum().clamp_min(1)
    nonempty = (per_seq_tokens > 0).to(values.dtype)
    seq_sum = (values * mask).sum(dim=1)
    if mode == "seq-mean-token-sum":
        per_seq = seq_sum
    elif mode == "seq-mean-token-mean":
        per_seq = seq_sum / per_seq_tokens.clamp_min(1)
    else:
        raise ValueError(f"aggregation={mode!r} is not one of {', '.join(get_args(Aggregation))}")
    # Sequences with no response token carry no loss and do not dilute the mean.
    return (per_seq * nonempty).sum() / nonempty.sum().clamp_min(1)


def _check_shapes(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    ref_logprobs: torch.Tensor | None,
) -> torch.Tensor:
    if logprobs.dim() != 2:
        raise ValueError(f"logprobs must be (batch, tokens), got shape {tuple(logprobs.shape)}")
    for name, t in (("old_logprobs", old_logprobs), ("mask", mask), ("ref_logprobs", ref_logprobs)):
        if t is not None and t.shape != logprobs.shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)} but logprobs has {tuple(logprobs.shape)}")
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)  # one advantage per sequence, broadcast over its tokens
    if advantages.shape[0] != logprobs.shape[0] or advantages.shape[1] not in (1, logprobs.shape[1]):
        raise ValueError(
            f"advantages have shape {tuple(advantages.shape)}; expected ({logprobs.shape[0]},) "
            f"or {tuple(logprobs.shape)}"
        )
    if not bool(torch.isfinite(advantages).all()):
        raise ValueError("advantages contain NaN or infinite values")
    return advantages


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    config: PolicyLossConfig | None = None,
    ref_logprobs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate loss and its diagnostics.

    Args:
        logprobs: (B, T) log-probs of the sampled tokens under the policy being trained (with grad).
        old_logprobs: (B, T) log-probs under the policy that sampled them (no grad).
        advantages: (B,) per-sequence, or (B, T) per-token advantages.
        mask: (B, T) 1 for response tokens, 0 for padding.
        config: clipping, aggregation and KL settings.
        ref_logprobs: (B, T) log-probs under the reference policy; needed when ``config.beta > 0``.

    Returns:
        ``(loss, metrics)``: the scalar loss, and floats: ``clip_frac`` (share of tokens whose gradient
        the clip removed), ``clip_frac_low``, ``clip_frac_high``, ``ratio_mean``, ``ratio_max``,
        ``adv_pos_mass`` and ``adv_neg_mass`` (token-weighted mean of the positive part and of the
        magnitude of the negative part of the advantages), ``adv_neg_share`` and ``kl`` (when beta > 0).
    """
    cfg = config or PolicyLossConfig()
    adv = _check_shapes(logprobs, old_logprobs, advantages, mask, ref_logprobs)
    if cfg.beta > 0 and ref_logprobs is None:
        raise ValueError("beta > 0 needs ref_logprobs (log-probs of the sampled tokens under the reference)")
    m = mask.to(logprobs.dtype)
    # Padding positions may hold anything; zero them before exp so they cannot overflow into NaN.
    log_ratio = (logprobs - old_logprobs.detach()).masked_fill(m == 0, 0.0)
    ratio = log_ratio.exp()
    clipped = ratio.clamp(1.0 - cfg.eps_low, 1.0 + cfg.eps_high)
    per_token = -torch.minimum(ratio * adv, clipped * adv)
    kl = None
    if cfg.beta > 0:
        delta = (ref_logprobs.detach() - logprobs).masked_fill(m == 0, 0.0)
        kl = delta.exp() - delta - 1.0
        per_token = per_token + cfg.beta * kl
    loss = aggregate(per_token, m, cfg.aggregation)

    with torch.no_grad():
        tokens = m.sum().clamp_min(1)
        adv_full = adv.expand_as(m)
        high = (ratio > 1.0 + cfg.eps_high) & (adv_full > 0) & (m > 0)
        low = (ratio < 1.0 - cfg.eps_low) & (adv_full < 0) & (m > 0)
        pos_mass = (adv_full.clamp_min(0) * m).sum() / tokens
        neg_mass = ((-adv_full).clamp_min(0) * m).sum() / tokens
        metrics = {
            "clip_frac": float(((high | low).to(m.dtype) * m).sum() / tokens),
            "clip_frac_low": float((low.to(m.dtype)).sum() / tokens),
            "clip_frac_high": float((high.to(m.dtype)).sum() / tokens),
            "ratio_mean": float((ratio * m).sum() / tokens),
            "ratio_max": float(ratio.masked_fill(m == 0, float("-inf")).max()) if m.any() else 1.0,
            "adv_pos_mass": float(pos_mass),
            "adv_neg_mass": float(neg_mass),
            "adv_neg_share": float(neg_mass / (pos_mass + neg_mass)) if (pos_mass + neg_mass) > 0 else 0.0,
        }
        if kl is not None:
            metrics["kl"] = float((kl * m).sum() / tokens)
    return loss, metrics
