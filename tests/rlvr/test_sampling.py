"""Greedy sampling (temperature 0): one answer per prompt, copied n times, the same whatever the batch."""

from __future__ import annotations

from pathlib import Path

from rlvr.sampling import SamplingParams, sample_transformers


def test_greedy_answers_repeat_and_do_not_depend_on_batching(tiny_lm_dir: Path) -> None:
    prompts = ["12 + 3 =", "a longer prompt about 7 * 8 =", "9"]
    greedy = SamplingParams(n=3, temperature=0.0, max_new_tokens=6, seed=0)
    ticks: list[int] = []
    answers = sample_transformers(tiny_lm_dir, prompts, greedy, batch_size=8, progress=ticks.append)
    assert [len(a) for a in answers] == [3, 3, 3] and all(len(set(a)) == 1 for a in answers)
    assert sum(ticks) == 9  # progress counts samples, as when sampling
    one_by_one = sample_transformers(tiny_lm_dir, prompts, greedy, batch_size=1)
    assert answers == one_by_one
    sampled = sample_transformers(tiny_lm_dir, prompts, SamplingParams(n=3, max_new_tokens=6, seed=0), batch_size=8)
    assert any(len(set(a)) > 1 for a in sampled)  # temperature 1 does draw different answers
