"""What a Countdown policy answers, beyond right or wrong: the failure mix behind a change of pass@1.

RL moves probability between a correct answer, a ``yes`` claimed for a wrong chain, and no answer at all (a
search that runs out of tokens). Which way it moves tells what an update taught: an update that lowers pass@1
while it raises false claims has taught the policy to stop searching, not to search better.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlvr.sampling import SamplingParams, sample
from rlvr.tasks.countdown import OUTCOMES, Problem, outcome

HEADERS = {
    "correct": "correct",
    "false yes: reaches target": "false yes\n(= target)",
    "false yes: misses target": "false yes\n(≠ target)",
    "unparsable yes": "bad yes\nline",
    "no answer": "no\nanswer",
}


def outcome_shares(model_dir: str | Path, problems: Sequence[Problem], params: SamplingParams) -> dict[str, Any]:
    """Share of each outcome over ``params.n`` samples per problem, and the mean number of attempts (lines)."""
    completions = sample(model_dir, [p.prompt for p in problems], params)
    counts: Counter[str] = Counter()
    lines = 0
    for problem, outs in zip(problems, completions, strict=True):
        for text in outs:
            counts[outcome(problem, text)] += 1
            lines += len(text.strip().splitlines())
    total = sum(counts.values())
    return {
        "shares": {kind: counts[kind] / total for kind in OUTCOMES},
        "attempts_mean": lines / total,
        "completions": total,
    }


def outcomes_table(result: Mapping[str, Any]) -> Any:
    """A rich table, one row per model: the share of each outcome and the mean attempts per completion."""
    from rich.table import Table

    table = Table(
        title=f"Countdown {result['split']}: outcomes of {result['problems']} problems x {result['n']} samples"
    )
    table.add_column("model")
    for kind in OUTCOMES:
        table.add_column(HEADERS[kind], justify="right")
    table.add_column("attempts\n(mean)", justify="right")
    for label, entry in result["models"].items():
        table.add_row(label, *(f"{entry['shares'][k]:.3f}" for k in OUTCOMES), f"{entry['attempts_mean']:.2f}")
    return table


def save(result: Mapping[str, Any], out: str | Path) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=1))
