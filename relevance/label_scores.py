"""Scored labels: a teacher's reasoning, then the probability of every label at its ``Label:`` line.

Sampling n answers and voting (:mod:`relevance.votes`) estimates the teacher's label distribution from n
draws; scoring reads it off the model directly. The teacher writes its reasoning once (greedily), the answer
is cut at its label line, and the model's next-token probabilities of the schema's labels there become the
distribution. The label is the most probable one; the confidence is its probability among the labels.

``mass``, the probability the model gives to any label at all at that point, says how sure it was that a
label comes next; a low mass means the reasoning went somewhere the label line does not follow from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from relevance.parsing import LABEL_PREFIX, format_label_line
from relevance.schemas import DEFAULT_SCHEMA, LabelSchema, get_schema

# How a label is read from a teacher. sample: n answers, their labels voted (relevance.votes). score: one greedy
# answer up to its label line, then every label's probability there. overlap: the reasoning written by rule
# (relevance.overlap), then the labels' probabilities: one forward pass, no generation.
LabelMethod = Literal["sample", "score", "overlap"]
LABEL_METHODS: tuple[str, ...] = get_args(LabelMethod)


@dataclass(frozen=True)
class ScoredLabel:
    label: str
    confidence: float
    distribution: dict[str, float]
    mass: float


def reasoning_of(answer: str) -> str:
    """The reasoning of a generated answer: its text before the last ``Label:`` (all of it when there is none,
    as when ``max_tokens`` cut the answer short), without trailing blanks."""
    cut = answer.rfind(LABEL_PREFIX)
    return (answer[:cut] if cut >= 0 else answer).rstrip()


def scoring_prefix(reasoning: str) -> str:
    """The answer as the model has written it when its label comes next: the reasoning, then ``Label:``."""
    return f"{reasoning}\n{LABEL_PREFIX}" if reasoning else LABEL_PREFIX


def scored_label(logprobs: Sequence[float], schema: str | LabelSchema = DEFAULT_SCHEMA) -> ScoredLabel:
    """The label, its confidence, the distribution over the schema's labels (schema order) and the label mass,
    from the next-token log-probabilities of the labels (schema order). Ties go to the earlier label."""
    sch = get_schema(schema)
    if len(logprobs) != len(sch.names):
        raise ValueError(f"{len(logprobs)} log-probabilities for the {len(sch.names)} labels of {sch.name!r}")
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    distribution = {name: w / total for name, w in zip(sch.names, weights, strict=True)}
    best = max(sch.names, key=lambda name: (distribution[name], -sch.index(name)))
    return ScoredLabel(best, distribution[best], distribution, math.exp(top) * total)


def scored_answer(reasoning: str, label: str) -> str:
    """The full answer a scored label stands for: the reasoning and the label line."""
    return f"{reasoning}\n{format_label_line(label)}" if reasoning else format_label_line(label)
