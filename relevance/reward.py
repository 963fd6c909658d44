"""The relevance reward: does the teacher's parsed label equal the gold label?

It follows the reward protocol of :mod:`agpo.rewards` (a callable with a ``name``, completions and references in,
one float in [0, 1] per completion out) structurally, so this module does not import the training stack.

- Exact (default): 1.0 when the label parsed from the completion equals the reference label, else 0.0; an
  unparseable completion gets 0.0.
- Graded (``graded=True``): partial credit ``1 - |d(pred) - d(ref)| / range``, where ``d`` is the schema's NDCG
  gain (``distance="gain"``) or its ordinal grade (``distance="grade"``). With ESCI gains (1, 0.1, 0.01, 0)
  the gain distance barely separates S, C and I; the grade distance spreads them evenly.

References are label names, codes or aliases of the schema; a reference that is not a label raises, since a bad
gold label is a data bug that must not train silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from relevance.parsing import parse_label
from relevance.schemas import DEFAULT_SCHEMA, LabelSchema, get_schema

Distance = Literal["gain", "grade"]


class RelevanceReward:
    """Label-match reward for relevance annotation; see the module docstring."""

    def __init__(
        self,
        schema: str | LabelSchema = DEFAULT_SCHEMA,
        *,
        graded: bool = False,
        distance: Distance = "gain",
        name: str | None = None,
    ) -> None:
        if distance not in ("gain", "grade"):
            raise ValueError(f"distance must be 'gain' or 'grade', got {distance!r}")
        self.schema = get_schema(schema)
        self.graded = graded
        self.distance: Distance = distance
        self.name = name or (f"relevance_graded_{distance}" if graded else "relevance_label")
        values = self.schema.gains if distance == "gain" else {k: float(v) for k, v in self.schema.grades.items()}
        self._value = values
        self._range = (max(values.values()) - min(values.values())) or 1.0

    def credit(self, predicted: str | None, reference: str) -> float:
        """Reward for one parsed label against one reference label."""
        ref = self.schema.label(reference).name
        if predicted is None:
            return 0.0
        if predicted == ref:
            return 1.0
        if not self.graded:
            return 0.0
        return max(0.0, 1.0 - abs(self._value[predicted] - self._value[ref]) / self._range)

    def __call__(self, completions: Sequence[str], references: Sequence[str]) -> list[float]:
        if len(completions) != len(references):
            raise ValueError(f"{len(completions)} completions but {len(references)} references")
        return [self.credit(parse_label(c, self.schema), r) for c, r in zip(completions, references, strict=True)]


def relevance_reward(schema: str | LabelSchema = DEFAULT_SCHEMA) -> RelevanceReward:
    """The exact-match relevance reward for ``schema``."""
    return RelevanceReward(schema)


def graded_relevance_reward(schema: str | LabelSchema = DEFAULT_SCHEMA, distance: Distance = "gain") -> RelevanceReward:
    """The partial-credit relevance reward for ``schema``."""
    return RelevanceReward(schema, graded=True, distance=distance)
