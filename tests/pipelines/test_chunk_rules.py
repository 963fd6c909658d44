"""Chunk rules that need no teacher: a chunk that keeps crashing is reported failed; NUL never reaches the DB."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from pipelines.annotate import LabelRequest, _sample_record
from pipelines.chunks import process_chunk
from pipelines.db.models import Chunk, Job, JobItem, utcnow
from pipelines.db.session import migrate, session_scope
from pipelines.jobs import create_job
from relevance.pairs import validate_pair


def test_a_chunk_that_crashed_every_attempt_reports_its_pairs_failed(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    migrate(url)
    pairs = [
        validate_pair({"custom_id": f"p{i}", "query": "usb cable", "ad": {"title": "USB-C cable"}}) for i in range(5)
    ]
    with session_scope(url) as s:
        created = create_job(s, tenant="t", pairs=pairs, request=LabelRequest(), teacher="t@x", chunk_size=10)
        job_id, chunk_id = created.job.id, created.chunk_ids[0]
        # Three workers claimed it and died before writing (their leases have expired).
        s.execute(
            update(Chunk)
            .where(Chunk.id == chunk_id)
            .values(attempts=3, status="running", lease_owner="dead", lease_expires_at=utcnow() - timedelta(seconds=1))
        )

    def no_teacher():  # type: ignore[no-untyped-def]
        raise AssertionError("a chunk past its attempts must not reach the teacher")

    report = process_chunk(url, chunk_id, "w", no_teacher, max_attempts=3)
    assert report.outcome == "gave_up" and report.failed == 5 and report.job_status == "completed"
    with session_scope(url) as s:
        job = s.get(Job, job_id)
        assert (job.status, job.failed, job.completed) == ("completed", 5, 0)
        items = list(s.scalars(select(JobItem).where(JobItem.job_id == job_id)))
        assert {i.state for i in items} == {"failed"} and "gave up after 3 attempts" in items[0].result["error"]


def test_teacher_text_loses_nul_bytes():
    assert _sample_record("a\x00b\nLabel: Exact", "Exact", 3, "stop")["text"] == "ab\nLabel: Exact"
