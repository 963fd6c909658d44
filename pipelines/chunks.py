"""Running one chunk of a job: claim its lease, serve what the cache knows, ask the teacher, write once.

The write is one transaction: label-cache inserts (insert-or-ignore), item updates guarded by ``state =
'pending'``, and the chunk's ``done`` guarded by this worker's lease. A worker killed before the commit wrote
nothing; its lease expires and the chunk runs again elsewhere. A worker that lost its lease (it stalled past
expiry and another took over) fails the guard and rolls back. Either way every pair is written exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pipelines.annotate import BatchStats, LabelRequest, PairOutcome, cache_key, label_pairs, result_line
from pipelines.backends.base import TeacherBackend, TeacherError
from pipelines.cascade import PairScorer, student_outcomes
from pipelines.db.models import Chunk, Job, JobItem, LabelCacheEntry, utcnow
from pipelines.db.session import session_scope
from pipelines.fairness import should_yield
from pipelines.jobs import cancel_chunks, finalize_job
from pipelines.logs import bind, log_scope
from pipelines.requests import job_request
from relevance.votes import uncertainty

log = logging.getLogger(__name__)


class LeaseLostError(RuntimeError):
    """Another worker holds the chunk now; this one's work is discarded."""


class JobCancelledError(RuntimeError):
    """The job was cancelled while the chunk ran."""


@dataclass
class ChunkReport:
    chunk_id: int
    outcome: str  # done | yielded | cancelled | skipped | lease_lost | gave_up
    completed: int = 0
    failed: int = 0
    cached: int = 0
    teacher_prompts: int = 0
    job_status: str | None = None


def _lock_job(session: Session, job_id: str) -> None:
    """Lock the job's row before anything of its chunks or items, as cancelling does (``request_cancel`` updates
    the job first): every writer of a job's rows queues on this one lock instead of taking locks in two orders,
    which deadlocked a cancel against a worker closing its chunk."""
    session.execute(select(Job.id).where(Job.id == job_id).with_for_update())


def _claim(session: Session, chunk_id: int, worker: str, lease_seconds: float) -> bool:
    now = utcnow()
    claimed = session.execute(
        update(Chunk)
        .where(
            Chunk.id == chunk_id,
            Chunk.status.in_(("queued", "running")),
            or_(Chunk.lease_owner.is_(None), Chunk.lease_expires_at < now),
        )
        .values(
            status="running",
            lease_owner=worker,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            claimed_at=now,
            attempts=Chunk.attempts + 1,
        )
    )
    return claimed.rowcount == 1


def _renew(db_url: str, chunk_id: int, job_id: str, worker: str, lease_seconds: float) -> None:
    with session_scope(db_url) as s:
        renewed = s.execute(
            update(Chunk)
            .where(Chunk.id == chunk_id, Chunk.lease_owner == worker, Chunk.status == "running")
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        ).rowcount
        if not renewed:
            raise LeaseLostError(f"chunk {chunk_id}: lease lost")
        if s.scalar(select(Job.cancel_requested).where(Job.id == job_id)):
            raise JobCancelledError(job_id)


def _insert_ignore(session: Session):  # type: ignore[no-untyped-def]
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(LabelCacheEntry).on_conflict_do_nothing(index_elements=["key"])


