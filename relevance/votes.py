"""Self-consistency: turn n sampled labels for one pair into a label, a confidence and a distribution.

- ``label``: the majority label among the parseable samples; ties go to the label earlier in schema order, so
  the same votes always give the same answer.
- ``confidence``: the majority label's share of ALL n samples, so unparseable samples lower it and route the
  pair to review sooner.
- ``distribution``: each schema label's share of the parseable samples (sums to 1, every label present, schema
  order), the soft target for distillation.

With no parseable sample the label is None, the confidence 0 and the distribution empty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from relevance.schemas import DEFAULT_SCHEMA, LabelSchema, get_schema


@dataclass(frozen=True)
class Vote:
    label: str | None
    confidence: float
    distribution: dict[str, float]
    counts: dict[str, int]
    n: int
    n_valid: int


def vote(labels: Sequence[str | None], schema: str | LabelSchema = DEFAULT_SCHEMA) -> Vote:
    """Aggregate sampled labels (names, codes or aliases; None for unparseable) into a :class:`Vote`."""
    sch = get_schema(schema)
    counts = dict.fromkeys(sch.names, 0)
    for raw in labels:
        if raw is None:
            continue
        name = sch.normalize(raw)
        if name is None:
            raise ValueError(f"{raw!r} is not a label of schema {sch.name!r}; pass None for unparseable samples")
        counts[name] += 1
    n, n_valid = len(labels), sum(counts.values())
    if n_valid == 0:
        return Vote(None, 0.0, {}, counts, n, 0)
    best = max(sch.names, key=lambda name: (counts[name], -sch.index(name)))
    distribution = {name: counts[name] / n_valid for name in sch.names}
    return Vote(best, counts[best] / n, distribution, counts, n, n_valid)


def uncertainty(label: str | None, distribution: Mapping[str, float], second_opinion: str | None = None) -> float:
    """How much a label needs a human, for ordering review: the normalised entropy of its distribution (0 when all
    mass is on one label, 1 when it is spread evenly), plus 1 when a second opinion (a student's label) differs, so
    that disagreements come first. A failed pair (no label) scores 2, above every labelled one."""
    if label is None:
        return 2.0
    mass = [p for p in distribution.values() if p > 0]
    total = sum(mass)
    entropy = -sum(p / total * math.log(p / total) for p in mass) if total > 0 else 0.0
    spread = entropy / math.log(len(distribution)) if len(distribution) > 1 else 0.0
    return round(spread + (second_opinion is not None and second_opinion != label), 6)
