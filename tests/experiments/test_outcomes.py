"""Countdown outcomes: every completion in one kind, the correct ones exactly the rewarded ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agpo.rewards import score
from cli.main import app
from rlvr.sampling import SamplingParams, sample
from rlvr.tasks.countdown import OUTCOMES, CountdownReward, Problem, make_splits, outcome

MODELS = Path(__file__).resolve().parents[2] / "models"
P = Problem((3, 5, 7), 22)


@pytest.mark.parametrize(
    ("completion", "kind"),
    [
        ("7*3=21 21+5=26 vs 22 no\n5*3=15 15+7=22 vs 22 yes\n", "correct"),
        ("5*3=16 16+6=22 vs 22 yes", "false yes: reaches target"),  # arithmetic and numbers broken
        ("5*5=25 25-3=22 vs 22 yes", "false yes: reaches target"),  # 5 used twice
        ("7*3=21 21+5=26 vs 22 yes", "false yes: misses target"),
        ("7*3=21 21+5=26 vs 22 no\nbanana yes", "unparsable yes"),
        ("7*3=21 21+5=26 vs 22 no\n5*3=15 15+7", "no answer"),  # cut off mid-attempt
        ("", "no answer"),
    ],
)
def test_outcome_kinds(completion: str, kind: str) -> None:
    assert outcome(P, completion) == kind


def test_outcomes_command_counts_every_sample_once_and_correct_ones_as_the_reward_does(tmp_path: Path) -> None:
    base = MODELS / "countdown-base"
    out = tmp_path / "outcomes.json"
    args = ["outcomes", "--model", f"base={base}", "--problems", "6", "--n", "8", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    entry = data["models"]["base"]
    assert entry["completions"] == 48 and set(entry["shares"]) == set(OUTCOMES)
    assert sum(entry["shares"].values()) == pytest.approx(1.0)
    problems = make_splits().test_hard[:6]
    texts = sample(base, [p.prompt for p in problems], SamplingParams(n=8, max_new_tokens=128, seed=0))
    rewarded = sum(
        sum(score(CountdownReward(), outs, [p.reference] * 8)) for p, outs in zip(problems, texts, strict=True)
    )
    assert entry["shares"]["correct"] == pytest.approx(rewarded / 48)

    bad = CliRunner().invoke(app, ["outcomes", "--model", str(base)])
    assert bad.exit_code == 2 and "write LABEL=DIR" in bad.output
    split = CliRunner().invoke(app, ["outcomes", "--model", f"base={base}", "--split", "nope"])
    assert split.exit_code == 2 and "unknown split 'nope'" in split.output
