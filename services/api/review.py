"""Review routes: the queue of a job's labels by uncertainty, reviews, agreement, gold and interop exports, and
the review page (``GET /review``). Any key of the tenant may call them, a reviewer's included; the logic lives
in :mod:`review`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from pipelines.db.models import Job, JobItem
from pipelines.requests import job_schema
from relevance.pairs import unstorable
from review import gold, interop
from review.agreement import ReviewedPair, agreement
from review.queue import QueueFilter, ReviewError, queue_page, review_counts, reviewed_items, reviews_for, submit_review
from services.api.deps import DB, CallerDep
from services.api.errors import APIError
from services.api.jobs import ERRORS, job_or_404

router = APIRouter(tags=["review"])
PAGE = Path(__file__).with_name("static") / "review.html"


class ReviewIn(BaseModel):
    custom_id: str = Field(..., min_length=1, max_length=256)
    label: str = Field(..., min_length=1, max_length=64, description="one of the job schema's labels")
    note: str = Field("", max_length=2000)


def _text_param(name: str, value: str | None) -> None:
    if value is not None and (problem := unstorable(value)):
        raise APIError(422, f"{name} {problem}", param=name)


def _item_view(item: JobItem, reviews: list[Any], me: str) -> dict[str, Any]:
    result = item.result or {}
    pair = item.pair
    return {
        "custom_id": item.custom_id,
        "line": item.line,
        "status": item.state,
        "query": pair.get("query"),
        "ad": pair.get("ad"),
        "label": item.label,
        "confidence": item.confidence,
        "uncertainty": item.uncertainty,
        "distribution": result.get("distribution") or {},
        "reasoning": result.get("reasoning") or "",
        "source": result.get("source", "teacher"),
        "student": result.get("student"),
        "error": result.get("error"),
        "reviews": [{"reviewer": r.reviewer, "label": r.label, "note": r.note} for r in reviews],
        "my_review": next((r.label for r in reviews if r.reviewer == me), None),
    }


@router.get("/v1/me", summary="Who this key is: tenant, reviewer name, role", responses=ERRORS)
def whoami(caller: CallerDep) -> dict[str, str]:
    return {"tenant": caller.tenant, "reviewer": caller.name, "role": caller.role}


@router.get("/v1/jobs/{job_id}/queue", summary="The job's labels to review, most uncertain first", responses=ERRORS)
def review_queue(
    job_id: str,
    caller: CallerDep,
    db: DB,
    order: Literal["uncertainty", "confidence", "line"] = "uncertainty",
    label: Annotated[str | None, Query(max_length=64, description="only pairs the teacher gave this label")] = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    query: Annotated[str | None, Query(max_length=200, description="only queries containing this text")] = None,
    source: Annotated[Literal["teacher", "student"] | None, Query(description="who labelled the pair")] = None,
    pending: Annotated[bool, Query(description="hide the pairs this reviewer has reviewed")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    _text_param("label", label)
    _text_param("query", query)
    job = job_or_404(db, caller.tenant, job_id)
    f = QueueFilter(order, label, min_confidence, max_confidence, query, caller.name if pending else None, source)
    total, items = queue_page(db, job, f, limit=limit, offset=offset)
    reviews = reviews_for(db, job.id, [i.id for i in items])
    reviewed, mine = review_counts(db, job.id, caller.name)
    return {
        "job": {
            "id": job.id,
            "status": job.status,
            "total": job.total,
            "label_schema": job.label_schema,
            "teacher": job.teacher,
        },
        "labels": list(job_schema(job).names),
        "reviewer": caller.name,
        "reviewed": reviewed,
        "reviewed_by_me": mine,
        "total": total,
        "items": [_item_view(i, reviews.get(i.id, []), caller.name) for i in items],
    }


@router.post("/v1/jobs/{job_id}/reviews", status_code=201, summary="Review one pair", responses=ERRORS)
def post_review(job_id: str, body: ReviewIn, caller: CallerDep, db: DB, response: Response) -> dict[str, Any]:
    for name in ("custom_id", "label", "note"):
        _text_param(name, getattr(body, name))
    job = job_or_404(db, caller.tenant, job_id)
    try:
        review, created = submit_review(
            db, job, body.custom_id, caller.name, body.label, body.note, list(job_schema(job).names)
        )
    except ReviewError as exc:
        raise APIError(422, str(exc), param=exc.field) from None
    response.status_code = 201 if created else 200
    return {
        "custom_id": body.custom_id,
        "reviewer": review.reviewer,
        "label": review.label,
        "teacher_label": review.teacher_label,
        "note": review.note,
        "created": created,
    }


@router.get("/v1/jobs/{job_id}/reviews", summary="Every review of the job", responses=ERRORS)
def list_reviews(job_id: str, caller: CallerDep, db: DB) -> dict[str, Any]:
    job = job_or_404(db, caller.tenant, job_id)
    data = [
        {
            "custom_id": item.custom_id,
            "reviewer": r.reviewer,
            "label": r.label,
            "teacher_label": r.teacher_label,
            "note": r.note,
            "created_at": int(r.created_at.timestamp()),
            "updated_at": int(r.updated_at.timestamp()),
        }
        for item, reviews in reviewed_items(db, job.id)
        for r in reviews
    ]
    return {"object": "list", "data": data}


def _reviewed_pairs(db: Any, job: Job) -> list[tuple[JobItem, list[tuple[str, str]]]]:
    return [(item, [(r.reviewer, r.label) for r in reviews]) for item, reviews in reviewed_items(db, job.id)]


@router.get("/v1/jobs/{job_id}/agreement", summary="Teacher-human and human-human agreement", responses=ERRORS)
def job_agreement(job_id: str, caller: CallerDep, db: DB) -> dict[str, Any]:
    job = job_or_404(db, caller.tenant, job_id)
    pairs = [
        ReviewedPair(item.custom_id, item.label, item.confidence, reviews) for item, reviews in _reviewed_pairs(db, job)
    ]
    return {"job_id": job.id, **agreement(pairs, job_schema(job))}


@router.get(
    "/v1/jobs/{job_id}/gold",
    summary="Reviewed pairs as gold (JSONL with meta.label, or Parquet)",
    responses=ERRORS,
    response_class=Response,
)
def gold_export(job_id: str, caller: CallerDep, db: DB, format: Literal["jsonl", "parquet"] = "jsonl") -> Response:
    job = job_or_404(db, caller.tenant, job_id)
    rows = [
        gold.gold_row(item.pair, job.id, item.label, item.confidence, reviews)
        for item, reviews in _reviewed_pairs(db, job)
    ]
    name = f"{job.id}-gold.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "parquet":
        return Response(gold.to_parquet(rows), media_type="application/vnd.apache.parquet", headers=headers)
    return Response(gold.to_jsonl(rows), media_type="application/x-ndjson", headers=headers)


def _queue_records(db: Any, job: Job, limit: int) -> list[interop.QueueRecord]:
    _, items = queue_page(db, job, QueueFilter(), limit=limit, offset=0)
    return [
        interop.QueueRecord(
            i.custom_id,
            job.id,
            i.pair,
            i.label,
            i.confidence,
            (i.result or {}).get("teacher", job.teacher),
            (i.result or {}).get("reasoning") or "",
        )
        for i in items
    ]


@router.get("/v1/jobs/{job_id}/review-export", summary="The queue as Argilla records or Label Studio tasks")
def review_export(
    job_id: str,
    caller: CallerDep,
    db: DB,
    format: Literal["argilla", "label-studio"],
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> dict[str, Any]:
    job = job_or_404(db, caller.tenant, job_id)
    records = _queue_records(db, job, limit)
    labels = list(job_schema(job).names)
    if format == "argilla":
        return {
            "format": format,
            "settings": interop.argilla_settings(labels),
            "records": interop.argilla_records(records),
        }
    return {
        "format": format,
        "label_config": interop.label_studio_config(labels),
        "tasks": interop.label_studio_tasks(records),
    }


@router.post("/v1/jobs/{job_id}/review-import", summary="Argilla or Label Studio annotations, stored as reviews")
async def review_import(
    job_id: str, request: Request, caller: CallerDep, db: DB, format: Literal["argilla", "label-studio"]
) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise APIError(422, f"body: not JSON, or nested too deeply ({str(exc)[:200]})", param="body") from None
    if isinstance(body, dict):  # our own export, edited and sent back whole
        body = body.get("records" if format == "argilla" else "tasks")
    read = interop.argilla_reviews if format == "argilla" else interop.label_studio_reviews
    try:
        imported = read(body)
    except (interop.InteropError, RecursionError) as exc:
        raise APIError(422, f"body: {exc}", param="body") from None
    job = job_or_404(db, caller.tenant, job_id)
    labels = list(job_schema(job).names)
    created = updated = 0
    for n, r in enumerate(imported):
        for name in ("custom_id", "reviewer", "label"):
            if problem := unstorable(getattr(r, name)):
                raise APIError(422, f"review {n}: {name} {problem}", param=name)
        try:
            _, new = submit_review(db, job, r.custom_id, r.reviewer[:128], r.label, "", labels)
        except ReviewError as exc:
            db.rollback()
            raise APIError(422, f"review {n} ({r.reviewer}): {exc}", param=exc.field) from None
        created += new
        updated += not new
    return {"job_id": job.id, "format": format, "created": created, "updated": updated}


@router.get("/review", response_class=HTMLResponse, include_in_schema=False)
def review_page() -> HTMLResponse:
    return HTMLResponse(PAGE.read_text(encoding="utf-8"))
