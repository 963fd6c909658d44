"""A miniature teacher build end to end (tiny sizes, a few steps): an HF directory, its card, and the eval CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
from typer.testing import CliRunner

from cli.teacher import app
from experiments.teacher_compare import CompareConfig, EvalSpec, MethodSpec, run_comparison
from relevance.synthetic.generator import GENERATOR_VERSION
from teacher.build import MODEL_FILES, build_teacher
from teacher.config import load_teacher_config
from teacher.tokenizer import IM_END, PAD

MINI = [
    "data.seed=5",
    "data.teacher_train=240",
    "data.dev=24",
    "data.gold_test=40",
    "tokenizer.vocab_size=500",
    "model.hidden=32",
    "model.layers=1",
    "model.heads=2",
    "model.kv_heads=1",
    "model.intermediate=64",
    "sft.examples=160",
    "sft.batch_size=32",
    "rl.steps=2",
    "rl.prompts_per_step=2",
    "rl.group_size=4",
    "rl.max_completion_length=16",
    "eval.pairs=6",
    "eval.n=2",
    "eval.max_new_tokens=20",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("teacher")
    card = build_teacher(load_teacher_config(None, MINI), root / "teacher", sft_out=root / "sft", command="mini build")
    return root, card


def test_build_writes_a_loadable_hf_directory(built: tuple[Path, dict]) -> None:
    root, _ = built
    out = root / "teacher"
    for name in (*MODEL_FILES, "model_card.json"):
        assert (out / name).exists(), name
    assert not (out / "training_args.bin").exists()
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    chat = [{"role": "user", "content": "Query: usb cable"}]
    prompt = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|im_start|>assistant\n")
    assert tokenizer.decode(tokenizer(prompt, add_special_tokens=False)["input_ids"]) == prompt


def test_generation_config_stops_at_end_of_turn(built: tuple[Path, dict]) -> None:
    root, _ = built
    tokenizer = AutoTokenizer.from_pretrained(root / "teacher")
    gen = GenerationConfig.from_pretrained(root / "teacher")
    eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    assert tokenizer.convert_tokens_to_ids(IM_END) == eos[0] and tokenizer.convert_tokens_to_ids(PAD) in eos
    assert gen.pad_token_id == tokenizer.convert_tokens_to_ids(PAD)
    assert gen.max_new_tokens == 20 and gen.do_sample


def test_model_card_records_data_recipe_and_metrics(built: tuple[Path, dict]) -> None:
    root, card = built
    assert json.loads((root / "teacher" / "model_card.json").read_text()) == card
    assert card["data"]["generator_version"] == GENERATOR_VERSION and card["data"]["seed"] == 5
    assert card["data"]["sizes"] == {"teacher_train": 240, "dev": 24, "gold_test": 40}
    assert card["data"]["sft_examples"] == 160 and card["data"]["rl_prompts"] == 4
    assert card["recipe"]["model"]["hidden"] == 32 and card["seeds"] == {"recipe": 0, "data": 5}
    assert card["command"] == "mini build" and card["stage"] == "sft+rl"
    model = AutoModelForCausalLM.from_pretrained(root / "teacher")
    assert card["parameters"] == sum(p.numel() for p in model.parameters())
    assert card["metrics"]["sft"]["steps"] == 5 and card["metrics"]["rl"]["steps"] == 2
    quick = card["metrics"]["gold_quick"]
    assert quick["pairs"] == 6 and 0.0 <= quick["headline"]["unparseable_rate"] <= 1.0
    assert card["build_seconds"] > 0 and set(card["timings_s"]) >= {"sft", "rl", "eval"}
    assert card["tokens"]["prompt_mean"] > 0 and card["tokens"]["completion_max"] > 0


def test_sft_only_model_is_kept_with_its_own_card(built: tuple[Path, dict]) -> None:
    root, _ = built
    card = json.loads((root / "sft" / "model_card.json").read_text())
    assert card["stage"] == "sft" and card["data"]["seed"] == 5
    assert AutoTokenizer.from_pretrained(root / "sft").chat_template is not None


def test_eval_cli_writes_json_and_plot(built: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = built
    out = tmp_path / "report.json"
    args = ["eval", "--model", str(root / "teacher"), "--pairs", "5", "--n", "4", "--max-new-tokens", "12"]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["pairs"] == 5 and report["n"] == 4 and report["split"] == "gold_test"
    assert set(report["majority@4"]) >= {"accuracy", "macro_f1", "cohen_kappa", "ece", "per_difficulty_accuracy"}
    assert {"majority@1", "majority@4"} <= set(report) and set(report["pass@k"]) == {"1", "2", "4"}
    assert 0.0 <= report["unparseable_rate"] <= 1.0
    assert out.with_suffix(".png").stat().st_size > 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["rl.stepz=3"], r"override 'rl.stepz=3': unknown setting\(s\) \['stepz'\]"),
        (["sft.learning_rate=fast"], "expected float"),
        (["model=3"], "expected a mapping"),
        (["rl.steps"], "expected section.key=value"),
    ],
)
def test_config_errors_name_the_setting(overrides: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_teacher_config(None, overrides)


def test_config_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("seed: 3\nrl:\n  learning_rate: 5e-5\n  steps: 7\n")
    cfg = load_teacher_config(path, ["rl.steps=9", "data.dir=null"])
    assert (cfg.seed, cfg.rl.learning_rate, cfg.rl.steps, cfg.data.dir) == (3, 5e-5, 9, None)
    assert load_teacher_config(Path("configs/teacher.yaml")).rl.estimator == "agpo"


def test_compare_runs_the_grid_once_and_resumes(built: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = built
    cfg = CompareConfig(
        base=str(root / "sft"),
        methods={
            "agpo": MethodSpec("agpo", (1e-4, 2e-4)),
            "grpo": MethodSpec("grpo", (1e-4,)),
            "spare": MethodSpec("agpo", (1e-4,), protect_shared_prefix=True),
        },
        seeds=(0, 1),
        steps=1,
        prompts_per_step=2,
        group_size=2,
        max_completion_length=12,
        dev=EvalSpec(pairs=4, n=2, max_new_tokens=12, batch_size=8),
        gold=EvalSpec(pairs=4, n=2, max_new_tokens=12, batch_size=8),
    )
    report = tmp_path / "quality.md"
    partial = run_comparison(cfg, tmp_path / "runs", report, command="cmp", max_new_runs=2, log=lambda _: None)
    assert partial["status"] == "partial" and "grpo seed 0 (lr not chosen yet)" in partial["missing"]
    assert "Status: **partial**" in report.read_text()
    summary = run_comparison(cfg, tmp_path / "runs", report, command="cmp", log=lambda _: None)
    assert summary["status"] == "complete" and summary["missing"] == []
    assert summary["chosen_lr"]["grpo"] == 1e-4 and summary["chosen_lr"]["agpo"] in (1e-4, 2e-4)
    assert summary["rows"]["agpo"]["macro_f1"]["count"] == 2 and summary["rows"]["sft"]["macro_f1"]["count"] == 1
    runs = sorted(p.relative_to(tmp_path / "runs").as_posix() for p in (tmp_path / "runs").glob("*/lr*/seed*"))
    assert len(runs) == 7  # agpo: two lrs at seed 0 and the chosen one at seed 1; grpo, spare: seeds 0 and 1
    settings = json.loads((tmp_path / "runs" / "spare" / "lr0.0001" / "seed1" / "agpo_run.json").read_text())["config"]
    assert settings["protect_shared_prefix"] is True and settings["estimator"] == "agpo"
    text = report.read_text()
    assert "cmp" in text and "| AGPO |" in text and "| GRPO |" in text and "teacher_quality_confusion_agpo.png" in text
    assert (tmp_path / "teacher_quality_confusion_sft.png").exists()


def test_compare_config_reads_the_shared_prefix_flag_and_names_a_bad_value(tmp_path: Path) -> None:
    from experiments.teacher_compare import load_compare_config

    path = tmp_path / "cmp.yaml"
    path.write_text("methods:\n  spare: {estimator: agpo, protect_shared_prefix: true, learning_rates: [1e-4]}\n")
    assert load_compare_config(path).methods["spare"].protect_shared_prefix is True
    path.write_text("methods:\n  spare: {estimator: agpo, protect_shared_prefix: maybe, learning_rates: [1e-4]}\n")
    with pytest.raises(ValueError, match=r"methods\.spare\.protect_shared_prefix='maybe': expected bool"):
        load_compare_config(path)
