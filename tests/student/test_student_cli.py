"""The ``student`` command line: clear errors with exit code 2, scoring a file, a refused export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.student import app
from student.scorer import pick_variant

runner = CliRunner()


def test_bad_results_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "results.jsonl"
    good = {"custom_id": "a", "status": "completed", "label": "Exact", "query": "q", "ad": {"title": "t"}}
    bad.write_text(json.dumps(good) + "\n" + json.dumps({**good, "custom_id": "b", "label": "Great"}) + "\n")
    result = runner.invoke(app, ["train", str(bad), "--out", str(tmp_path / "model")])
    assert result.exit_code == 2
    assert f"{bad}, line 2: label: 'Great' is not a label" in " ".join(result.output.split())
    assert not (tmp_path / "model").exists()  # refused before any model was created


def test_failed_only_results_and_bad_options(tmp_path: Path) -> None:
    failed = tmp_path / "failed.jsonl"
    failed.write_text(json.dumps({"custom_id": "a", "status": "failed", "label": None}) + "\n")
    result = runner.invoke(app, ["train", str(failed), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "no usable labelled pairs" in result.output
    result = runner.invoke(app, ["train", str(failed), "--out", str(tmp_path / "m"), "--alpha", "2"])
    assert result.exit_code == 2


def test_keep_labels_drops_reasoning_and_pairs_not_asked_for(tmp_path: Path) -> None:
    results, pairs, out = tmp_path / "results.jsonl", tmp_path / "pairs.jsonl", tmp_path / "labels.jsonl"
    line = {
        "custom_id": "a",
        "status": "completed",
        "label": "Exact",
        "confidence": 0.6,
        "distribution": {"Exact": 0.6123456789, "Irrelevant": 0.3876543211},
        "reasoning": "In the ad: drill.\nLabel: Exact",
        "samples": 1,
        "teacher": "t@1",
        "prompt_version": "p",
        "cached": False,
        "error": None,
    }
    failed = {"custom_id": "b", "status": "failed", "label": None, "error": "no label"}
    results.write_text("".join(json.dumps(x) + "\n" for x in (line, failed, {**line, "custom_id": "c"})))
    pairs.write_text("".join(json.dumps({"custom_id": c, "query": "q", "ad": {"title": "t"}}) + "\n" for c in "ab"))
    result = runner.invoke(app, ["keep-labels", str(results), "--out", str(out), "--pairs", str(pairs)])
    assert result.exit_code == 0, result.output
    kept = [json.loads(x) for x in out.read_text().splitlines()]
    assert [k["custom_id"] for k in kept] == ["a", "b"]  # c is not in the pairs file
    assert set(kept[0]) == {"custom_id", "status", "label", "confidence", "distribution", "teacher", "prompt_version"}
    assert kept[0]["distribution"] == {"Exact": 0.612346, "Irrelevant": 0.387654}
    assert kept[1] == {"custom_id": "b", "status": "failed", "error": "no label"}

    results.write_text(json.dumps(line) + "\n{not json\n")
    result = runner.invoke(app, ["keep-labels", str(results), "--out", str(out)])
    assert result.exit_code == 2 and f"{results}, line 2: not valid JSON" in " ".join(result.output.split())


def test_score_writes_one_line_per_pair(exported_student: Path, student_bench: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.jsonl"
    result = runner.invoke(
        app, ["score", str(student_bench / "dev.jsonl"), "--model", str(exported_student), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    ids = [json.loads(line)["custom_id"] for line in (student_bench / "dev.jsonl").read_text().splitlines()]
    assert [r["custom_id"] for r in lines] == ids
    first = lines[0]
    assert set(first) == {"custom_id", "label", "expected_gain", "probabilities", "model_version"}
    assert abs(sum(first["probabilities"].values()) - 1) < 1e-6


def test_score_rejects_a_bad_pairs_file(exported_student: Path, tmp_path: Path) -> None:
    bad = tmp_path / "pairs.jsonl"
    bad.write_text(json.dumps({"custom_id": "a", "query": "q"}) + "\n")
    result = runner.invoke(app, ["score", str(bad), "--model", str(exported_student), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert "line 1: ad: field required" in result.output


def test_export_refusal_exits_1_with_numbers(trained_student: Path, student_bench: Path, tmp_path: Path) -> None:
    out = tmp_path / "onnx"
    args = ["export", str(trained_student), "--out", str(out), "--parity", str(student_bench / "gold_test.jsonl")]
    impossible = ["--fp32-atol", "1e-12", "--int8-min-agreement", "1.01", "--max-parity-pairs", "24", "--no-optimize"]
    result = runner.invoke(app, [*args, *impossible])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "export refused, parity check failed on 24 pairs" in text
    assert "fp32 max |p - p_torch| =" in text and "> 1.00e-12" in text
    assert "int8 argmax agreement =" in text and "(need >= 1.01)" in text
    assert '"fp32_max_abs_prob_diff"' in text  # the measured numbers, as JSON
    assert list(tmp_path.iterdir()) == []  # neither the export nor its scratch dir is left


def test_a_failed_int8_is_left_out_when_asked(trained_student: Path, student_bench: Path, tmp_path: Path) -> None:
    out = tmp_path / "onnx"
    args = ["export", str(trained_student), "--out", str(out), "--parity", str(student_bench / "gold_test.jsonl")]
    strict = ["--int8-min-agreement", "1.01", "--max-parity-pairs", "24", "--drop-failed-int8"]
    result = runner.invoke(app, [*args, *strict])
    assert result.exit_code == 0, result.output
    assert (out / "model.onnx").is_file() and not (out / "model.int8.onnx").exists()
    export = json.loads((out / "student.json").read_text())["export"]
    assert export["parity"]["int8_ok"] is False and export["parity"]["int8_dropped"] is True
    assert "int8" not in export["servable"] and export["quantization"] is None


@pytest.mark.slow
def test_bench_reports_every_engine(exported_student: Path, student_bench: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", str(exported_student), "--pairs", str(student_bench / "gold_test.jsonl"), "--out", str(out)]
    result = runner.invoke(app, [*args, "--n", "48", "--batch-size", "16", "--repeats", "1", "--train-steps", "1"])
    assert result.exit_code == 0, result.output
    bench = json.loads(out.read_text())
    engines = {"onnx_int8", "onnx_fp32", "openvino_bf16", "torch_fp32_eager", "torch_bf16_autocast"}
    engines.add("cross_encoder_predict")
    assert set(bench["scoring_pairs_per_cpu_s"]) == engines and min(bench["scoring_pairs_per_cpu_s"].values()) > 0
    assert bench["ratio_vs_cross_encoder_predict"]["cross_encoder_predict"] == 1.0
    assert bench["ratio_vs_onnx_fp32"]["onnx_fp32"] == 1.0
    assert bench["argmax_agreement_with_torch_fp32"]["torch_fp32_eager"] == 1.0
    assert bench["argmax_agreement_with_torch_fp32"]["openvino_bf16"] >= 0.9
    assert bench["bf16_limit"]["pairs_per_s"] > max(bench["scoring_pairs_per_wall_s"].values())
    assert bench["training_pairs_per_s"]["measured"] > 0
    # int8 beats fp32 eager on the same pairs, even on a busy machine (CPU-time rates).
    assert bench["scoring_pairs_per_cpu_s"]["onnx_int8"] > bench["scoring_pairs_per_cpu_s"]["torch_fp32_eager"]
    served = bench["served"]
    assert served["variant"] == pick_variant(exported_student) and served["engine"] in engines
    ratio = bench["ratio_vs_onnx_fp32"][served["engine"]]
    assert served["ratio_vs_onnx_fp32"] == ratio and served["target_met"] == (ratio >= 2.0)
    assert f"auto serves {served['variant']} here" in result.output


def test_cli_and_scorer_import_without_torch() -> None:
    # The scoring API serves from onnxruntime alone; the CLI loads heavy libraries inside its commands.
    code = (
        "import sys, student, cli.student, student.data, student.scorer, student.evaluate, student.export, "
        "student.train, experiments.bench.student; "
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'sentence_transformers'})))"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cascade_chooses_thresholds_on_dev_and_reports_them_on_test(
    tmp_path: Path, trained_student: Path, student_bench: Path
) -> None:
    from student_helpers import teacher_results

    dev, test = student_bench / "dev.jsonl", student_bench / "gold_test.jsonl"
    # A teacher that is right 6 times in 8 on dev and test alike (its labels here are the gold ones).
    teacher_dev = teacher_results(dev, tmp_path / "teacher_dev.jsonl", inline_pairs=False, failed_every=0)
    teacher_test = teacher_results(test, tmp_path / "teacher_test.jsonl", inline_pairs=False, failed_every=0)
    report = tmp_path / "cascade.md"
    args = ["cascade", "--student", str(trained_student), "--dev", str(dev), "--teacher-dev", str(teacher_dev)]
    args += ["--test", str(test), "--teacher-test", str(teacher_test), "--targets", "1,0.9", "--report", str(report)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(report.with_suffix(".json").read_text())
    full, ninety = summary["chosen_on_dev"]
    # The teacher's labels are the gold ones: the cascade can only lose to the teacher alone, and saves more
    # teacher calls the less agreement it must keep.
    assert summary["teacher_alone"]["macro_f1"] == 1.0
    assert full["dev_student_share"] <= ninety["dev_student_share"]
    assert all(c["macro_f1"] <= 1.0 for c in summary["test_curve"])
    assert summary["test_curve"][0]["student_share"] == 0.0 and summary["test_curve"][-1]["student_share"] == 1.0
    assert report.with_suffix(".png").stat().st_size > 1000 and "| 90% |" in report.read_text()


def test_cascade_names_a_pair_without_a_teacher_label(tmp_path: Path, trained_student: Path, student_bench: Path):
    dev = student_bench / "dev.jsonl"
    first = json.loads(dev.read_text().splitlines()[0])
    partial = tmp_path / "teacher.jsonl"
    partial.write_text(json.dumps({"custom_id": first["custom_id"], "status": "completed", "label": "Exact"}) + "\n")
    args = ["cascade", "--student", str(trained_student), "--dev", str(dev), "--teacher-dev", str(partial)]
    args += ["--test", str(dev), "--teacher-test", str(partial), "--report", str(tmp_path / "c.md")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "no completed teacher label for" in " ".join(result.output.split())
    bad = runner.invoke(app, [*args, "--targets", "0.9,1.5"])
    assert bad.exit_code == 2 and "must be in [0, 1]" in bad.output
