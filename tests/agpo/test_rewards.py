"""Verifiable rewards: math answers through math-verify, format checks, and the protocol's checks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from agpo.rewards import (
    FormatReward,
    MathAnswerReward,
    RewardFunction,
    boxed_format_reward,
    score,
    think_format_reward,
)

CASES = [
    (r"so the answer is \boxed{\frac{1}{2}}", "1/2", 1.0),
    (r"The answer is $\frac12$.", "0.5", 1.0),
    (r"\boxed{0.75}", r"\frac{3}{4}", 1.0),
    (r"we get \boxed{1+x^2}", "x^2+1", 1.0),
    (r"\boxed{41}", "42", 0.0),
    ("I have no idea", "42", 0.0),
    ("", "7", 0.0),
]


def test_math_answer_reward() -> None:
    reward = MathAnswerReward()
    completions, refs, want = zip(*CASES, strict=True)
    assert score(reward, list(completions), list(refs)) == list(want)


def test_math_answer_reward_works_off_the_main_thread() -> None:
    # Reward workers run in threads; math-verify's SIGALRM timeouts must not be used there.
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda case: MathAnswerReward()([case[0]], [case[1]])[0], CASES))
    assert got == [want for *_, want in CASES]


def test_format_rewards() -> None:
    assert boxed_format_reward()([r"x \boxed{3}", "3"], ["", ""]) == [1.0, 0.0]
    think = think_format_reward()
    assert think(["<think>add them</think> \\boxed{3}", "\\boxed{3} <think>late</think>"], ["", ""]) == [
        1.0,
        0.0,
    ]
    assert FormatReward(r"Label: \w+$", name="label")(["x\nLabel: Exact", "Exact"], ["", ""]) == [1.0, 0.0]


def test_protocol_is_checkable() -> None:
    assert isinstance(MathAnswerReward(), RewardFunction)
    assert isinstance(boxed_format_reward(), RewardFunction)


class Broken:
    name = "broken"

    def __init__(self, values: list[float]) -> None:
        self.values = values

    def __call__(self, completions: list[str], references: list[str]) -> list[float]:
        return self.values


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([0.5], "returned 1 values for 2"),
        ([0.5, 1.5], r"gave 1.5 for completion 1"),
        ([float("nan"), 0], "gave nan"),
    ],
)
def test_score_rejects_a_faulty_reward(values: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        score(Broken(values), ["a", "b"], ["a", "b"])


def test_score_rejects_mismatched_references() -> None:
    with pytest.raises(ValueError, match="2 completions but 1 references"):
        score(MathAnswerReward(), ["a", "b"], ["a"])


def test_reward_interface_imports_without_torch() -> None:
    # The relevance domain and the services import the reward protocol; it must not drag in the training stack.
    import subprocess
    import sys

    code = "import sys, agpo, agpo.rewards; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
