"""The distillation loss: hard-label cross-entropy, temperature-scaled KL to the teacher's votes, or a mix.

sentence-transformers' ``CrossEntropyLoss`` rejects probability vectors as labels, so soft targets need this
small loss. One label tensor per batch carries everything a row needs, packed as
``[target distribution (K), hard label index, weight]``: the trainer's collator passes a label column through
untouched, while extra text columns would be treated as model inputs.

    soft  = T^2 * KL(p_T || softmax(z / T)),  p_T = softmax(log p / T)   (Hinton et al.; T^2 keeps gradients
                                                                          comparable across temperatures)
    hard  = CE(z, y) with optional label smoothing
    loss  = weighted mean over rows of (1 - alpha) * soft + alpha * hard   (hard targets: alpha = 1)

A vote distribution has zeros (no sample said Complement); ``p ** (1 / T)`` renormalised is the same as
``softmax(log p / T)`` and stays finite there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional

Targets = Literal["hard", "soft"]


def pack_labels(target: Sequence[float], hard_index: int, weight: float) -> list[float]:
    """One row of the label column: the distribution, the hard label's index and the row's weight."""
    return [*map(float, target), float(hard_index), float(weight)]


def unpack_labels(labels: Tensor, num_labels: int) -> tuple[Tensor, Tensor, Tensor]:
    if labels.dim() != 2 or labels.shape[1] != num_labels + 2:
        raise ValueError(f"expected labels of shape (batch, {num_labels + 2}), got {tuple(labels.shape)}")
    return labels[:, :num_labels], labels[:, num_labels].long(), labels[:, num_labels + 1]


def sharpen(target: Tensor, temperature: float) -> Tensor:
    """``softmax(log p / T)`` without taking the log of zero."""
    if temperature == 1.0:
        return target / target.sum(dim=-1, keepdim=True)
    powered = target.clamp_min(0) ** (1.0 / temperature)
    return powered / powered.sum(dim=-1, keepdim=True)


def distillation_loss(
    logits: Tensor,
    target: Tensor,
    hard: Tensor,
    weight: Tensor | None = None,
    *,
    targets: Targets = "soft",
    temperature: float = 1.0,
    alpha: float = 0.0,
    label_smoothing: float = 0.0,
) -> Tensor:
    """Weighted mean per-row loss; see the module docstring for the formula."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    logits = logits.float()
    ce = functional.cross_entropy(logits, hard, reduction="none", label_smoothing=label_smoothing)
    if targets == "hard":
        per_row = ce
    else:
        p = sharpen(target.float(), temperature)
        log_q = functional.log_softmax(logits / temperature, dim=-1)
        # xlogy gives 0 * log 0 = 0 for labels no sample voted for.
        kl = (torch.special.xlogy(p, p) - p * log_q).sum(dim=-1) * temperature**2
        per_row = (1 - alpha) * kl + alpha * ce if alpha > 0 else kl
    if weight is None:
        return per_row.mean()
    weight = weight.float()
    return (per_row * weight).sum() / weight.sum().clamp_min(1e-12)


class DistillationLoss(nn.Module):
    """A sentence-transformers CrossEncoder loss around :func:`distillation_loss`."""

    def __init__(
        self,
        model: Any,
        *,
        targets: Targets = "soft",
        temperature: float = 1.0,
        alpha: float = 0.0,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.model = model
        self.targets: Targets = targets
        self.temperature = temperature
        self.alpha = alpha
        self.label_smoothing = label_smoothing

    def forward(
        self, inputs: list[list[str]], labels: Tensor | list[Tensor], prompt: str | None = None, task: str | None = None
    ) -> Tensor:
        from sentence_transformers.util import batch_to_device

        if len(inputs) != 2:
            raise ValueError(f"DistillationLoss expects two text columns (query, ad), got {len(inputs)}")
        if isinstance(labels, list | tuple):
            labels = torch.stack(list(labels))
        tokens = self.model.preprocess(list(zip(inputs[0], inputs[1], strict=True)), prompt=prompt, task=task)
        tokens = batch_to_device(tokens, self.model.device)
        logits = self.model(tokens)["scores"]
        labels = labels.to(logits.device)
        target, hard, weight = unpack_labels(labels, logits.shape[-1])
        return distillation_loss(
            logits,
            target,
            hard,
            weight,
            targets=self.targets,
            temperature=self.temperature,
            alpha=self.alpha,
            label_smoothing=self.label_smoothing,
        )

    @property
    def citation(self) -> str:
        return "Hinton, Vinyals and Dean, Distilling the Knowledge in a Neural Network, 2015"
