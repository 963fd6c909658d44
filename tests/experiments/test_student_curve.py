"""Learning curves: nested, query-whole subsets, and a tiny end-to-end curve with its report and plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.student_curve import (
    CurveConfig,
    CurveData,
    check_files,
    query_subset,
    run_curve,
    select_datasets,
    write_report,
)
from relevance.pairs import Pair
from student.data import query_group


def _groups(lines: list[str]) -> list[str]:
    return [query_group(Pair.model_validate_json(line)) for line in lines]


def test_subsets_are_nested_and_whole_queries_first(student_bench: Path) -> None:
    lines = (student_bench / "teacher_train.jsonl").read_text().splitlines()
    small, large = query_subset(lines, 40, seed=3), query_subset(lines, 120, seed=3)
    assert large[:40] == small
    groups = _groups(large)
    # Queries come one after another: once a query's pairs end, it does not come back.
    finished = [g for i, g in enumerate(groups) if i + 1 < len(groups) and groups[i + 1] != g]
    assert len(finished) == len(set(finished))
    assert query_subset(lines, 40, seed=4) != small
    with pytest.raises(ValueError, match="asked for"):
        query_subset(lines, len(lines) + 1, seed=0)


def test_a_tiny_curve_runs_reports_and_resumes(student_bench: Path, tmp_path: Path) -> None:
    data = CurveData(
        train=str(student_bench / "teacher_train.jsonl"),
        dev=str(student_bench / "dev.jsonl"),
        test=str(student_bench / "gold_test.jsonl"),
    )
    recipe = {"max_steps": 3, "batch_size": 8, "max_length": 32, "select_best": False}
    cfg = CurveConfig(datasets={"bench": data}, sizes=(40, 80), seeds=(0,), recipe=recipe)
    summary = run_curve(cfg, tmp_path / "work", lambda _: None)
    points = summary["curves"]["bench"]["points"]
    assert [p["n"] for p in points] == [40, 80]
    assert all(0 <= p["macro_f1"]["mean"] <= 1 and p["runs"][0]["steps"] == 3 for p in points)
    assert summary["curves"]["bench"]["baselines"]["bi_encoder"]["macro_f1"] is not None
    assert not list((tmp_path / "work").rglob("*.safetensors"))  # metrics kept, weights not

    md = write_report(summary, tmp_path / "curve.md", "agpo student curve")
    assert (tmp_path / "curve.png").stat().st_size > 0
    assert json.loads((tmp_path / "curve.json").read_text())["curves"]["bench"]["points"][1]["n"] == 80
    assert "| 40 |" in md.read_text() and "zero-shot bi-encoder" in md.read_text()

    # A second run reads the finished points instead of training again.
    eval_json = tmp_path / "work" / "bench" / "n40" / "seed0" / "eval.json"
    marked = {**json.loads(eval_json.read_text()), "macro_f1": 0.123}
    eval_json.write_text(json.dumps(marked))
    again = run_curve(cfg, tmp_path / "work", lambda _: None)
    assert again["curves"]["bench"]["points"][0]["macro_f1"]["mean"] == 0.123


def test_datasets_are_picked_by_name_and_missing_files_named(tmp_path: Path) -> None:
    present = tmp_path / "a.jsonl"
    present.write_text("")
    cfg = CurveConfig(
        datasets={
            "real": CurveData(train=str(present), dev=str(present), test=str(present)),
            "synthetic": CurveData(train=str(present), dev=str(tmp_path / "gone.jsonl"), test=str(present)),
        }
    )
    assert list(select_datasets(cfg, ["real"]).datasets) == ["real"]
    assert select_datasets(cfg, None) is cfg
    with pytest.raises(ValueError, match=r"unknown dataset.*nope"):
        select_datasets(cfg, ["nope"])
    check_files(select_datasets(cfg, ["real"]))
    with pytest.raises(FileNotFoundError, match=r"synthetic\.dev: no file .*gone\.jsonl"):
        check_files(cfg)
