"""The shared-prefix measurement (experiments.prefix_effect) and its command, on the committed models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from agpo.shared_prefix import shared_prefix_lengths
from cli.main import app
from experiments.prefix_effect import (
    KINDS,
    Samples,
    bootstrap_interval,
    paired_differences,
    parse_models,
    per_prompt_sums,
    shifts,
    token_logprobs,
)

MODELS = Path(__file__).resolve().parents[2] / "models"


def test_shared_prefix_is_the_longest_prefix_shared_with_the_other_outcome() -> None:
    group = [[1, 2, 3, 4], [1, 2, 9], [1, 7], [5]]
    correct = [True, False, False, True]
    # [1,2,3,4] shares 2 with [1,2,9]; the wrong ones share 2 and 1 with it; [5] shares nothing.
    assert shared_prefix_lengths(group, correct) == [2, 2, 1, 0]
    assert shared_prefix_lengths(group, [True] * 4) == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="4 completions but 3 outcomes"):
        shared_prefix_lengths(group, correct[:3])


def test_shifts_split_each_completion_at_its_shared_prefix() -> None:
    samples = Samples(
        prompt_ids=[[0]] * 3,
        completion_ids=[[1, 2, 3], [1, 2, 4], [8]],
        correct=[True, False, True],
        shared=[2, 2, 0],
        mixed=[True, True, False],
        prompts=2,
        mixed_prompts=1,
        prompt_index=[0, 0, 1],
    )
    base = [np.zeros(3), np.zeros(3), np.zeros(1)]
    model = [np.array([-1.0, -3.0, 0.5]), np.array([-2.0, -2.0, -4.0]), np.array([1.0])]
    out = shifts(samples, base, model)
    assert out["token_logprob_shift"] == {
        "correct/shared": -2.0,
        "correct/own": 0.5,
        "wrong/shared": -2.0,
        "wrong/own": -4.0,
    }
    assert out["tokens"] == {"correct/shared": 2, "correct/own": 1, "wrong/shared": 2, "wrong/own": 1}
    # Whole-completion shifts count every completion, mixed group or not: (-3.5 + 1) / 2 and -8.
    assert out["completion_logprob_shift"] == {"correct": -1.25, "wrong": -8.0}
    # One mixed prompt: resampling it gives the same mean every time.
    assert out["token_logprob_shift_95"]["correct/shared"] == (-2.0, -2.0)


def test_bootstrap_interval_is_over_prompts_and_pairs_models_on_the_same_tokens() -> None:
    # Prompt 0 moved its 10 tokens by -1 each, prompt 1 its 10 tokens by +1: the mean is 0 and the interval wide.
    low, high = bootstrap_interval(np.array([-10.0, 10.0]), np.array([10.0, 10.0]))
    assert low == -1.0 and high == 1.0
    assert bootstrap_interval(np.zeros(3), np.zeros(3)) is None
    samples = Samples(
        prompt_ids=[[0]] * 4,
        completion_ids=[[1, 2], [1, 3], [4, 5], [4, 6]],
        correct=[True, False, True, False],
        shared=[1, 1, 1, 1],
        mixed=[True] * 4,
        prompts=2,
        mixed_prompts=2,
        prompt_index=[0, 0, 1, 1],
    )
    base = [np.zeros(2)] * 4
    a = [np.array([-1.0, 0.0]), np.zeros(2), np.array([1.0, 0.0]), np.zeros(2)]
    b = [np.array([-1.5, 0.0]), np.zeros(2), np.array([0.5, 0.0]), np.zeros(2)]
    sums_a, counts = per_prompt_sums(samples, base, a)
    sums_b, _ = per_prompt_sums(samples, base, b)
    diff = paired_differences({"a": sums_a, "b": sums_b}, counts, "a")["b"]["correct/shared"]
    # Each model alone spans [-1, 1] across prompts; paired on the same tokens, b is 0.5 lower on both.
    assert diff == {"difference": -0.5, "interval_95": (-0.5, -0.5)}


def test_batched_logprobs_equal_one_sequence_at_a_time() -> None:
    tokenizer = AutoTokenizer.from_pretrained(MODELS / "countdown-base")
    model = AutoModelForCausalLM.from_pretrained(MODELS / "countdown-base").eval()

    def ids(texts: tuple[str, ...]) -> list[list[int]]:
        return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]

    # Different lengths, so the batch is padded.
    prompts = ids(("3 5 7 -> 22", "10 2 -> 5", "1 1 1 1 -> 4"))
    completions = ids((" 3*5+7", " 10/2 = 5 done", " 1+1"))
    batched = token_logprobs(model, prompts, completions, batch_size=3)
    for p, c, got in zip(prompts, completions, batched, strict=True):
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([p + c])).logits[0]
        expected = torch.log_softmax(logits, -1)[torch.arange(len(p) - 1, len(p) + len(c) - 1), torch.tensor(c)]
        assert got.shape == (len(c),)
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-4)


def test_model_specs_name_what_is_wrong(tmp_path: Path) -> None:
    assert parse_models([f"sft={MODELS / 'relevance-teacher'}"]) == {"sft": MODELS / "relevance-teacher"}
    with pytest.raises(ValueError, match="write LABEL=DIR"):
        parse_models([str(MODELS / "relevance-teacher")])
    with pytest.raises(ValueError, match=r"no config\.json"):
        parse_models([f"x={tmp_path}"])
    with pytest.raises(ValueError, match="used twice"):
        parse_models([f"a={MODELS / 'relevance-teacher'}", f"a={MODELS / 'relevance-teacher'}"])


def test_teacher_prefix_effect_command_writes_json_and_plot(tmp_path: Path) -> None:
    teacher = MODELS / "relevance-teacher"
    out = tmp_path / "pe.json"
    args = ["teacher", "prefix-effect", "--base", str(teacher), "--model", f"same={teacher}", "--pairs", "8"]
    result = CliRunner().invoke(app, [*args, "--n", "4", "--out", str(out)], env={"AGPO_NO_PROGRESS": "1"})
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert out.with_suffix(".png").stat().st_size > 0
    assert data["completions"] <= 8 * 4 and data["mixed_prompts"] <= 8
    entry = data["models"]["same"]
    # A model scored against itself moves nothing; the kinds cover every token of a mixed group's completions.
    for kind in KINDS:
        assert entry["token_logprob_shift"][kind] in (None, 0.0)
    assert entry["completion_logprob_shift"]["correct"] in (None, 0.0)
    assert (sum(entry["tokens"].values()) > 0) == (data["mixed_prompts"] > 0)

    bad = CliRunner().invoke(app, ["teacher", "prefix-effect", "--base", str(teacher), "--model", "nolabel"])
    assert bad.exit_code == 2 and "LABEL=DIR" in bad.output
    bad = CliRunner().invoke(app, [*args, "--reference", "other"])
    assert bad.exit_code == 2 and "--reference 'other' is not one of the --model labels ['same']" in bad.output


def test_countdown_prefix_effect_command(tmp_path: Path) -> None:
    base = MODELS / "countdown-base"
    out = tmp_path / "cd.json"
    args = ["prefix-effect", "--base", str(base), "--model", f"same={base}", "--model", f"again={base}"]
    args += ["--problems", "6", "--n", "4", "--max-new-tokens", "48"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["split"] == "test_hard" and data["prompts"] == 6 and data["n"] == 4
    assert data["models"]["same"]["completion_logprob_shift"]["wrong"] in (None, 0.0)
    assert set(data["differences"]) == {"same"} and set(data["differences"]["same"]) == {"again"}
    assert all(c["difference"] in (None, 0.0) for c in data["differences"]["same"]["again"].values())

    bad = CliRunner().invoke(app, [*args[:5], "--split", "nope"])
    assert bad.exit_code == 2 and "unknown split 'nope'" in bad.output
