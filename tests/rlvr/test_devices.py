"""Where sampling and the TRL step benchmark run: the CPU here, a CUDA GPU where torch sees one.

These machines have no GPU. Tests that need "no GPU" to hold patch ``torch.cuda.is_available`` to say so, so
that they mean the same on a machine that has one; the GPU path itself runs in deploy/gpu_check.sh, whose
output from an H200 is in docs/results/gpu_check/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from experiments.bench.advantages import bench_trainer_step
from rlvr.sampling import SamplingParams, sample_transformers, torch_device

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "models" / "countdown-base"
runner = CliRunner()


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.usefixtures("no_gpu")
def test_sampling_picks_the_cpu_where_torch_sees_no_gpu() -> None:
    assert torch_device() == torch.device("cpu")
    assert torch_device("cpu") == torch.device("cpu")


@pytest.mark.usefixtures("no_gpu")
def test_asking_for_cuda_without_a_gpu_says_what_to_do_instead() -> None:
    with pytest.raises(RuntimeError, match=r"torch sees no CUDA GPU.*sample on 'cpu'"):
        torch_device("cuda")


def test_sampling_on_a_named_device_draws_what_the_default_draws_there() -> None:
    prompts = ["3 5 7 -> 15", "2 4 6 -> 12"]
    params = SamplingParams(n=4, max_new_tokens=24, seed=3)
    named = sample_transformers(BASE, prompts, params, device=torch_device().type)
    assert named == sample_transformers(BASE, prompts, params)
    assert [len(texts) for texts in named] == [4, 4]
    assert named != sample_transformers(BASE, prompts, SamplingParams(n=4, max_new_tokens=24, seed=4))


def test_trl_step_bench_times_both_trainers_on_the_cpu(tiny_lm_dir: Path) -> None:
    r = bench_trainer_step(str(tiny_lm_dir), steps=1, repeats=1, prompts=2, group_size=2, max_len=8, device="cpu")
    assert r.steps == 1 and r.grpo_s > 0 and r.agpo_s > 0
    assert r.ratio == pytest.approx(r.agpo_s / r.grpo_s)
    with pytest.raises(ValueError, match="'cpu' or 'cuda'"):
        bench_trainer_step(str(tiny_lm_dir), device="tpu")


def test_trl_step_bench_command_names_a_bad_device() -> None:
    result = runner.invoke(app, ["bench", "trl-step", "--model", str(BASE), "--device", "tpu"])
    assert result.exit_code == 2
    assert "--device 'tpu': use cpu or cuda" in result.output


@pytest.mark.usefixtures("no_gpu")
def test_trl_step_bench_command_refuses_cuda_without_a_gpu() -> None:
    result = runner.invoke(app, ["bench", "trl-step", "--model", str(BASE), "--device", "cuda"])
    assert result.exit_code == 2
    assert "torch sees no CUDA GPU" in " ".join(result.output.split())


def test_gpu_check_script_parses_and_its_summary_reads_the_committed_run() -> None:
    subprocess.run(["bash", "-n", str(ROOT / "deploy" / "gpu_check.sh")], check=True)
    out = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "gpu_check_summary.py"), str(ROOT / "docs" / "results" / "gpu_check")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "training: 60 steps" in out
    assert "base, GPU minus CPU: pass@1" in out and "base, GPU minus CPU: pass@256" in out
    assert "correlation" in out


def test_teacher_gpu_check_runs_as_a_cpu_dry_run(tmp_path: Path) -> None:
    out = tmp_path / "teacher.json"
    options = ["--device", "cpu", "--pairs", "4", "--max-tokens", "24", "--out", str(out)]
    subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "gpu_check_teacher.py"), *options],
        check=True,
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    result = json.loads(out.read_text())
    assert result["pairs"] == 4 and result["device"] == "cpu"
    assert result["greedy_same_text"] == 1.0 and result["seeded_sampling_repeats_on_device"] is True
