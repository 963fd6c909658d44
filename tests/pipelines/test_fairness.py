"""Fair dispatch on a real SQLite store: which chunk a free worker takes, when a running chunk gives way, and
that giving way loses and duplicates nothing. The teacher is a scripted backend (the order of work is what is
under test here; the service tests run the real one)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from pipelines.annotate import LabelRequest
from pipelines.backends.base import Completion, Decoding, Generation, Messages
from pipelines.chunks import process_chunk
from pipelines.db.models import Chunk, Job, JobItem, utcnow
from pipelines.db.session import migrate, session_scope
from pipelines.fairness import pick_chunk, should_yield
from pipelines.jobs import QuotaExceededError, create_job
from relevance.pairs import validate_pair


class CountingTeacher:
    """Answers every prompt ``Label: Exact`` and counts the prompts it was sent."""

    teacher_id = "counting@1"

    def __init__(self) -> None:
        self.prompts = 0

    def generate(self, prompts: Sequence[Messages], decoding: Decoding) -> list[Generation]:
        self.prompts += len(prompts)
        return [Generation([Completion("ok\nLabel: Exact", 4)] * decoding.n, 10) for _ in prompts]

    def ping(self) -> None: ...

    def close(self) -> None: ...


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'fair.db'}"
    migrate(url)
    return url


def _job(url: str, tenant: str, n: int, chunk_size: int, tag: str) -> list[int]:
    pairs = [
        validate_pair({"custom_id": f"{tag}{i}", "query": f"{tag} query {i}", "ad": {"title": f"item {i}"}})
        for i in range(n)
    ]
    with session_scope(url) as s:
        created = create_job(
            s, tenant=tenant, pairs=pairs, request=LabelRequest(), teacher="counting@1", chunk_size=chunk_size
        )
    return created.chunk_ids


def _running(url: str, chunk_id: int, claimed_ago: float = 0.0) -> None:
    now = utcnow()
    with session_scope(url) as s:
        s.execute(
            update(Chunk)
            .where(Chunk.id == chunk_id)
            .values(
                status="running",
                lease_owner="other",
                lease_expires_at=now + timedelta(seconds=60),
                claimed_at=now - timedelta(seconds=claimed_ago),
            )
        )


def test_a_free_worker_serves_the_tenant_with_fewest_chunks_running(url: str) -> None:
    a = _job(url, "a", 30, 10, "a")
    b = _job(url, "b", 5, 10, "b")
    with session_scope(url) as s:
        # Neither has run: the oldest chunk of the tenant never claimed, ties by chunk id (a came first).
        assert pick_chunk(s, utcnow()) == a[0]
    _running(url, a[0])
    with session_scope(url) as s:
        assert pick_chunk(s, utcnow()) == b[0]  # not a[1], which FIFO would send next
    _running(url, b[0])
    with session_scope(url) as s:
        # One running each: a's last claim is as recent as b's, so by id; both have waited the same.
        assert pick_chunk(s, utcnow()) == a[1]


def test_a_running_chunk_gives_way_to_a_tenant_waiting_with_none_running(url: str) -> None:
    a = _job(url, "a", 30, 10, "a")
    _running(url, a[0])
    with session_scope(url) as s:
        assert not should_yield(s, "a", utcnow(), slice_seconds=10)  # nobody else waits
    b = _job(url, "b", 20, 10, "b")
    with session_scope(url) as s:
        assert should_yield(s, "a", utcnow(), slice_seconds=10)
    # b took a worker just now and a waits with one fewer running: b keeps it until a's slice has passed.
    _running(url, a[0], claimed_ago=2)
    with session_scope(url) as s:
        s.execute(update(Chunk).where(Chunk.id == a[0]).values(status="queued", lease_owner=None))
    _running(url, b[0], claimed_ago=1)
    with session_scope(url) as s:
        assert not should_yield(s, "b", utcnow(), slice_seconds=10)
        assert should_yield(s, "b", utcnow() + timedelta(seconds=9), slice_seconds=10)


def test_a_chunk_that_gives_way_writes_what_it_did_and_loses_nothing(url: str) -> None:
    a = _job(url, "a", 40, 40, "a")
    b = _job(url, "b", 3, 40, "b")
    teacher = CountingTeacher()

    def run(chunk_id: int, slice_seconds: float | None = 10.0):  # type: ignore[no-untyped-def]
        return process_chunk(url, chunk_id, "w", lambda: teacher, batch_size=8, slice_seconds=slice_seconds)

    first = run(a[0])
    assert (first.outcome, first.completed) == ("yielded", 8)  # one teacher batch, then b's turn
    with session_scope(url) as s:
        chunk = s.get(Chunk, a[0])
        assert (chunk.status, chunk.lease_owner, chunk.attempts, chunk.completed) == ("queued", None, 0, 8)
    assert run(b[0]).outcome == "done"
    last = run(a[0])
    assert (last.outcome, last.completed) == ("done", 32)
    with session_scope(url) as s:
        for job_id, n in s.execute(select(Chunk.job_id, Chunk.completed)):
            job = s.get(Job, job_id)
            assert job.status == "completed" and job.completed == n == job.total
        states = dict(s.execute(select(JobItem.state, func.count()).group_by(JobItem.state)).all())
    assert states == {"completed": 43} and teacher.prompts == 43  # every pair once, none asked twice


def test_a_tenants_pending_pairs_are_capped(url: str) -> None:
    _job(url, "a", 30, 10, "a")
    pairs = [validate_pair({"custom_id": f"x{i}", "query": "q", "ad": {"title": "t"}}) for i in range(11)]
    with session_scope(url) as s, pytest.raises(QuotaExceededError, match="41 of your pairs"):
        create_job(s, tenant="a", pairs=pairs, request=LabelRequest(), teacher="t@1", chunk_size=10, max_pending=40)
    with session_scope(url) as s:  # another tenant's queue is its own
        create_job(s, tenant="b", pairs=pairs, request=LabelRequest(), teacher="t@1", chunk_size=10, max_pending=40)


def test_a_tenant_whose_chunk_just_ended_waits_for_one_never_served(url: str) -> None:
    a = _job(url, "a", 30, 10, "a")
    b = _job(url, "b", 5, 10, "b")
    with session_scope(url) as s:
        s.execute(update(Chunk).where(Chunk.id == a[0]).values(status="done", claimed_at=utcnow()))
        # Nobody runs anything now; a was served a moment ago, b never.
        assert pick_chunk(s, utcnow()) == b[0]
