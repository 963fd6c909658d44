"""MATH/GSM8K-style JSONL (``problem``/``question`` and ``answer``/``solution``) to the layouts trainers read.

Rows come from local files (no dataset hub here). ``answer`` may be a bare value or a worked solution
ending in ``\\boxed{...}`` or GSM8K's ``#### value``; the reference kept is the final answer alone.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

PROMPT_SUFFIX = " Let's think step by step and output the final answer within \\boxed{}."


@dataclass(frozen=True)
class MathRow:
    problem: str
    answer: str


def final_answer(text: str) -> str:
    """The last ``\\boxed{...}`` (braces balanced), else GSM8K's ``#### x``, else the text itself."""
    start = text.rfind("\\boxed{")
    if start >= 0:
        depth, i = 0, start + len("\\boxed{") - 1
        for j in range(i, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                return text[i + 1 : j].strip()
    m = re.search(r"####\s*(.+?)\s*$", text.strip())
    if m:
        return m[1].strip().replace(",", "")  # GSM8K writes 1,000
    return text.strip()


def read_math_jsonl(path: Path) -> list[MathRow]:
    """Rows of a JSONL file; a bad line raises an error naming its line number and what is missing."""
    rows = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        problem = data.get("problem") or data.get("question")
        answer = data.get("answer") if data.get("answer") not in (None, "") else data.get("solution")
        if not problem or answer in (None, ""):
            raise ValueError(f"{path}:{lineno}: needs 'problem' (or 'question') and 'answer' (or 'solution')")
        rows.append(MathRow(str(problem), final_answer(str(answer))))
    return rows


def to_verl_parquet(rows: list[MathRow], path: Path, split: str, data_source: str = "math") -> None:
    """verl's RL dataset layout: chat prompt, rule reward with the ground truth, and extra info."""
    import pandas as pd

    records = [
        {
            "data_source": data_source,
            "prompt": [{"role": "user", "content": r.problem + PROMPT_SUFFIX}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": r.answer},
            "extra_info": {"split": split, "index": i},
        }
        for i, r in enumerate(rows)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame.from_records(records).to_parquet(path)


def verl_compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info: dict | None = None) -> float:
    """verl ``custom_reward_function``: 1.0 when math-verify finds the answer equal to the ground truth."""
    from agpo.rewards import MathAnswerReward

    return MathAnswerReward()([solution_str], [ground_truth])[0]