@log_scope
def process_chunk(
    db_url: str,
    chunk_id: int,
    worker: str,
    get_backend: Callable[[], TeacherBackend],
    *,
    lease_seconds: float = 600.0,
    batch_size: int = 32,
    unparseable_retries: int = 1,
    max_attempts: int = 3,
    slice_seconds: float | None = None,
    get_student: Callable[[], PairScorer] | None = None,
) -> ChunkReport:
    """Label the pending pairs of chunk ``chunk_id`` (see the module docstring); safe to call any number of times.

    With ``slice_seconds``, the chunk gives way to other tenants between teacher batches
    (:func:`pipelines.fairness.should_yield`): the pairs labelled so far are written, the rest wait in the queue,
    and the outcome is ``yielded``. Its log lines name the chunk, its job and tenant (:mod:`pipelines.logs`).
    """
    bind(chunk_id=chunk_id)
    with session_scope(db_url) as s:
        owner = s.scalar(select(Chunk.job_id).where(Chunk.id == chunk_id))
        if owner is None:
            return ChunkReport(chunk_id, "skipped")
        _lock_job(s, owner)
        if not _claim(s, chunk_id, worker, lease_seconds):
            return ChunkReport(chunk_id, "skipped")
        chunk = s.get(Chunk, chunk_id)
        assert chunk is not None
        job = s.get(Job, chunk.job_id)
        assert job is not None
        job_id, chunk_no, tenant = job.id, chunk.chunk_no, job.tenant
        bind(job_id=job_id, tenant=tenant)
        if job.cancel_requested:
            cancel_chunks(s, job_id, [chunk_no])
            s.flush()
            return ChunkReport(chunk_id, "cancelled", job_status=finalize_job(s, job_id))
        if chunk.attempts > max_attempts:
            # It crashed its workers every time: report its pairs failed rather than retry forever.
            report = _give_up(s, chunk, job_id, worker)
            s.flush()
            report.job_status = finalize_job(s, job_id)
            return report
        if job.status == "queued":
            s.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "queued")
                .values(status="in_progress", started_at=utcnow())
            )
        request = job_request(job, unparseable_retries)
        items = [
            (i.id, i.custom_id, i.pair)
            for i in s.scalars(
                select(JobItem).where(
                    JobItem.job_id == job_id, JobItem.chunk_no == chunk_no, JobItem.state == "pending"
                )
            )
        ]

    stats = BatchStats()
    preempt = None if slice_seconds is None else lambda: _should_yield(db_url, tenant, slice_seconds)
    try:
        keys, outcomes, fresh_by_key = _answers(
            db_url,
            items,
            get_backend,
            request,
            batch_size=batch_size,
            stats=stats,
            renew=lambda: _renew(db_url, chunk_id, job_id, worker, lease_seconds),
            preempt=preempt,
            get_student=get_student,
        )
    except JobCancelledError:
        with session_scope(db_url) as s:
            _lock_job(s, job_id)
            if _release(s, chunk_id, worker):
                cancel_chunks(s, job_id, [chunk_no])
                s.flush()
                return ChunkReport(
                    chunk_id, "cancelled", teacher_prompts=stats.teacher_prompts, job_status=finalize_job(s, job_id)
                )
        return ChunkReport(chunk_id, "lease_lost")
    except LeaseLostError:
        log.warning("chunk %s: lease lost while labelling; another worker finishes it", chunk_id)
        return ChunkReport(chunk_id, "lease_lost")
    except Exception:
        # The teacher or this process failed, not a pair (a refused pair fails alone, inside the labelling):
        # the next sweep sends the chunk again instead of waiting out its lease, and max_attempts bounds the tries.
        _expire_lease(db_url, chunk_id, worker)
        raise
    report = ChunkReport(chunk_id, "done", teacher_prompts=stats.teacher_prompts)
    updates = []
    for key, (item_id, custom_id, _) in zip(keys, items, strict=True):
        outcome = outcomes.get(key) or fresh_by_key.get(key)
        if outcome is None:  # left for later: the chunk gave way to another tenant
            report.outcome = "yielded"
            continue
        line = result_line(custom_id, outcome, state="completed")
        ok = outcome.label is not None
        report.completed += ok
        report.failed += not ok
        report.cached += ok and outcome.cached
        updates.append(
            {
                "item_id": item_id,
                "new_state": "completed" if ok else "failed",
                "new_result": line,
                "new_label": outcome.label,
                "new_confidence": outcome.confidence if ok else None,
                "new_uncertainty": uncertainty(
                    outcome.label, outcome.distribution, (outcome.student or {}).get("label")
                ),
            }
        )
    cache_rows = [
        {"key": key, **o.to_cache(), "created_at": utcnow()} for key, o in fresh_by_key.items() if o.label is not None
    ]
    try:
        with session_scope(db_url) as s:
            _lock_job(s, job_id)
            if cache_rows:
                s.execute(_insert_ignore(s), cache_rows)
            if updates:
                # Core executemany (not the ORM's bulk update by primary key): the state guard stays in the WHERE.
                items = JobItem.__table__
                s.execute(
                    update(items)
                    .where(items.c.id == bindparam("item_id"), items.c.state == "pending")
                    .values(
                        state=bindparam("new_state"),
                        result=bindparam("new_result"),
                        label=bindparam("new_label"),
                        confidence=bindparam("new_confidence"),
                        uncertainty=bindparam("new_uncertainty"),
                    ),
                    updates,
                )
            counts = {
                "completed": Chunk.completed + report.completed,
                "failed": Chunk.failed + report.failed,
                "cached": Chunk.cached + report.cached,
            }
            # A chunk that gave way goes back to the queue; the claim it made is not counted as a failed attempt.
            close = (
                {"status": "done", "finished_at": utcnow()}
                if report.outcome == "done"
                else {"status": "queued", "lease_owner": None, "lease_expires_at": None, "attempts": Chunk.attempts - 1}
            )
            closed = s.execute(
                update(Chunk)
                .where(Chunk.id == chunk_id, Chunk.lease_owner == worker, Chunk.status == "running")
                .values(**close, **counts)
            ).rowcount
            if closed != 1:
                raise LeaseLostError(f"chunk {chunk_id}: lease lost before the write")
            s.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(
                    completed=Job.completed + report.completed,
                    failed=Job.failed + report.failed,
                    cached=Job.cached + report.cached,
                    teacher_prompts=Job.teacher_prompts + stats.teacher_prompts,
                    teacher_seconds=Job.teacher_seconds + stats.teacher_seconds,
                )
            )
    except LeaseLostError:
        log.warning("chunk %s: lease lost; nothing written", chunk_id)
        report.outcome = "lease_lost"
        return report
    with session_scope(db_url) as s:
        report.job_status = finalize_job(s, job_id)
    return report


