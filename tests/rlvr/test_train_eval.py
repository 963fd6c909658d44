"""RL training and pass@k evaluation end to end on a tiny base model: config, train, eval, plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from rlvr.evaluate import load_results
from rlvr.train import TrainConfig, load_config, train

runner = CliRunner()


def test_config_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("estimator: nsr\nlearning_rate: 1e-5\nsteps: 7\n")
    cfg = load_config(path, ["lambda_neg=0.5", "steps=9", "lambda_pos=null"])
    assert (cfg.estimator, cfg.learning_rate, cfg.steps, cfg.lambda_neg, cfg.lambda_pos) == ("nsr", 1e-5, 9, 0.5, None)


@pytest.mark.parametrize(
    ("yaml_text", "overrides", "message"),
    [
        ("estimater: agpo\n", [], r"unknown setting\(s\) \['estimater'\]"),
        ("", ["lr=0.1"], r"override 'lr=0.1': unknown setting\(s\) \['lr'\]; known: \["),
        ("", ["lr"], "override 'lr': expected key=value"),
        ("", ["steps=many"], "steps='many': expected"),
        ("", ["group_size=1"], "group_size must be at least 2"),
        ("- a\n- b\n", [], "expected a mapping"),
    ],
)
def test_config_errors_name_the_setting(tmp_path: Path, yaml_text: str, overrides: list[str], message: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ValueError, match=message):
        load_config(path, overrides)


def test_base_model_card(base_dir: Path) -> None:
    card = json.loads((base_dir / "model_card.json").read_text())
    assert card["task"] == "countdown" and card["parameters"] > 0 and card["command"] == "test"
    assert (base_dir / "tokenizer.json").exists() and (base_dir / "model.safetensors").exists()


def test_train_two_steps_then_eval_checkpoints(base_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "agpo"
    cfg = TrainConfig(
        base_model=str(base_dir),
        output_dir=str(out),
        steps=2,
        prompts_per_step=2,
        group_size=4,
        max_completion_length=12,
        logging_steps=1,
        learning_rate=1e-3,
    )
    summary = train(cfg)
    assert summary["steps"] == 2
    assert (out / "config.json").exists() and (out / "agpo_run.json").exists()
    logged = [row for row in summary["log_history"] if "advantages/neg_share" in row]
    assert len(logged) == 2

    result = runner.invoke(
        app,
        [
            "eval",
            "--model", str(base_dir), "--model", str(out),
            "--label", "base", "--label", "agpo",
            "--problems", "3", "--n", "4", "--max-new-tokens", "12",
            "--out", str(tmp_path / "eval.json"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    results = load_results(tmp_path / "eval.json")
    assert [r.label for r in results] == ["base", "agpo"]
    for r in results:
        assert sorted(r.curve) == [1, 2, 4]
        assert len(r.counts) == 3 and all(0 <= c <= 4 for c in r.counts)
        assert all(0.0 <= v <= 1.0 for v in r.curve.values())
    assert (tmp_path / "eval.png").stat().st_size > 1000


def test_train_cli_reports_a_missing_base_model(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--base-model", str(tmp_path / "nope"), "--steps", "1"])
    assert result.exit_code == 2
    assert "agpo base build" in result.output


def test_eval_cli_rejects_mismatched_labels(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "--model", str(tmp_path), "--label", "a", "--label", "b"])
    assert result.exit_code == 2
    assert "2 --label values for 1 --model" in result.output


def test_same_length_batches_never_mix_prompt_lengths() -> None:
    from transformers import AutoTokenizer

    from rlvr.sampling import row_batches

    tokenizer = AutoTokenizer.from_pretrained(Path(__file__).resolve().parents[2] / "models" / "countdown-base")
    prompts = ["1 2 3", "10 20 30 40", "4 5 6", "7 8", "11 22 33 44"]
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    assert len(set(lengths)) == 3  # the case is only a test if lengths differ
    batches = list(row_batches(tokenizer, prompts, n=3, batch_size=4, same_length=True))
    assert all(len(b) <= 4 and len({lengths[i] for i in b}) == 1 for b in batches)
    rows = sorted(i for b in batches for i in b)
    assert rows == sorted(i for i in range(len(prompts)) for _ in range(3))
    mixed = list(row_batches(tokenizer, prompts, n=3, batch_size=4, same_length=False))
    assert any(len({lengths[i] for i in b}) > 1 for b in mixed)


def test_reloaded_tokenizer_splits_text_as_the_one_trained_with(base_dir: Path) -> None:
    # AutoTokenizer (used by TRL, vLLM and sampling) rebuilds a qwen2 model's tokenizer with Qwen2's pipeline:
    # the saved one must agree with it, spaces and newlines included.
    from transformers import AutoTokenizer

    from rlvr.tasks.countdown import make_splits, sft_examples
    from rlvr.tiny_lm import build_char_tokenizer

    reloaded = AutoTokenizer.from_pretrained(base_dir)
    examples = list(sft_examples(make_splits().sft[:50], seed=0))
    built = build_char_tokenizer(e["prompt"] + e["completion"] for e in examples)
    for e in examples:
        text = e["prompt"] + e["completion"]
        ids = reloaded(text, add_special_tokens=False)["input_ids"]
        assert ids == built(text, add_special_tokens=False)["input_ids"]
        assert reloaded.decode(ids) == text
    assert reloaded("<eos>", add_special_tokens=False)["input_ids"] == [reloaded.eos_token_id]


def test_committed_base_model_loads_and_solves_some_problems() -> None:
    from rlvr.sampling import SamplingParams, sample
    from rlvr.tasks.countdown import CountdownReward, make_splits

    base = Path(__file__).resolve().parents[2] / "models" / "countdown-base"
    card = json.loads((base / "model_card.json").read_text())
    assert card["parameters"] == 988_800
    problems = make_splits().test_easy[:8]
    outs = sample(base, [p.prompt for p in problems], SamplingParams(n=8, max_new_tokens=128, seed=0))
    rewards = [v for p, o in zip(problems, outs, strict=True) for v in CountdownReward()(o, [p.reference] * len(o))]
    # pass@1 is about 0.39 on test_easy: 64 samples with no solution at all would mean a broken model or tokenizer.
    assert sum(rewards) >= 5
