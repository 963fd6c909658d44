"""Shared student fixtures: a small synthetic benchmark, teacher results made from it, one trained student
(real MiniLM, a few steps) and its ONNX export; session-scoped, since training is the slow part."""

from __future__ import annotations

from pathlib import Path

import pytest
from student_helpers import teacher_results


@pytest.fixture(scope="session")
def student_results(student_bench: Path) -> Path:
    """Teacher results without the pairs (joined from teacher_train.jsonl on custom_id)."""
    return teacher_results(student_bench / "teacher_train.jsonl", student_bench / "results.jsonl", inline_pairs=False)


@pytest.fixture(scope="session")
def trained_student(tmp_path_factory: pytest.TempPathFactory, student_bench: Path, student_results: Path) -> Path:
    from student.train import TrainConfig, train

    out = tmp_path_factory.mktemp("student") / "model"
    # Hard targets, short sequences (query and title fit in 32 tokens) and 40 steps: enough for a student with
    # wide logit margins, so the export's int8 parity check measures quantisation, not ties of an untrained
    # model. The soft-target path has its own, shorter run.
    config = TrainConfig(
        targets="hard",
        confidence_weighting=True,
        max_steps=40,
        # The recipe's checkpoint selection and class balance are tested on their own; this student keeps the
        # last step's wide margins for the export's int8 parity check.
        select_best=False,
        class_balance=False,
        batch_size=16,
        lr=2e-4,
        max_length=32,
        logging_steps=20,
        progress=False,
        seed=0,
    )
    train(student_results, out, config, pairs=student_bench / "teacher_train.jsonl")
    return out


@pytest.fixture(scope="session")
def exported_student(tmp_path_factory: pytest.TempPathFactory, trained_student: Path, student_bench: Path) -> Path:
    from student.export import export

    out = tmp_path_factory.mktemp("student-export") / "onnx"
    export(trained_student, out, student_bench / "gold_test.jsonl")
    return out
