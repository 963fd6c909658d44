"""The job lifecycle on the database: create (bulk ingestion), read, list, cancel, results and errors.

Statuses follow the job contract: validating -> queued -> in_progress -> (finalizing) -> completed, or
cancelling -> cancelled; failed when the job cannot run at all. Counts live on the job row and move in the same
transaction as the chunk that earns them, so a status read is one primary-key lookup however big the job.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipelines import webhooks
from pipelines.annotate import LabelRequest
from pipelines.batches import batch_view, completion_window
from pipelines.db.models import Batch, Chunk, Job, JobError, JobItem, utcnow
from pipelines.requests import job_columns
from relevance.pairs import Pair, RowError, paused_gc

TERMINAL = ("completed", "failed", "cancelled")
INSERT_BATCH = 5000


class QuotaExceededError(ValueError):
    """A job that would put more of its tenant's pairs in the queue than the tenant's quota allows."""

    def __init__(self, pending: int, pairs: int, quota: int) -> None:
        super().__init__(
            f"this job's {pairs} pairs would put {pending + pairs} of your pairs in the queue; the limit is {quota}"
        )
        self.pending, self.pairs, self.quota = pending, pairs, quota


class IdempotencyConflictError(ValueError):
    """The Idempotency-Key was used before for a different request."""


def new_job_id() -> str:
    return "job_" + uuid.uuid4().hex[:24]


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


def request_hash(pair_jsons: Sequence[str], request: LabelRequest, errors: Sequence[RowError]) -> str:
    h = hashlib.sha256()
    fields: list[Any] = [request.label_schema, request.prompt_template, request.decoding.cache_key()]
    if request.cascade_threshold is not None:  # teacher-only jobs keep the hash they had before cascades
        fields.append(request.cascade_threshold)
    if request.task is not None:
        fields.append(request.prompt_version)
    h.update(json.dumps(fields).encode())
    for text in pair_jsons:
        h.update(text.encode("utf-8"))
        h.update(b"\n")
    h.update(json.dumps([(e.row, e.field, e.message) for e in errors]).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class CreatedJob:
    job: Job
    chunk_ids: list[int]
    created: bool  # False: an earlier job with the same Idempotency-Key and the same request


def create_job(
    session: Session,
    *,
    tenant: str,
    pairs: Sequence[Pair],
    request: LabelRequest,
    teacher: str,
    chunk_size: int,
    errors: Sequence[RowError] = (),
    lines: Sequence[int] | None = None,
    idempotency_key: str | None = None,
    max_pending: int | None = None,
    metadata: dict[str, Any] | None = None,
    webhook_url: str | None = None,
) -> CreatedJob:
    """Store a job, its items (bulk inserts) and its chunks; the caller dispatches ``chunk_ids``.

    ``lines`` are the input line numbers of ``pairs`` (1-based positions when absent).

    With an ``idempotency_key`` already used by this tenant, the earlier job comes back when the request is the
    same, and :class:`IdempotencyConflictError` is raised when it is not.
    """
    with paused_gc():
        pair_jsons = [p.model_dump_json(exclude_none=True) for p in pairs]  # once: for the hash and the rows
    digest = request_hash(pair_jsons, request, errors)
    if idempotency_key:
        earlier = session.scalar(select(Job).where(Job.tenant == tenant, Job.idempotency_key == idempotency_key))
        if earlier is not None:
            return _replay(earlier, digest)
    if max_pending is not None and (pending := pending_pairs(session, tenant)) + len(pairs) > max_pending:
        raise QuotaExceededError(pending, len(pairs), max_pending)
    job = Job(
        id=new_job_id(),
        tenant=tenant,
        status="validating",
        **job_columns(request),
        teacher=teacher,
        idempotency_key=idempotency_key,
        request_hash=digest,
        total=len(pairs),
        completed=0,
        failed=0,
        cached=0,
        cancelled=0,
        rejected=len({e.row for e in errors}),
        teacher_prompts=0,
        teacher_seconds=0.0,
        cancel_requested=False,
        metadata_=metadata,
        webhook_url=webhook_url,
    )
    session.add(job)
    try:
        session.flush()
    except IntegrityError:
        # Two requests raced with the same key: the other one won; answer with its job.
        session.rollback()
        earlier = session.scalar(select(Job).where(Job.tenant == tenant, Job.idempotency_key == idempotency_key))
        if earlier is None:
            raise
        return _replay(earlier, digest)
    with paused_gc():
        _insert_items(session, job.id, pairs, pair_jsons, lines, chunk_size)
    _insert_rows(
        session,
        JobError,
        ({"job_id": job.id, "line": e.row, "field": e.field, "message": e.message} for e in errors),
    )
    n_chunks = (len(pairs) + chunk_size - 1) // chunk_size
    _insert_rows(
        session,
        Chunk,
        (
            {
                "job_id": job.id,
                "chunk_no": c,
                "size": min(chunk_size, len(pairs) - c * chunk_size),
                "status": "queued",
                "attempts": 0,
                "completed": 0,
                "failed": 0,
                "cached": 0,
            }
            for c in range(n_chunks)
        ),
    )
    job.status = "queued" if pairs else "completed"
    if not pairs:
        job.completed_at = utcnow()
    session.flush()
    chunk_ids = list(session.scalars(select(Chunk.id).where(Chunk.job_id == job.id).order_by(Chunk.chunk_no)))
    return CreatedJob(job, chunk_ids, True)


def _replay(earlier: Job, digest: str) -> CreatedJob:
    if earlier.request_hash != digest:
        raise IdempotencyConflictError(
            f"Idempotency-Key was already used for job {earlier.id} with a different request; "
            "use a new key for a new request"
        )
    return CreatedJob(earlier, [], False)


def _insert_items(
    session: Session,
    job_id: str,
    pairs: Sequence[Pair],
    pair_jsons: Sequence[str],
    lines: Sequence[int] | None,
    chunk_size: int,
) -> None:
    """Job items in bulk: PostgreSQL ``COPY`` in the session's transaction, batched inserts elsewhere."""
    rows = (
        (
            job_id,
            i // chunk_size,
            lines[i] if lines is not None else i + 1,
            p.custom_id,
            pair_jsons[i],
        )
        for i, p in enumerate(pairs)
    )
    if session.get_bind().dialect.name == "postgresql":
        raw = session.connection().connection.driver_connection
        with (
            raw.cursor() as cur,
            cur.copy("COPY job_items (job_id, chunk_no, line, custom_id, pair, state) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row((*row, "pending"))
        return
    keys = ("job_id", "chunk_no", "line", "custom_id", "pair")
    _insert_rows(
        session,
        JobItem,
        ({**dict(zip(keys, r, strict=True)), "pair": json.loads(r[4]), "state": "pending"} for r in rows),
    )


def _insert_rows(session: Session, model: type, rows: Iterator[dict[str, Any]] | Any) -> None:
    # Core executemany inserts: SQLAlchemy batches them (insertmanyvalues), no ORM object per row.
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= INSERT_BATCH:
            session.execute(insert(model), batch)
            batch = []
    if batch:
        session.execute(insert(model), batch)


def get_job(session: Session, tenant: str | None, job_id: str) -> Job | None:
    """The job, or None when it does not exist or belongs to another tenant (indistinguishable on purpose)."""
    job = session.get(Job, job_id)
    if job is None or (tenant is not None and job.tenant != tenant):
        return None
    return job


def list_jobs(
    session: Session, tenant: str | None, *, limit: int = 20, after: str | None = None, status: str | None = None
) -> list[Job]:
    """Newest first; ``after`` is the last id of the previous page."""
    query = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    if tenant is not None:
        query = query.where(Job.tenant == tenant)
    if status:
        query = query.where(Job.status == status)
    if after:
        anchor = session.get(Job, after)
        if anchor is not None:
            query = query.where(
                (Job.created_at < anchor.created_at) | ((Job.created_at == anchor.created_at) & (Job.id < anchor.id))
            )
    return list(session.scalars(query))


def request_cancel(session: Session, job: Job) -> Job:
    """Flag the job; chunks not yet claimed are cancelled now, running ones stop at their next teacher call."""
    if job.status in TERMINAL:
        return job
    session.execute(update(Job).where(Job.id == job.id).values(cancel_requested=True, status="cancelling"))
    queued = list(
        session.scalars(
            select(Chunk.chunk_no).where(Chunk.job_id == job.id, Chunk.status == "queued", Chunk.lease_owner.is_(None))
        )
    )
    cancel_chunks(session, job.id, queued)
    session.flush()
    finalize_job(session, job.id)
    session.refresh(job)
    return job


def cancel_chunks(session: Session, job_id: str, chunk_nos: Sequence[int]) -> int:
    """Cancel the still-pending items of these chunks; returns how many items were cancelled."""
    if not chunk_nos:
        return 0
    done = session.execute(
        update(Chunk)
        .where(Chunk.job_id == job_id, Chunk.chunk_no.in_(chunk_nos), Chunk.status.in_(("queued", "running")))
        .values(status="cancelled", finished_at=utcnow(), lease_owner=None)
    )
    if not done.rowcount:
        return 0
    n = session.execute(
        update(JobItem)
        .where(JobItem.job_id == job_id, JobItem.chunk_no.in_(chunk_nos), JobItem.state == "pending")
        .values(state="cancelled")
    ).rowcount
    session.execute(update(Job).where(Job.id == job_id).values(cancelled=Job.cancelled + n))
    return n


def finalize_job(session: Session, job_id: str) -> str | None:
    """Close the job when no chunk is open; returns the new status, or None when it stays open."""
    job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    if job is None or job.status in TERMINAL:
        return None
    open_chunks = session.scalar(
        select(func.count()).select_from(Chunk).where(Chunk.job_id == job_id, Chunk.status.in_(("queued", "running")))
    )
    if open_chunks:
        return None
    job.status = "cancelled" if job.cancel_requested else "completed"
    job.completed_at = utcnow()
    _tell_ended(session, job)
    return job.status


def _tell_ended(session: Session, job: Job) -> None:
    """The job's webhook event; a batch's job tells it as OpenAI's batch events do (``batch.completed``,
    ``batch.cancelled``, ``batch.expired``), with the batch object as the data."""
    batch = session.scalar(select(Batch).where(Batch.job_id == job.id)) if job.webhook_url else None
    if batch is None:
        webhooks.enqueue(session, job, f"job.{job.status}", job_view(job))
        return
    view = batch_view(batch, job)
    webhooks.enqueue(session, job, f"batch.{view['status']}", view)


def _task_ref(job: Job) -> dict[str, Any] | None:
    if not job.task:
        return None
    return {"id": job.task_id, "name": job.task["spec"]["name"], "version": job.task["version"]}


def job_view(job: Job) -> dict[str, Any]:
    """The job as the API returns it (the job contract)."""
    pending = max(0, job.total - job.completed - job.failed - job.cancelled)
    return {
        "id": job.id,
        "object": "annotation.job",
        "status": job.status,
        "label_schema": job.label_schema,
        "prompt_template": job.prompt_template,
        "prompt_version": job.prompt_version,
        "task": _task_ref(job),
        "teacher": job.teacher,
        "samples": job.samples,
        "mode": "teacher" if job.decoding.get("cascade_threshold") is None else "cascade",
        "decoding": job.decoding,
        "request_counts": {
            "total": job.total,
            "completed": job.completed,
            "failed": job.failed,
            "cached": job.cached,
            "cancelled": job.cancelled,
            "pending": pending,
            "rejected_lines": job.rejected,
        },
        "teacher_prompts": job.teacher_prompts,
        "metadata": job.metadata_,
        "webhook_url": job.webhook_url,
        "created_at": aware(job.created_at),
        "started_at": aware(job.started_at),
        "completed_at": aware(job.completed_at),
        "error": job.error,
    }


def item_line(item: JobItem, *, include_pair: bool = False) -> dict[str, Any]:
    if item.result is not None:
        line = {"custom_id": item.custom_id, **{k: v for k, v in item.result.items() if k != "custom_id"}}
    else:
        line = {"custom_id": item.custom_id, "status": item.state, "label": None}
    if include_pair:
        line["pair"] = {k: v for k, v in item.pair.items() if k != "custom_id"}
    return line


def results_page(
    session: Session, job_id: str, *, after: int = 0, limit: int = 100, include_pair: bool = False
) -> tuple[list[dict[str, Any]], int | None]:
    """Result lines in input order after input line ``after``; returns them and the cursor of the next page.
    ``include_pair`` adds each line's pair (query, ad, meta) as ``pair``."""
    rows = list(
        session.scalars(
            select(JobItem)
            .where(JobItem.job_id == job_id, JobItem.line > after)
            .order_by(JobItem.line)
            .limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return [item_line(r, include_pair=include_pair) for r in rows], (rows[-1].line if more and rows else None)


def pending_pairs(session: Session, tenant: str) -> int:
    """Pairs of ``tenant`` not labelled yet, from its open jobs' counters (a read per job, not per pair)."""
    pending = session.scalar(
        select(func.sum(Job.total - Job.completed - Job.failed - Job.cancelled)).where(
            Job.tenant == tenant, Job.status.in_(("queued", "in_progress", "cancelling"))
        )
    )
    return int(pending or 0)


def errors_page(
    session: Session, job_id: str, *, after: int = 0, limit: int = 1000, cancelled: bool = False
) -> tuple[list[dict[str, Any]], int | None]:
    """Rejected input lines and failed pairs after input line ``after``, by line; them and the next cursor.

    ``cancelled`` adds the pairs a cancel stopped (a Batch API error file lists them; a job's results do)."""
    rejected = [
        {"line": e.line, "field": e.field, "message": e.message, "kind": "invalid_input"}
        for e in session.scalars(
            select(JobError)
            .where(JobError.job_id == job_id, JobError.line > after)
            .order_by(JobError.line)
            .limit(limit + 1)
        )
    ]
    states = ("failed", "cancelled") if cancelled else ("failed",)
    failed = [
        {
            "line": i.line,
            "custom_id": i.custom_id,
            "message": (i.result or {}).get("error", "failed") if i.state == "failed" else "the job was cancelled",
            "raw": (i.result or {}).get("reasoning"),
            "kind": "teacher_failure" if i.state == "failed" else "cancelled",
        }
        for i in session.scalars(
            select(JobItem)
            .where(JobItem.job_id == job_id, JobItem.state.in_(states), JobItem.line > after)
            .order_by(JobItem.line)
            .limit(limit + 1)
        )
    ]
    rows = sorted(rejected + failed, key=lambda r: r["line"])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["line"] if more and rows else None)


def expire_batch(session: Session, batch: Batch, now: datetime | None = None) -> bool:
    """When ``batch``'s completion window has run out and its job is not finished: mark it expired and cancel
    what is left (results so far stay, as OpenAI's batches keep theirs). True when it expired now."""
    now = now or utcnow()
    job = session.get(Job, batch.job_id)
    if batch.expired_at is not None or job is None or job.status in TERMINAL:
        return False
    created = aware(batch.created_at)
    assert created is not None
    if now < created + completion_window(batch.completion_window):
        return False
    batch.expired_at = now
    request_cancel(session, job)
    return True


def expire_overdue_batches(session: Session, now: datetime | None = None) -> int:
    """Expire every batch whose window has run out (the sweep calls it); returns how many."""
    open_batches = session.scalars(
        select(Batch).join(Job, Job.id == Batch.job_id).where(Batch.expired_at.is_(None), Job.status.not_in(TERMINAL))
    )
    return sum(expire_batch(session, b, now) for b in list(open_batches))
