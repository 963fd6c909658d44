"""The journey's real data: labels held back from the service, unseen rows only, committed labels of the same
teacher and no other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.journey_data import (
    COMMITTED_LABELS,
    committed_test_labels,
    read_jsonl,
    real_data,
    training_rows,
    write_jsonl,
)

ROOT = Path(__file__).resolve().parents[2]
TEACHER = ROOT / "models/relevance-teacher-smollm2-more"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("journey-data")
    return real_data(out, TEACHER, pool=50, seed=3, test=40, dev=30)


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the committed labels' path is relative to the repository


def _committed_teacher() -> str:
    return read_jsonl(ROOT / COMMITTED_LABELS / "homedepot_pool.jsonl")[0]["teacher"]


def _results(data, teacher: str, labels: str = "Exact") -> Path:
    lines = [
        {"custom_id": p["custom_id"], "status": "completed", "label": labels, "teacher": teacher}
        for p in read_jsonl(data.pool)
    ]
    path = data.pool.with_name(f"results-{abs(hash(teacher))}.jsonl")
    write_jsonl(lines, path)
    return path


def test_the_live_pool_holds_back_labels_and_leaves_out_the_teachers_training_rows(data) -> None:
    pool, answers = read_jsonl(data.pool), read_jsonl(data.answers)
    assert len(pool) == data.pool_size == 50 and [a["custom_id"] for a in answers] == [p["custom_id"] for p in pool]
    assert all("meta" not in p for p in pool), "the service must not see the human labels"
    assert {a["label"] for a in answers} <= {"Exact", "Substitute", "Irrelevant"}
    trained_on = set((TEACHER / "training_ids.txt").read_text().split())
    assert not trained_on & {p["custom_id"] for p in pool}
    assert (len(read_jsonl(data.test)), len(read_jsonl(data.dev))) == (40, 30)
    # Test and dev come from their own query-disjoint splits, never from train.
    train_ids = {p["custom_id"] for p in read_jsonl(data.pairs)}
    assert not train_ids & {p["custom_id"] for p in read_jsonl(data.test) + read_jsonl(data.dev)}


def test_the_same_teachers_committed_labels_join_the_live_ones_without_the_live_pairs(data) -> None:
    teacher = _committed_teacher()
    rows, committed = training_rows(data, _results(data, teacher), teacher)
    live = {p["custom_id"] for p in read_jsonl(data.pool)}
    assert committed == 13_656 - 50 and len(rows) == 13_656
    assert len({r["custom_id"] for r in rows}) == len(rows), "a pair counted twice"
    assert all(r["query"] and r["ad"]["title"] for r in rows)
    assert sum(r["custom_id"] in live for r in rows) == 50
    labels = committed_test_labels(data, teacher)
    assert labels is not None and len(labels) == 3301


def test_another_teachers_labels_are_never_mixed_in(data) -> None:
    rows, committed = training_rows(data, _results(data, "someone-else@0123"), "someone-else@0123")
    assert committed == 0 and len(rows) == 50
    assert committed_test_labels(data, "someone-else@0123") is None


def test_failed_live_lines_teach_nothing(data, tmp_path: Path) -> None:
    results = _results(data, "x@1")
    lines = read_jsonl(results)
    lines[0] = {**lines[0], "status": "failed", "label": None}
    results.write_text("".join(json.dumps(line) + "\n" for line in lines))
    rows, _ = training_rows(data, results, "x@1")
    assert len(rows) == 49
