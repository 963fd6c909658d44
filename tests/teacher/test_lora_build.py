"""The LoRA teacher recipe in miniature: on the committed tiny teacher as its base (a model directory), with
real Home Depot train rows mixed into SFT, one AGPO step on the adapter, then served by the in-process backend."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.teacher import app
from llm.bases import adapter_base, is_adapter
from pipelines.backends import model_revision
from relevance.real import write_real_sets
from teacher.config import load_teacher_config
from teacher.data import balanced_draw, read_jsonl
from teacher.lora_build import TRAINING_IDS, build_lora_teacher, cached_sft

ROOT = Path(__file__).resolve().parents[2]
TINY_BASE = ROOT / "models/relevance-teacher"


def mini(real: Path, dev: Path) -> list[str]:
    return [
        f"base={TINY_BASE}",
        "template=compact",
        f"data.real={real}",
        "data.real_examples=24",
        "data.teacher_train=40",
        "data.dev=0",
        "data.gold_test=12",
        "lora.r=4",
        "lora.alpha=8",
        "sft.examples=16",
        "sft.batch_size=8",
        "rl.steps=1",
        "rl.prompts_per_step=2",
        "rl.group_size=2",
        "rl.max_completion_length=16",
        "eval.pairs=4",
        "eval.n=1",
        "eval.temperature=0",
        "eval.max_new_tokens=24",
        f"eval.real={dev}",
        "eval.real_pairs=4",
    ]


@pytest.fixture(scope="module")
def real_sets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("real")
    write_real_sets(out)
    return out


@pytest.fixture(scope="module")
def built(real_sets: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("lora") / "teacher"
    config = load_teacher_config(None, mini(real_sets / "homedepot_train.jsonl", real_sets / "homedepot_dev.jsonl"))
    return out, build_lora_teacher(config, out, command="mini lora build")


def test_balanced_draw_evens_labels_out_as_far_as_the_rare_one_allows() -> None:
    rows = [
        {"custom_id": f"{label}{i}", "meta": {"label": label}}
        for label, n in (("E", 50), ("S", 30), ("I", 4))
        for i in range(n)
    ]
    counts = Counter(r["meta"]["label"] for r in balanced_draw(rows, 30, seed=0))
    assert counts == {"E": 13, "S": 13, "I": 4}
    assert balanced_draw(rows, 30, seed=0) == balanced_draw(rows, 30, seed=0)
    assert len(balanced_draw(rows, 500, seed=1)) == 84


def test_the_adapter_names_its_base_portably_and_lists_its_real_rows(built: tuple[Path, dict], real_sets: Path) -> None:
    out, card = built
    assert is_adapter(out) and adapter_base(out) == str(TINY_BASE)
    assert not (out / "config.json").exists()  # an adapter, not a copy of the base
    assert card["stage"] == "sft+rl" and card["metrics"]["rl"]["steps"] == 1
    real = card["data"]["real"]
    assert real["rows"] == 24 and real["rl_rows"] == 2 and real["sources"] == ["homedepot"]
    ids = (out / TRAINING_IDS).read_text().split()
    assert len(ids) == len(set(ids)) == 26
    train_ids = {r["custom_id"] for r in read_jsonl(real_sets / "homedepot_train.jsonl")}
    held_out = {r["custom_id"] for s in ("dev", "test") for r in read_jsonl(real_sets / f"homedepot_{s}.jsonl")}
    assert set(ids) <= train_ids and not set(ids) & held_out
    checks = card["metrics"]["quick"]
    assert set(checks) == {"gold_test", "real:homedepot_dev.jsonl"} and all(c["pairs"] == 4 for c in checks.values())
    assert "Never evaluate on them" in (out / "README.md").read_text()


def test_a_finished_sft_stage_is_reused(built: tuple[Path, dict], real_sets: Path, tmp_path: Path) -> None:
    out, card = built
    work = Path(f"{out}.work")
    assert (work / "sft" / "DONE").is_file()
    config = load_teacher_config(
        None, [*mini(real_sets / "homedepot_train.jsonl", real_sets / "homedepot_dev.jsonl"), "rl.steps=0"]
    )
    logged: list[str] = []
    again = build_lora_teacher(config, tmp_path / "again", work_dir=work, log=logged.append, skip_eval=True)
    assert any("reusing the finished SFT stage" in line for line in logged)
    assert again["metrics"]["sft"] == card["metrics"]["sft"] and again["stage"] == "sft"


def test_a_continued_adapter_trains_on_new_real_rows_and_lists_both_stages(
    built: tuple[Path, dict], real_sets: Path, tmp_path: Path
) -> None:
    first, _ = built
    config = load_teacher_config(
        None,
        [
            *mini(real_sets / "homedepot_train.jsonl", real_sets / "homedepot_dev.jsonl"),
            "rl.steps=0",
            "sft.examples=4",
            f"sft.init_adapter={first}",
        ],
    )
    out = tmp_path / "more"
    card = build_lora_teacher(config, out, skip_eval=True)
    earlier = set((first / "training_ids.txt").read_text().split())
    ids = set((out / "training_ids.txt").read_text().split())
    real = card["data"]["real"]
    assert real["rows"] == 24 and real["earlier_rows"] == len(earlier) == 26  # 24 SFT + 2 RL rows before
    assert earlier < ids and len(ids) == 24 + 26  # the new rows are new, and every row is listed
    assert "continuing" in (out / "README.md").read_text()
    before = (first / "adapter_model.safetensors").read_bytes()
    assert (out / "adapter_model.safetensors").read_bytes() != before


def test_sft_under_other_settings_is_trained_again(tmp_path: Path) -> None:
    logged: list[str] = []
    first = load_teacher_config(None, ["base=x"])
    assert cached_sft(first, tmp_path / "sft", logged.append, lambda: {"run": 1}) == {"run": 1}
    assert cached_sft(first, tmp_path / "sft", logged.append, lambda: {"run": 2}) == {"run": 1}
    assert cached_sft(load_teacher_config(None, ["base=x", "rl.steps=5"]), tmp_path / "sft", logged.append, dict) == {
        "run": 1
    }  # RL settings do not touch SFT
    changed = load_teacher_config(None, ["base=x", "sft.learning_rate=1e-3"])
    assert cached_sft(changed, tmp_path / "sft", logged.append, lambda: {"run": 3}) == {"run": 3}
    assert any("other settings" in line for line in logged)


def test_the_transformers_backend_serves_the_adapter_and_its_revision_follows_it(
    built: tuple[Path, dict], tmp_path: Path
) -> None:
    from pipelines.backends.base import Decoding
    from pipelines.backends.transformers_backend import TransformersBackend
    from relevance.prompts import build_messages

    out, _ = built
    backend = TransformersBackend(out, batch_size=4)
    pair = {"custom_id": "p1", "query": "cordless drill", "ad": {"title": "DeWalt 20V Cordless Drill"}}
    (generation,) = backend.generate([build_messages(pair)], Decoding(n=2, temperature=0, max_tokens=24))
    assert len(generation.completions) == 2 and generation.prompt_tokens > 0
    changed = tmp_path / "changed"
    changed.mkdir()
    for f in out.iterdir():
        if f.is_file():
            (changed / f.name).write_bytes(f.read_bytes())
    config = json.loads((changed / "adapter_config.json").read_text())
    (changed / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "other/base"}))
    assert model_revision(changed) != model_revision(out)  # another base under the same adapter: another teacher


def test_the_cli_names_a_missing_base_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["build", "--base", str(tmp_path / "nope"), "--out", str(tmp_path / "t")])
    assert result.exit_code == 2
    assert "is not a registered base" in result.output and "Traceback" not in result.output


def test_eval_reads_the_adapter_and_reports_both_baselines_on_the_same_pairs(
    built: tuple[Path, dict], real_sets: Path, tmp_path: Path
) -> None:
    out, _ = built
    report_path = tmp_path / "eval.json"
    args = ["eval", "--model", str(out), "--pairs-file", str(real_sets / "homedepot_test.jsonl"), "--pairs", "6"]
    args += ["--n", "1", "--temperature", "0", "--out", str(report_path)]
    args += ["--baselines-dev", str(real_sets / "homedepot_dev.jsonl")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["pairs"] == 6 and report["settings"]["template"] == "compact"  # the card's template
    baselines = report["baselines"]
    assert baselines["majority"]["label"] == "Exact"  # the dev split's most frequent label
    assert 0 <= baselines["bi_encoder"]["macro_f1"] <= 1 and "baseline bi_encoder" in result.output
