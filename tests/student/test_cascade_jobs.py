"""Cascade jobs, end to end: a real API process (SQLite, its own worker thread) with the committed tiny teacher
and an exported student; the student keeps the pairs it is sure of, the teacher labels the rest, and the label
cache never learns a student's label."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from pipelines.annotate import PairOutcome
from pipelines.cascade import student_outcomes
from relevance.pairs import read_pairs_jsonl
from relevance.schemas import get_schema
from services.procs import answers, free_port, running, wait_until
from student.scorer import Scorer

ROOT = Path(__file__).resolve().parents[2]


class _Scores:
    """A scorer with fixed probabilities, to test routing alone."""

    model_version = "fixed/fp32"

    def __init__(self, rows: list[list[float]]) -> None:
        self.labels = ["Exact", "Substitute", "Complement", "Irrelevant"]
        self.rows = rows

    def score(self, pairs):  # type: ignore[no-untyped-def]
        from student.scorer import Score

        return [
            Score(dict(zip(self.labels, r, strict=True)), self.labels[int(np.argmax(r))], 0.0, self.model_version)
            for r in self.rows[: len(pairs)]
        ]


def test_the_student_keeps_only_pairs_at_or_above_the_threshold_and_only_labels_of_the_jobs_schema() -> None:
    rows = [[0.9, 0.05, 0.03, 0.02], [0.5, 0.3, 0.1, 0.1], [0.6, 0.2, 0.1, 0.1], [0.05, 0.05, 0.8, 0.1]]
    pairs = [{"query": "q", "ad": {"title": "t"}}] * 4
    taken, guesses = student_outcomes(pairs, _Scores(rows), 0.6, get_schema("esci"), "v1")
    assert sorted(taken) == [0, 2, 3]
    # The pair left to the teacher keeps the student's guess, for review's teacher-student disagreement.
    assert guesses == {1: {"label": "Exact", "confidence": pytest.approx(0.5)}}
    assert all(isinstance(o, PairOutcome) and o.source == "student" for o in taken.values())
    assert (
        taken[0].label == "Exact"
        and taken[0].confidence == pytest.approx(0.9)
        and taken[0].teacher == "student:fixed/fp32"
    )
    # WANDS has no Complement: the teacher labels that pair.
    wands_taken, wands_guesses = student_outcomes(pairs, _Scores(rows), 0.6, get_schema("wands"), "v1")
    assert sorted(wands_taken) == [0, 2] and sorted(wands_guesses) == [1, 3]


def _wait(client: httpx.Client, job_id: str) -> dict:
    for _ in range(600):
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def _results(client: httpx.Client, job_id: str) -> dict[str, dict]:
    import json

    lines = [json.loads(x) for x in client.get(f"/v1/jobs/{job_id}/results").text.splitlines()]
    return {line["custom_id"]: line for line in lines}


def test_a_cascade_job_labels_student_first_and_caches_only_the_teachers_answers(
    tmp_path: Path, exported_student: Path, student_bench: Path
) -> None:
    gold = read_pairs_jsonl(student_bench / "gold_test.jsonl").pairs[:40]
    direct = Scorer(exported_student, "fp32").score(gold)
    confidence = np.array([max(s.probabilities.values()) for s in direct])
    threshold = float(np.median(confidence))  # about half the pairs each way
    to_student = {p.custom_id for p, c in zip(gold, confidence, strict=True) if c >= threshold}
    assert 0 < len(to_student) < len(gold)
    pairs = [p.model_dump(mode="json", exclude={"meta"}) for p in gold]

    port = free_port()
    env = {
        "AGPO_DATABASE_URL": f"sqlite:///{tmp_path / 'api.db'}",
        "AGPO_QUEUE": "local",
        "AGPO_AUTH": "false",
        "AGPO_TEACHER_MODEL": str(ROOT / "models/relevance-teacher"),
        "AGPO_SAMPLES": "1",
        "AGPO_MAX_TOKENS": "112",
        "AGPO_STUDENT_MODEL": str(exported_student),
        "AGPO_STUDENT_VARIANT": "fp32",
    }
    url = f"http://127.0.0.1:{port}"
    with running([["serve", "api", "--port", str(port)]], env, tmp_path), httpx.Client(base_url=url, timeout=60) as c:
        wait_until(lambda: answers(url + "/healthz"), 120, "the API")
        no_threshold = c.post("/v1/jobs", json={"pairs": pairs, "mode": "cascade"})
        assert no_threshold.status_code == 422 and no_threshold.json()["error"]["param"] == "cascade_threshold"
        alone = c.post("/v1/jobs", json={"pairs": pairs, "cascade_threshold": 0.5})
        assert alone.status_code == 422 and alone.json()["error"]["param"] == "cascade_threshold"
        other_schema = c.post("/v1/jobs", json={"pairs": pairs, "mode": "cascade", "cascade_threshold": 0.5,
                                                "label_schema": "binary"})  # fmt: skip
        assert other_schema.status_code == 422 and other_schema.json()["error"]["param"] == "label_schema"

        created = c.post("/v1/jobs", json={"pairs": pairs, "mode": "cascade", "cascade_threshold": threshold})
        assert created.status_code == 201, created.text
        assert created.json()["mode"] == "cascade" and created.json()["decoding"]["cascade_threshold"] == threshold
        job = _wait(c, created.json()["id"])
        cascade = _results(c, job["id"])
        # Then the same pairs, teacher only: the teacher's cascade answers come from the cache, the student's not.
        plain = c.post("/v1/jobs", json={"pairs": pairs})
        assert plain.status_code == 201 and plain.json()["mode"] == "teacher"
        teacher_only = _results(c, _wait(c, plain.json()["id"])["id"])

    assert job["status"] == "completed" and job["request_counts"]["total"] == len(gold)
    by_student = {cid for cid, line in cascade.items() if line["source"] == "student"}
    assert by_student == to_student
    for score, pair in zip(direct, gold, strict=True):
        line = cascade[pair.custom_id]
        if pair.custom_id in to_student:
            assert line["label"] == score.label and line["teacher"].startswith("student:") and line["samples"] == 0
            assert line["confidence"] == pytest.approx(max(score.probabilities.values()), abs=1e-5)
        else:
            assert line["source"] == "teacher" and line["teacher"] == job["teacher"]
            assert line["student"] == {"label": score.label, "confidence": pytest.approx(line["student"]["confidence"])}
            assert line["student"]["confidence"] == pytest.approx(max(score.probabilities.values()), abs=1e-5)
    assert len(gold) - len(to_student) <= job["teacher_prompts"] < len(gold)
    assert all(line["source"] == "teacher" and "student" not in line for line in teacher_only.values())
    for cid, line in teacher_only.items():
        answered = cascade[cid]["source"] == "teacher" and cascade[cid]["status"] == "completed"
        assert line["cached"] is answered, (cid, line, cascade[cid])


def test_a_cascade_job_through_celery_on_postgresql_keeps_the_same_routing(
    tmp_path: Path, exported_student: Path, student_bench: Path, pg_url: str, redis_server
) -> None:  # type: ignore[no-untyped-def]
    """The production path: the API hands chunks to a Celery worker process over Redis, results in PostgreSQL. The
    worker loads the student itself; the routing, the student's guesses and the review queue's source filter hold."""
    gold = read_pairs_jsonl(student_bench / "gold_test.jsonl").pairs[:30]
    direct = Scorer(exported_student, "fp32").score(gold)
    confidence = np.array([max(s.probabilities.values()) for s in direct])
    threshold = float(np.median(confidence))
    to_student = {p.custom_id for p, c in zip(gold, confidence, strict=True) if c >= threshold}
    pairs = [p.model_dump(mode="json", exclude={"meta"}) for p in gold]
    port = free_port()
    env = {
        "AGPO_DATABASE_URL": pg_url,
        "AGPO_BROKER_URL": redis_server.url,
        "AGPO_QUEUE": "celery",
        "AGPO_AUTH": "false",
        "AGPO_TEACHER_MODEL": str(ROOT / "models/relevance-teacher"),
        "AGPO_SAMPLES": "1",
        "AGPO_MAX_TOKENS": "112",
        "AGPO_CHUNK_SIZE": "10",
        "AGPO_STUDENT_MODEL": str(exported_student),
        "AGPO_STUDENT_VARIANT": "fp32",
    }
    url = f"http://127.0.0.1:{port}"
    commands = [["serve", "api", "--port", str(port)], ["worker"]]
    with running(commands, env, tmp_path, names=["api", "worker"]), httpx.Client(base_url=url, timeout=60) as c:
        wait_until(lambda: answers(url + "/healthz"), 120, "the API")
        created = c.post("/v1/jobs", json={"pairs": pairs, "mode": "cascade", "cascade_threshold": threshold})
        assert created.status_code == 201, created.text
        job = _wait(c, created.json()["id"])
        lines = _results(c, job["id"])
        from_student = c.get(f"/v1/jobs/{job['id']}/queue", params={"source": "student", "limit": 50}).json()
        disagreements = c.get(f"/v1/jobs/{job['id']}/queue", params={"limit": 1}).json()["items"]
    assert job["status"] == "completed" and job["request_counts"]["completed"] + job["request_counts"]["failed"] == 30
    assert {cid for cid, line in lines.items() if line["source"] == "student"} == to_student
    teacher_lines = [line for line in lines.values() if line["source"] == "teacher" and line["label"]]
    assert teacher_lines and all(line["student"]["label"] in direct[0].probabilities for line in teacher_lines)
    assert {i["custom_id"] for i in from_student["items"]} == to_student
    # The queue's first pair is one the teacher failed, or one where the student disagreed, if any exists.
    if any(line["label"] is None or line["student"]["label"] != line["label"] for line in teacher_lines):
        top = lines[disagreements[0]["custom_id"]]
        assert top["label"] is None or top["student"]["label"] != top["label"]
