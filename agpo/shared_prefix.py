"""The tokens a wrong completion shares with a correct one of its group, and an advantage that spares them.

A sequence-level advantage reaches every token of a completion. When a wrong completion begins exactly as a correct
one of the same prompt does, its opening tokens are not where it went wrong, yet a negative advantage pushes them
down all the same, and with them the correct completion's opening. GRPO's advantages sum to zero over a group, so
these pushes roughly cancel; AGPO's negative side dominates, so they do not.

``protect_shared_prefix`` (an ``AGPOConfig`` option) gives a wrong completion's shared prefix advantage 0: only
the tokens from the point where it parted from every correct completion are pushed down.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Number of leading tokens ``a`` and ``b`` have in common."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def shared_prefix_lengths(completions: Sequence[Sequence[int]], correct: Sequence[bool]) -> list[int]:
    """For each completion of one prompt, how many of its leading tokens a completion of the other outcome shares.

    Zero for every completion when the group has only one outcome (nothing to share with).
    """
    if len(completions) != len(correct):
        raise ValueError(f"{len(completions)} completions but {len(correct)} outcomes")
    lengths = []
    for ids, ok in zip(completions, correct, strict=True):
        others = [o for o, o_ok in zip(completions, correct, strict=True) if o_ok != ok]
        lengths.append(max((common_prefix(ids, o) for o in others), default=0))
    return lengths


def protected_lengths(
    completions: Sequence[Sequence[int]], correct: Sequence[bool], advantages: Sequence[float], group_size: int
) -> list[int]:
    """Per completion, how many leading tokens get advantage 0: for a wrong completion with a negative advantage,
    the prefix it shares with a correct completion of its group (consecutive blocks of ``group_size``); else 0."""
    if not len(completions) == len(correct) == len(advantages):
        raise ValueError(f"{len(completions)} completions, {len(correct)} outcomes, {len(advantages)} advantages")
    if len(completions) % group_size:
        raise ValueError(f"{len(completions)} completions do not split into groups of {group_size}")
    out: list[int] = []
    for start in range(0, len(completions), group_size):
        stop = start + group_size
        shared = shared_prefix_lengths(completions[start:stop], correct[start:stop])
        for length, ok, adv in zip(shared, correct[start:stop], advantages[start:stop], strict=True):
            out.append(length if not ok and adv < 0 else 0)
    return out


def token_advantages(advantages: torch.Tensor, protected: Sequence[int], width: int) -> torch.Tensor:
    """(N, width) per-token advantages: each row its completion's advantage, 0 on its first ``protected`` tokens."""
    tokens = advantages.unsqueeze(1).expand(-1, width).clone()
    positions = torch.arange(width, device=advantages.device).unsqueeze(0)
    spared = positions < torch.tensor(list(protected), device=advantages.device).unsqueeze(1)
    return tokens.masked_fill(spared, 0.0)
