"""MATH/GSM8K-style data: final answers, line-numbered errors, verl's parquet layout and reward hook."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from rlvr.tasks.math import final_answer, read_math_jsonl, to_verl_parquet, verl_compute_score
from rlvr.train import TrainConfig, _task


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("so \\boxed{\\frac{1}{2}} is it", "\\frac{1}{2}"),
        ("first \\boxed{1}, finally \\boxed{x^{2}}", "x^{2}"),
        ("She pays 3 * 4 = 12.\n#### 1,200", "1200"),
        ("42", "42"),
    ],
)
def test_final_answer(text: str, answer: str) -> None:
    assert final_answer(text) == answer


def write(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_read_and_convert_for_verl(tmp_path: Path) -> None:
    src = write(
        tmp_path / "train.jsonl",
        [
            {"problem": "What is 1/2 + 1/4?", "solution": "We add: \\boxed{\\frac34}"},
            {"question": "2+2?", "answer": "#### 4"},
        ],
    )
    rows = read_math_jsonl(src)
    assert [r.answer for r in rows] == ["\\frac34", "4"]
    to_verl_parquet(rows, tmp_path / "out" / "train.parquet", "train")
    df = pd.read_parquet(tmp_path / "out" / "train.parquet")
    assert list(df.columns) == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    assert df.iloc[0]["reward_model"]["ground_truth"] == "\\frac34"
    assert df.iloc[1]["prompt"][0]["role"] == "user" and "\\boxed{}" in df.iloc[1]["prompt"][0]["content"]
    assert verl_compute_score("math", "so it is \\boxed{0.75}", "\\frac34") == 1.0
    assert verl_compute_score("math", "so it is \\boxed{0.7}", "\\frac34") == 0.0


@pytest.mark.parametrize(
    ("lines", "message"),
    [(["{not json"], ":1: not valid JSON"), ([{"problem": "x"}, {"answer": "1"}], ":1: needs 'problem'")],
)
def test_bad_lines_are_named(tmp_path: Path, lines: list[object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_math_jsonl(write(tmp_path / "bad.jsonl", lines))


def test_math_task_builds_chat_prompts(tmp_path: Path) -> None:
    src = write(tmp_path / "m.jsonl", [{"problem": "1+1?", "answer": "2"}])
    prompts, refs, reward = _task(TrainConfig(task="math", data_path=str(src)))
    assert prompts[0][0]["role"] == "user" and refs == ["2"] and reward.name == "math_answer"
    with pytest.raises(ValueError, match="needs data_path"):
        _task(TrainConfig(task="math"))
