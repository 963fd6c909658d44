"""A quick real training run on MiniLM: the model dir, student.json, reloading, dev temperature and evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from student_helpers import PROMPT_VERSION, TEACHER

from relevance.schemas import get_schema
from student.evaluate import _apply_cuts, evaluate, fit_cosine_thresholds, majority_report
from student.modelio import TorchStudent, read_meta
from student.train import TrainConfig, train


def test_training_writes_a_model_dir_and_metadata(trained_student: Path) -> None:
    meta = read_meta(trained_student)
    sch = get_schema("esci")
    assert meta["labels"] == sch.names and meta["gains"] == sch.gains
    assert meta["distilled_from"]["source"] == "teacher"
    assert meta["distilled_from"]["teachers"] == [TEACHER]
    assert meta["distilled_from"]["prompt_versions"] == [PROMPT_VERSION]
    assert meta["data"]["skipped"]["failed"] == 12  # every 25th of 320 result lines
    assert meta["training"]["targets"] == "hard" and meta["training"]["steps"] == 40
    assert meta["training"]["train_pairs_per_s"] > 0
    assert meta["seed"] == 0 and meta["model_version"].startswith("student-")
    assert meta["temperature"] > 0
    dev = meta["dev_metrics"]
    assert dev["n"] == meta["data"]["dev"]["n"] > 0
    assert 0 <= dev["macro_f1"] <= 1 and 0 <= dev["accuracy"] <= 1
    assert not (trained_student / "checkpoints").exists()
    ids = (trained_student / meta["data"]["train"]["ids"]["file"]).read_text().split()
    assert len(ids) == meta["data"]["train"]["n"] and ids == sorted(ids)
    assert meta["training"]["selection"] is None


def test_the_best_dev_checkpoint_is_kept(student_bench: Path, student_results: Path, tmp_path: Path) -> None:
    config = TrainConfig(max_steps=12, evaluations=4, batch_size=8, lr=2e-4, max_length=32, progress=False)
    meta = train(student_results, tmp_path / "s", config, pairs=student_bench / "teacher_train.jsonl").meta
    selection = meta["training"]["selection"]
    curve = selection["curve"]
    assert [c["step"] for c in curve] == [3, 6, 9, 12]
    best = max(curve, key=lambda c: c["dev_macro_f1"])  # the first of equals, as the trainer keeps it
    assert selection["best_step"] == best["step"]
    # The saved model is the kept checkpoint: its dev macro-F1 is the one the selection saw.
    assert meta["dev_metrics"]["macro_f1"] == pytest.approx(best["dev_macro_f1"], abs=1e-4)


def test_model_dir_reloads_with_from_pretrained(trained_student: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(trained_student).eval()
    tokenizer = AutoTokenizer.from_pretrained(trained_student)
    assert model.config.num_labels == 4
    assert model.config.id2label[0] == "Exact" and model.config.label2id["Irrelevant"] == 3
    enc = tokenizer(["red kettle"], ["Acme Red Kettle | brand: Acme"], return_tensors="pt")
    with torch.no_grad():
        direct = model(**enc).logits.numpy()
    via_helper = TorchStudent(trained_student).logits([("red kettle", "Acme Red Kettle | brand: Acme")])
    assert np.allclose(direct, via_helper, atol=1e-5)


def test_dev_temperature_does_not_raise_nll(trained_student: Path) -> None:
    dev = read_meta(trained_student)["dev_metrics"]
    assert dev["nll_after_temperature"] <= dev["nll_before_temperature"] + 1e-9


def test_the_student_learned_something(trained_student: Path) -> None:
    # 40 steps on easy pairs are enough to rank Exact ads above Irrelevant ones far better than chance.
    dev = read_meta(trained_student)["dev_metrics"]
    assert dev["roc_auc_exact"] > 0.8 and dev["macro_f1"] > 0.6


def test_soft_targets_train_end_to_end(student_bench: Path, student_results: Path, tmp_path: Path) -> None:
    meta = train(
        student_results,
        tmp_path / "soft",
        TrainConfig(targets="soft", alpha=0.5, kd_temperature=2.0, max_steps=2, batch_size=4, max_length=32),
        pairs=student_bench / "teacher_train.jsonl",
        dev_path=student_bench / "dev.jsonl",
    ).meta
    assert meta["training"]["targets"] == "soft" and meta["training"]["steps"] == 2
    assert np.isfinite(meta["training"]["final_loss"]) and meta["training"]["final_loss"] > 0
    assert meta["data"]["dev"]["path"] == str(student_bench / "dev.jsonl")
    assert meta["data"]["dev"]["n"] == 60 and meta["dev_metrics"]["n"] == 60


def test_evaluate_on_gold_with_baselines(trained_student: Path, student_bench: Path) -> None:
    report = evaluate(trained_student, student_bench / "gold_test.jsonl", dev_path=student_bench / "dev.jsonl")
    json.dumps(report)  # JSON-ready
    student = report["student"]
    assert report["n"] == 120 and student["n"] == 120
    for key in ("accuracy", "macro_f1", "cohen_kappa", "ndcg@10", "roc_auc_exact"):
        assert 0 <= student[key] <= 1 or key == "cohen_kappa"
    assert set(student["per_class"]) == set(get_schema("esci").names)
    assert np.asarray(student["confusion"]["matrix"]).sum() == 120
    assert {"ece_before_temperature", "ece_after_temperature", "nll_before_temperature"} <= set(student)
    majority = report["baselines"]["majority"]
    assert majority["roc_auc_exact"] == pytest.approx(0.5)
    assert majority["per_class"][majority["label"]]["recall"] == pytest.approx(1.0)
    bi = report["baselines"]["bi_encoder"]
    assert 0 < bi["ndcg@10"] <= 1 and 0 <= bi["roc_auc_exact"] <= 1
    assert len(bi["label_mapping"]["cosine_cuts"]) == 3 and "macro_f1" in bi


def test_cosine_cuts_recover_separable_labels() -> None:
    rng = np.random.default_rng(0)
    centres = {"Exact": 0.9, "Substitute": 0.7, "Complement": 0.5, "Irrelevant": 0.2}
    labels = [name for name in centres for _ in range(50)]
    cos = np.array([centres[n] + rng.uniform(-0.05, 0.05) for n in labels])
    cuts = fit_cosine_thresholds(cos, labels, "esci")
    order = ["Exact", "Substitute", "Complement", "Irrelevant"]
    pred = [order[i] for i in _apply_cuts(cos, cuts)]
    assert pred == labels


def test_majority_baseline_predicts_the_training_mode() -> None:
    prior = {"Exact": 5, "Substitute": 9, "Complement": 1}
    report = majority_report(prior, ["Exact", "Substitute"], ["q", "q"], "esci")
    assert report["label"] == "Substitute" and report["accuracy"] == pytest.approx(0.5)