def _answers(
    db_url: str,
    items: list[tuple[int, str, dict[str, Any]]],
    get_backend: Callable[[], TeacherBackend],
    request: LabelRequest,
    *,
    batch_size: int,
    stats: BatchStats,
    renew: Callable[[], None],
    preempt: Callable[[], bool] | None = None,
    get_student: Callable[[], PairScorer] | None = None,
) -> tuple[list[str], dict[str, PairOutcome], dict[str, PairOutcome]]:
    """Each item's cache key, the outcomes known without the teacher (the label cache's, and in a cascade job the
    student's), and the teacher's answers for the rest (by key); only the last go into the cache.

    One teacher request per distinct content, however often it repeats in the chunk. The teacher is asked a
    batch at a time; when ``preempt()`` says so between batches, the answers so far are returned.
    """
    backend = get_backend()
    teacher = backend.teacher_id
    keys = [cache_key(pair, request, teacher) for _, _, pair in items]
    cached: dict[str, PairOutcome] = {}
    with session_scope(db_url) as s:
        for row in s.scalars(select(LabelCacheEntry).where(LabelCacheEntry.key.in_(set(keys)))):
            cached[row.key] = PairOutcome(
                row.label,
                row.confidence,
                row.distribution,
                row.reasoning,
                row.samples,
                row.teacher,
                row.prompt_version,
                cached=True,
            )
    todo: dict[str, dict[str, Any]] = {}
    for key, (_, _, pair) in zip(keys, items, strict=True):
        if key not in cached:
            todo.setdefault(key, pair)
    if request.cascade_threshold is not None and todo:
        if get_student is None:
            raise TeacherError("a cascade job needs a student: set AGPO_STUDENT_MODEL on the workers")
        waiting_keys = list(todo)
        taken, guesses = student_outcomes(
            [todo[k] for k in waiting_keys],
            get_student(),
            request.cascade_threshold,
            request.schema,
            request.prompt_version,
        )
        for i, outcome in taken.items():
            cached[waiting_keys[i]] = outcome
            del todo[waiting_keys[i]]
        student_guess = {waiting_keys[i]: guess for i, guess in guesses.items()}
    else:
        student_guess = {}
    fresh: dict[str, PairOutcome] = {}
    waiting = list(todo.items())
    for start in range(0, len(waiting), batch_size):
        part = waiting[start : start + batch_size]
        pairs = [pair for _, pair in part]
        answers = label_pairs(pairs, backend, request, batch_size=batch_size, stats=stats, on_batch=renew)
        for (key, _), answer in zip(part, answers, strict=True):
            # The guess rides on the result only; the label cache keeps the teacher's answer alone.
            fresh[key] = replace(answer, student=student_guess[key]) if key in student_guess else answer
        if start + batch_size < len(waiting) and preempt is not None and preempt():
            break
    return keys, cached, fresh


