"""The review queue of a job and the reviews stored against it.

A job's labelled pairs are ordered by :func:`relevance.votes.uncertainty` (the spread of the label's
distribution, plus one where a cascade job's student disagreed with the teacher), so that a reviewer's first
minutes go where the teacher is least sure. Reviews never touch the teacher's result: each reviewer has one
review per pair, updated when they change their mind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from pipelines.db.models import Job, JobItem, Review, utcnow

Order = Literal["uncertainty", "confidence", "line"]


@dataclass(frozen=True)
class QueueFilter:
    """Which pairs a page shows. ``unreviewed_by`` hides the pairs that reviewer has already reviewed."""

    order: Order = "uncertainty"
    label: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    query: str | None = None
    unreviewed_by: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class ReviewOut:
    custom_id: str
    reviewer: str
    label: str
    teacher_label: str | None
    note: str
    created_at: float
    updated_at: float


class ReviewError(ValueError):
    """A review that cannot be stored; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filtered(job_id: str, f: QueueFilter) -> Any:
    # A batch line's conversation has no pair to show: only pairs are reviewed (pipelines.chat_lines).
    where = [
        JobItem.job_id == job_id,
        JobItem.state.in_(("completed", "failed")),
        JobItem.pair["query"].as_string().is_not(None),
    ]
    if f.label:
        where.append(JobItem.label == f.label)
    if f.min_confidence is not None:
        where.append(JobItem.confidence >= f.min_confidence)
    if f.max_confidence is not None:
        where.append(JobItem.confidence <= f.max_confidence)
    if f.query:
        where.append(JobItem.pair["query"].as_string().ilike(_like(f.query), escape="\\"))
    if f.source:
        where.append(JobItem.result["source"].as_string() == f.source)
    if f.unreviewed_by:
        mine = select(Review.id).where(Review.item_id == JobItem.id, Review.reviewer == f.unreviewed_by)
        where.append(~exists(mine))
    return where


def queue_page(session: Session, job: Job, f: QueueFilter, *, limit: int, offset: int) -> tuple[int, list[JobItem]]:
    """How many pairs match, and one page of them in the filter's order (ties by input line)."""
    where = _filtered(job.id, f)
    total = session.scalar(select(func.count()).select_from(JobItem).where(*where)) or 0
    order = {
        # NULLs (results written before these columns existed) go last either way
        "uncertainty": (JobItem.uncertainty.is_(None), JobItem.uncertainty.desc()),
        "confidence": (JobItem.confidence.is_(None), JobItem.confidence.asc()),
        "line": (),
    }[f.order]
    rows = session.scalars(select(JobItem).where(*where).order_by(*order, JobItem.line).limit(limit).offset(offset))
    return total, list(rows)


def reviews_for(session: Session, job_id: str, item_ids: list[int] | None = None) -> dict[int, list[Review]]:
    """Every review of the job (or of these items), by item, oldest first."""
    query = select(Review).where(Review.job_id == job_id).order_by(Review.item_id, Review.created_at, Review.id)
    if item_ids is not None:
        query = query.where(Review.item_id.in_(item_ids))
    out: dict[int, list[Review]] = {}
    for review in session.scalars(query):
        out.setdefault(review.item_id, []).append(review)
    return out


def submit_review(
    session: Session, job: Job, custom_id: str, reviewer: str, label: str, note: str, labels: list[str]
) -> tuple[Review, bool]:
    """Store (or update) ``reviewer``'s label for one pair of the job; True when it is new."""
    if label not in labels:
        raise ReviewError("label", f"label {label!r} is not in the job's schema; use one of {', '.join(labels)}")
    item = session.scalar(select(JobItem).where(JobItem.job_id == job.id, JobItem.custom_id == custom_id))
    if item is None:
        raise ReviewError("custom_id", f"job {job.id} has no pair with custom_id {custom_id!r}")
    if "query" not in item.pair:
        raise ReviewError("custom_id", f"{custom_id!r} is a conversation, not a pair: only pairs are reviewed")
    if item.state not in ("completed", "failed"):
        raise ReviewError(
            "custom_id",
            f"pair {custom_id!r} is {item.state}: only labelled or failed pairs are reviewed",
        )
    review = session.scalar(select(Review).where(Review.item_id == item.id, Review.reviewer == reviewer))
    now = utcnow()
    created = review is None
    if review is None:
        review = Review(job_id=job.id, item_id=item.id, tenant=job.tenant, reviewer=reviewer, created_at=now)
        session.add(review)
    review.label, review.note, review.updated_at = label, note, now
    review.teacher_label = item.label
    session.flush()
    return review, created


def review_counts(session: Session, job_id: str, reviewer: str | None = None) -> tuple[int, int]:
    """Pairs reviewed by anyone, and by ``reviewer``."""
    anyone = session.scalar(select(func.count(func.distinct(Review.item_id))).where(Review.job_id == job_id)) or 0
    mine = 0
    if reviewer is not None:
        mine = session.scalar(select(func.count()).where(Review.job_id == job_id, Review.reviewer == reviewer)) or 0
    return anyone, mine


def reviewed_items(session: Session, job_id: str) -> list[tuple[JobItem, list[Review]]]:
    """Every reviewed pair of the job, in input order, with its reviews (oldest first)."""
    by_item = reviews_for(session, job_id)
    if not by_item:
        return []
    items = session.scalars(select(JobItem).where(JobItem.id.in_(list(by_item))).order_by(JobItem.line))
    return [(item, by_item[item.id]) for item in items]
