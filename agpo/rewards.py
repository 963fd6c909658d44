"""Verifiable rewards: a small protocol and the rewards built on it.

A reward function takes completions and their references and returns one float in [0, 1] per completion.
Everything that trains or evaluates (the TRL trainer, the pass@k evaluator, the relevance teacher) speaks
only this protocol, so a new task needs one new reward and nothing else.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from math_verify import parse, verify


@runtime_checkable
class RewardFunction(Protocol):
    """``reward(completions, references) -> [float in [0, 1], ...]``, one value per completion."""

    name: str

    def __call__(self, completions: Sequence[str], references: Sequence[str]) -> list[float]: ...


def score(reward: RewardFunction, completions: Sequence[str], references: Sequence[str]) -> list[float]:
    """Call ``reward`` and check what it returned, so a faulty reward fails loudly instead of training."""
    if len(completions) != len(references):
        raise ValueError(f"{len(completions)} completions but {len(references)} references")
    values = [float(v) for v in reward(completions, references)]
    if len(values) != len(completions):
        raise ValueError(f"reward {reward.name!r} returned {len(values)} values for {len(completions)} completions")
    for i, v in enumerate(values):
        if not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise ValueError(f"reward {reward.name!r} gave {v!r} for completion {i}; rewards must lie in [0, 1]")
    return values


def _timeouts() -> int | None:
    # math-verify enforces its time limits with SIGALRM, which only the main thread may use.
    return 5 if threading.current_thread() is threading.main_thread() else None


class MathAnswerReward:
    """1 when the completion's final answer is mathematically equal to the reference, else 0.

    Built on ``math-verify``: it finds ``\\boxed{...}`` answers, LaTeX (``\\frac{1}{2}``) and plain
    expressions, and compares them symbolically, so ``0.75``, ``3/4`` and ``\\frac{3}{4}`` all match.
    """

    name = "math_answer"

    def __call__(self, completions: Sequence[str], references: Sequence[str]) -> list[float]:
        timeout = _timeouts()
        out = []
        for completion, reference in zip(completions, references, strict=True):
            gold = parse(
                reference if "$" in reference or "\\boxed" in reference else f"${reference}$",
                parsing_timeout=timeout,
            )
            answer = parse(completion, parsing_timeout=timeout)
            out.append(1.0 if gold and answer and verify(gold, answer, timeout_seconds=timeout) else 0.0)
        return out


class FormatReward:
    """1 when the completion matches a regular expression (searched, DOTALL), else 0.

    The references are ignored: format is a property of the completion alone.
    """

    def __init__(self, pattern: str, name: str = "format") -> None:
        self.pattern = re.compile(pattern, re.DOTALL)
        self.name = name

    def __call__(self, completions: Sequence[str], references: Sequence[str]) -> list[float]:
        return [1.0 if self.pattern.search(c) else 0.0 for c in completions]


# Reasoning in a think block, then a boxed final answer.
THINK_THEN_BOXED = r"^\s*<think>.+?</think>.*\\boxed\{.+\}"
# A boxed final answer anywhere.
BOXED = r"\\boxed\{.+\}"


def boxed_format_reward() -> FormatReward:
    return FormatReward(BOXED, name="boxed_format")


def think_format_reward() -> FormatReward:
    return FormatReward(THINK_THEN_BOXED, name="think_format")


def as_trl_reward(reward: RewardFunction, reference_column: str = "reference") -> Callable[..., list[float]]:
    """Wrap a protocol reward as a TRL reward function, reading references from a dataset column.

    TRL calls reward functions with ``prompts``, ``completions`` and every dataset column as keyword lists.
    """

    def trl_reward(prompts: list[Any], completions: list[Any], **columns: Any) -> list[float]:
        if reference_column not in columns:
            raise ValueError(f"the training dataset needs a {reference_column!r} column for reward {reward.name!r}")
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]  # plain or conversational
        return score(reward, texts, columns[reference_column])

    trl_reward.__name__ = reward.name
    return trl_reward
