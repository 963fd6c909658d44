"""The student study end to end at toy size: a real (tiny) teacher labels a pool, students train from its labels
and from gold labels over two seeds, the report is written, and a second run reuses every step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from relevance.synthetic import generate_benchmark


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from helpers import build_labelling_teacher

    data = tmp_path_factory.mktemp("teacher-data")
    generate_benchmark(data, seed=5, teacher_train=0, dev=0, gold_test=0, pool=16)
    pairs = [json.loads(x) for x in (data / "pool.jsonl").read_text().splitlines()]
    # 80 steps: at 40 it still answers Exact to everything, and students need two classes.
    return build_labelling_teacher(
        tmp_path_factory.mktemp("teacher") / "tiny", pairs, labels=("Exact", "Irrelevant"), steps=80
    )


def _config(tmp_path: Path, teacher: Path, bench: Path) -> Path:
    config = {
        "reference": str(teacher),
        "benchmark_dir": str(bench),
        "teachers": {"tiny": {"path": str(teacher)}},
        "variants": [
            {"name": "tiny-soft", "labels": "tiny", "targets": "soft"},
            {"name": "gold-hard", "labels": "gold", "targets": "hard"},
        ],
        "pool": 40,
        "gold": 40,
        "dev": 20,
        "samples": 4,
        "max_tokens": 24,
        "seeds": [0, 1],
        "student": {"max_steps": 2, "batch_size": 8, "max_length": 32, "threads": 1},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_study_labels_trains_reports_and_resumes(tmp_path: Path, tiny_teacher: Path, student_bench: Path) -> None:
    from experiments.student_study import load_study_config, run_study, write_report

    cfg = load_study_config(_config(tmp_path, tiny_teacher, student_bench))
    out = tmp_path / "study"
    summary = run_study(cfg, out, lambda _: None)

    labels = [json.loads(x) for x in (out / "labels" / "tiny.jsonl").read_text().splitlines()]
    assert len(labels) == 40 and {r["status"] for r in labels} <= {"completed", "failed"}
    assert {r["label"] for r in labels if r["status"] == "completed"} == {"Exact", "Irrelevant"}
    tiny = summary["teachers"]["tiny"]
    assert 0.0 <= tiny["macro_f1"] <= 1.0 and tiny["pairs"] == 40
    assert set(summary["table"]) == {"tiny-soft", "gold-hard"}
    for row in summary["table"].values():
        assert row["macro_f1"]["n"] == 2 and 0.0 <= row["macro_f1"]["mean"] <= 1.0
    assert summary["table"]["gold-hard"]["label_macro_f1"] == 1.0
    assert set(summary["baselines"]) == {"majority", "bi_encoder"}
    # Weights are kept for the first seed only; every run keeps its metrics.
    assert list((out / "gold-hard" / "seed0").glob("*.safetensors"))
    assert not list((out / "gold-hard" / "seed1").glob("*.safetensors"))

    md = write_report(summary, tmp_path / "report.md", "agpo student study -c study.yaml")
    text = md.read_text()
    assert "| tiny-soft | tiny | soft |" in text and "agpo student study -c study.yaml" in text
    assert json.loads(md.with_suffix(".json").read_text())["table"]["gold-hard"]["macro_f1"]["n"] == 2

    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("eval.json")}
    again = run_study(cfg, out, lambda _: None)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("eval.json")} == stamps
    assert again["table"] == summary["table"]


def test_study_config_errors_name_the_setting(tmp_path: Path) -> None:
    from cli.student import app

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"teachers": {"a": {"path": "x"}}, "variants": [{"name": "v", "labels": "b"}]}))
    result = CliRunner().invoke(app, ["study", "--config", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "variant v" in result.output and "'b'" in result.output
    bad.write_text(yaml.safe_dump({"teachers": {}, "variants": [], "pools": 3}))
    result = CliRunner().invoke(app, ["study", "--config", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "pools" in result.output
