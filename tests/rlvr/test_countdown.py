"""The Countdown task: problems, traces, the verifier and its reward."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from agpo.rewards import RewardFunction, as_trl_reward, score
from rlvr.tasks.countdown import (
    RARE_SHARE,
    CountdownReward,
    Problem,
    chains,
    check,
    generate_problems,
    make_splits,
    make_trace,
    parse_answer,
    solution_share,
    solutions,
)

P = Problem((3, 5, 7), 22)


@pytest.mark.parametrize(
    ("completion", "correct"),
    [
        ("5*3=15 15+7=22 yes", True),
        ("7*3=21 21+5=26 no\n5*3=15 15+7=22 yes\n", True),
        ("7*3=21 21+5=26 vs 22 no\n5*3=15 15+7=22 vs 22 yes\n", True),
        ("5*3=15 15+7=23 vs 22 yes", False),  # restating the target does not make it so
        ("3*5=15 7+15=22 yes", True),  # any order of operands
        ("5*3=15 15+7=23 yes", False),  # wrong target
        ("5*3=16 16+7=22 yes", False),  # wrong arithmetic
        ("5*3=15 15+7=22 no", False),  # never claimed
        ("5*3=15 yes", False),  # leaves 7 unused
        ("5*5=25 25-3=22 yes", False),  # uses 5 twice, 7 never
        ("5*3=15 15+7=22 yes\n7-7=0 yes", False),  # the LAST yes line counts
        ("3-5=-2 yes", False),
        ("", False),
        ("banana yes", False),
    ],
)
def test_verifier(completion: str, correct: bool) -> None:
    assert check(P, parse_answer(completion)) is correct
    assert CountdownReward()([completion], [P.reference]) == [1.0 if correct else 0.0]


def test_every_generated_trace_solves_its_problem_and_problems_are_deterministic() -> None:
    problems = generate_problems(200, 3, seed=1) + generate_problems(50, 4, seed=2)
    assert problems[:10] == generate_problems(200, 3, seed=1)[:10]
    assert len(set(problems)) == len(problems)
    rng = random.Random(0)
    for p in problems:
        assert solutions(p), p
        trace = make_trace(p, rng)
        assert check(p, parse_answer(trace)), trace
        assert trace.endswith(f" vs {p.target} yes\n")


def test_splits_are_drawn_once_per_setting_and_cannot_be_altered_by_a_caller() -> None:
    small = {"sft": 40, "rl": 20, "dev": 10, "test": 10}
    splits = make_splits(seed=3, **small)
    assert make_splits(3, 40, 20, 10, 10) is splits  # the same settings, however they are passed
    other = make_splits(seed=4, **small)
    assert other is not splits and other.test_easy != splits.test_easy
    assert all(isinstance(problems, tuple) for problems in splits.__dict__.values())
    held_out = set(splits.test_easy) | set(splits.test_hard) | set(splits.dev)
    assert not held_out & (set(splits.rl) | set(splits.sft))


def test_the_studies_splits_are_the_ones_their_records_were_evaluated_on() -> None:
    # The committed pass@k records hold per-problem counts for these problems: a split that moves orphans them.
    splits = make_splits().as_dict()
    splits.pop("test_rare")
    digest = hashlib.sha256(json.dumps(splits, sort_keys=True).encode()).hexdigest()
    assert digest == "89aac6ee7b6121cb85887857915974b9b8eb579adbd5c31f1bb228916de42e56"


def test_rare_problems_have_few_correct_chains_and_are_held_out() -> None:
    splits = make_splits()
    rare = splits.test_rare
    assert len(rare) == len(set(rare)) == 200
    shares = [solution_share(p) for p in rare]
    assert all(0 < share < RARE_SHARE for share in shares)
    assert all(len(p.numbers) == 4 and all(check(p, c) for c in solutions(p)) for p in rare[:20])
    others = set().union(*(set(getattr(splits, name)) for name in ("sft", "rl", "dev", "test_easy", "test_hard")))
    assert not set(rare) & others
    # test_hard's problems come from random chains' results, which favours common targets: most are not rare.
    assert sum(solution_share(p) < RARE_SHARE for p in splits.test_hard[:100]) < 10


def test_a_budgeted_trace_drops_dead_ends_to_fit_and_still_ends_in_the_solution() -> None:
    rng = random.Random(1)
    problems = generate_problems(200, 4, seed=9)
    traces = [make_trace(p, rng, max_failures=2, max_chars=120) for p in problems]
    assert all(len(t) <= 120 and t.count("\n") <= 3 for t in traces)
    assert all(check(p, parse_answer(t)) for p, t in zip(problems, traces, strict=True))
    assert any(t.count(" no\n") == 2 for t in traces)
    rng = random.Random(1)
    unbudgeted = [make_trace(p, rng, max_failures=4) for p in problems]
    assert max(len(t) for t in unbudgeted) > 120


def test_traces_contain_dead_ends() -> None:
    rng = random.Random(0)
    traces = [make_trace(p, rng) for p in generate_problems(300, 3, seed=4)]
    with_dead_ends = sum(" no\n" in t for t in traces)
    assert 0.3 < with_dead_ends / len(traces) < 0.9


def test_chains_cover_every_solution_order() -> None:
    all_chains = chains((3, 5, 7))
    assert ((5, "*", 3, 15), (15, "+", 7, 22)) in all_chains
    assert ((3, "*", 5, 15), (7, "+", 15, 22)) in all_chains
    assert all(step[3] > 0 for chain in all_chains for step in chain)


def test_reward_protocol_and_trl_adapter() -> None:
    reward = CountdownReward()
    assert isinstance(reward, RewardFunction)
    assert score(reward, ["5*3=15 15+7=22 yes"], [P.reference]) == [1.0]
    trl_reward = as_trl_reward(reward)
    got = trl_reward(prompts=[P.prompt] * 2, completions=["5*3=15 15+7=22 yes", "no idea"], reference=[P.reference] * 2)
    assert got == [1.0, 0.0]
    with pytest.raises(ValueError, match="needs a 'reference' column"):
        trl_reward(prompts=[P.prompt], completions=["x"])


def test_asking_for_more_problems_than_exist_fails_clearly() -> None:
    with pytest.raises(ValueError, match="could only find"):
        generate_problems(100, 3, seed=0, max_number=2)
