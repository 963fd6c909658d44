"""Answer targets for pairs that carry a human label but no written reasoning (real search logs).

The teacher answers with brief reasoning and then ``Label: <label>``. Real labelled rows have only the label,
so their target reasoning is the pair's overlap reasoning (:mod:`relevance.overlap`): which of the query's
words the ad's title contains and which it lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relevance.overlap import overlap_reasoning
from relevance.parsing import format_label_line


def answer_target(record: Mapping[str, Any]) -> str:
    """The answer a teacher is trained to give for ``record``: its gold reasoning, or overlap reasoning."""
    meta = record["meta"]
    reasoning = meta.get("reasoning")
    if reasoning:
        return reasoning  # the synthetic generator's traces already end with the label line
    return overlap_reasoning(record["query"], record["ad"]["title"]) + "\n" + format_label_line(meta["label"])