def _should_yield(db_url: str, tenant: str, slice_seconds: float) -> bool:
    with session_scope(db_url) as s:
        return should_yield(s, tenant, utcnow(), slice_seconds)


def _expire_lease(db_url: str, chunk_id: int, worker: str) -> None:
    with session_scope(db_url) as s:
        s.execute(
            update(Chunk)
            .where(Chunk.id == chunk_id, Chunk.lease_owner == worker, Chunk.status == "running")
            .values(lease_expires_at=utcnow())
        )


def _give_up(session: Session, chunk: Chunk, job_id: str, worker: str) -> ChunkReport:
    error = f"gave up after {chunk.attempts - 1} attempts of its chunk (see the worker logs)"
    pending = list(
        session.scalars(
            select(JobItem).where(
                JobItem.job_id == job_id, JobItem.chunk_no == chunk.chunk_no, JobItem.state == "pending"
            )
        )
    )
    for item in pending:
        item.state = "failed"
        item.result = result_line(item.custom_id, None, state="failed", error=error)
    session.execute(
        update(Chunk)
        .where(Chunk.id == chunk.id, Chunk.lease_owner == worker)
        .values(status="done", finished_at=utcnow(), failed=len(pending))
    )
    session.execute(update(Job).where(Job.id == job_id).values(failed=Job.failed + len(pending)))
    log.error("chunk %s: %s", chunk.id, error)
    return ChunkReport(chunk.id, "gave_up", failed=len(pending))


def _release(session: Session, chunk_id: int, worker: str) -> bool:
    return (
        session.execute(
            update(Chunk).where(Chunk.id == chunk_id, Chunk.lease_owner == worker).values(lease_owner=None)
        ).rowcount
        == 1
    )


def stale_chunks(db_url: str, requeue_after_seconds: float) -> list[int]:
    """Chunks to send again: running with an expired lease, or queued and not claimed for a long time.

    Marks them dispatched now, so the next sweep leaves them alone for another ``requeue_after_seconds``.
    Sending a chunk twice is harmless: the lease lets one run and the other return at once.
    """
    now = utcnow()
    cutoff = now - timedelta(seconds=requeue_after_seconds)
    with session_scope(db_url) as s:
        ids = list(
            s.scalars(
                select(Chunk.id).where(
                    or_(
                        (Chunk.status == "running") & (Chunk.lease_expires_at < now),
                        (Chunk.status == "queued") & or_(Chunk.dispatched_at.is_(None), Chunk.dispatched_at < cutoff),
                    )
                )
            )
        )
        if ids:
            s.execute(update(Chunk).where(Chunk.id.in_(ids)).values(dispatched_at=now))
    # A job whose last chunk closed while its finaliser crashed is closed here, in a transaction of its own: one
    # that held chunk locks while it waited for job locks could deadlock with a cancel (job first, then chunks).
    with session_scope(db_url) as s:
        for job_id in s.scalars(select(Job.id).where(Job.status.in_(("in_progress", "cancelling", "queued")))):
            finalize_job(s, job_id)
    return ids


def mark_dispatched(db_url: str, chunk_ids: list[int]) -> None:
    if not chunk_ids:
        return
    with session_scope(db_url) as s:
        s.execute(update(Chunk).where(Chunk.id.in_(chunk_ids)).values(dispatched_at=utcnow()))
