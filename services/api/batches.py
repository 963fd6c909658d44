"""The OpenAI Batch API over jobs: ``/v1/files`` and ``/v1/batches``, for clients written against OpenAI's SDK.

A batch is a job whose pairs came from an uploaded file of Batch request lines (:mod:`pipelines.batches`); its
output and error files are read from the job's results as they are downloaded. A batch or file of another tenant
is a 404, like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines import batches as batch_format
from pipelines import chat_lines
from pipelines import jobs as job_store
from pipelines.db.models import Batch, StoredFile
from pipelines.settings import Settings
from pipelines.webhooks import check_url
from relevance.pairs import unstorable
from services.api.deps import DB, SettingsDep, Tenant, job_task, label_request
from services.api.errors import APIError
from services.api.jobs import ERRORS, check_target, created_response, fit_to_teacher, jsonl_bytes, paged, store_job
from services.api.schemas import AnnotateOptions, BatchList, BatchOut, CreateBatchRequest, FileOut

router = APIRouter(prefix="/v1", tags=["batch"])
JSONL = "application/jsonl"
PAGE = 1000
# Where a new file's or batch's id leads (OpenAPI links), for generated clients and the stateful fuzzer.
FILE_LINKS = {
    name: {"operationId": operation, "parameters": {"file_id": "$response.body#/id"}}
    for name, operation in (("GetFile", "get_file"), ("GetFileContent", "get_file_content"))
}
BATCH_LINKS = {
    name: {"operationId": operation, "parameters": {"batch_id": "$response.body#/id"}}
    for name, operation in (("GetBatch", "get_batch"), ("CancelBatch", "cancel_batch"))
}


def _file_view(f: StoredFile) -> dict[str, Any]:
    return {
        "id": f.id,
        "object": "file",
        "bytes": f.bytes_,
        "created_at": batch_format.unix(f.created_at),
        "filename": f.filename,
        "purpose": f.purpose,
        "status": "processed",
    }


def _stored_file(db: Session, tenant: str, file_id: str) -> StoredFile:
    f = None if unstorable(file_id) else db.get(StoredFile, file_id)
    if f is None or f.tenant != tenant:
        raise APIError(404, f"no file {file_id!r}", type="not_found_error", param="file_id")
    return f


def _batch(db: Session, tenant: str, batch_id: str) -> Batch:
    b = None if unstorable(batch_id) else db.get(Batch, batch_id)
    if b is None or b.tenant != tenant:
        raise APIError(404, f"no batch {batch_id!r}", type="not_found_error", param="batch_id")
    return b


def _view(db: Session, b: Batch) -> dict[str, Any]:
    # A window that ran out is noticed here too, not only by the sweep: a server without workers' beat (the
    # embedded default) still expires its batches.
    if job_store.expire_batch(db, b):
        db.flush()
    job = job_store.get_job(db, None, b.job_id)
    return BatchOut(**batch_format.batch_view(b, job)).model_dump(mode="json")


@router.post(
    "/files",
    response_model=FileOut,
    responses={**ERRORS, 200: {"description": "the stored file", "links": FILE_LINKS}},
    summary="Upload a file (purpose batch)",
    operation_id="create_file",
)
def create_file(
    tenant: Tenant,
    db: DB,
    file: UploadFile,
    purpose: Annotated[str, Form(max_length=32)],
) -> dict[str, Any]:
    """A Batch API input file: one request line per pair (``{custom_id, method, url, body}``)."""
    if purpose != batch_format.PURPOSE:
        wanted = batch_format.PURPOSE
        raise APIError(422, f"purpose: only {wanted!r} files are kept here, got {purpose!r}", param="purpose")
    filename = (file.filename or "input.jsonl")[:256]
    if problem := unstorable(filename):
        raise APIError(422, f"filename {problem}", param="file")
    content = file.file.read()  # the body limit already held while the form was read
    stored = StoredFile(
        id=batch_format.new_file_id(),
        tenant=tenant,
        purpose=purpose,
        filename=filename,
        bytes_=len(content),
        content=content,
    )
    db.add(stored)
    db.flush()
    view = _file_view(stored)
    db.commit()
    return view


@router.get(
    "/files/{file_id}",
    response_model=FileOut,
    responses=ERRORS,
    summary="An uploaded file's details",
    operation_id="get_file",
)
def get_file(file_id: str, tenant: Tenant, db: DB) -> dict[str, Any]:
    return _file_view(_stored_file(db, tenant, file_id))


@router.get(
    "/files/{file_id}/content",
    responses={**ERRORS, 200: {"content": {JSONL: {}}, "description": "the file's lines"}},
    summary="A file's content: an upload, or a batch's output or error file",
    operation_id="get_file_content",
)
def file_content(file_id: str, tenant: Tenant, db: DB, settings: SettingsDep) -> Response:
    result_file = batch_format.batch_of_file(file_id)
    if result_file is None:
        return Response(_stored_file(db, tenant, file_id).content, media_type=JSONL)
    batch_id, kind = result_file
    b = _batch(db, tenant, batch_id)
    if kind == "output":
        job = job_store.get_job(db, None, b.job_id)
        created = batch_format.unix(job.completed_at or job.created_at)
        lines = _output_lines(settings, b.id, b.job_id, b.endpoint, created)
        return StreamingResponse(lines, media_type=JSONL)
    return StreamingResponse(_error_lines(settings, b.id, b.job_id, b.expired_at is not None), media_type=JSONL)


def _output_lines(
    settings: Settings, batch_id: str, job_id: str, endpoint: str, created: int | None
) -> Iterator[bytes]:
    for rows in paged(settings, job_id, job_store.results_page):
        done = [r for r in rows if r.get("status") == "completed"]
        yield jsonl_bytes([batch_format.output_line(batch_id, r, endpoint=endpoint, created=created) for r in done])


def _error_lines(settings: Settings, batch_id: str, job_id: str, expired: bool) -> Iterator[bytes]:
    for rows in paged(settings, job_id, partial(job_store.errors_page, cancelled=True)):
        yield jsonl_bytes([batch_format.error_line(batch_id, r, expired=expired) for r in rows])


@router.post(
    "/batches",
    response_model=BatchOut,
    responses={**ERRORS, 200: {"description": "the batch, in progress", "links": BATCH_LINKS}},
    summary="Run an uploaded file as a batch",
    operation_id="create_batch",
)
def create_batch(
    body: CreateBatchRequest, request: Request, tenant: Tenant, db: DB, settings: SettingsDep
) -> JSONResponse:
    """Every request line becomes a pair of one job; bad lines go to the batch's error file by line number."""
    if body.endpoint not in batch_format.ENDPOINTS:
        raise APIError(
            422,
            f"endpoint: {body.endpoint!r} is not served as a batch; use {batch_format.ENDPOINT} (a line's body is one "
            f"pair: query, ad) or {chat_lines.ENDPOINT} (a chat completion request)",
            param="endpoint",
        )
    if body.completion_window not in batch_format.COMPLETION_WINDOWS:
        windows = ", ".join(batch_format.COMPLETION_WINDOWS)
        raise APIError(422, f"completion_window: {body.completion_window!r}; use {windows}", param="completion_window")
    source = _stored_file(db, tenant, body.input_file_id)
    if source.purpose != batch_format.PURPOSE:
        message = f"input_file_id: the file's purpose is {source.purpose!r}, not batch"
        raise APIError(422, message, param="input_file_id")
    pairs = batch_format.parse_input(
        source.content, endpoint=body.endpoint, limits=settings.pair_limits(), max_pairs=settings.max_pairs_per_job
    )
    if not pairs.pairs:
        first = pairs.errors[0] if pairs.errors else None
        where = f"line {first.row}" + (f", {first.field}" if first and first.field else "") if first else "the file"
        detail = f"; {where}: {first.message}" if first else ": it is empty"
        raise APIError(422, f"input_file_id: no request line can be labelled{detail}", param="input_file_id")
    # OpenAI's batch request has no fields for them: a task and a webhook ride in the metadata, which OpenAI's
    # clients pass through.
    metadata = body.metadata or {}
    options = AnnotateOptions(task=metadata.get("task"))
    label = label_request(options, settings, job_task(db, tenant, options))
    webhook_url = metadata.get("webhook_url")
    if webhook_url is not None:
        try:
            check_url(webhook_url)
        except ValueError as exc:
            raise APIError(422, f"metadata.{exc}", param="metadata.webhook_url") from None
        check_target(webhook_url, settings, param="metadata.webhook_url")
    pairs = fit_to_teacher(pairs, label, settings, strict=False)
    created = store_job(db, tenant, pairs, label, settings, metadata=body.metadata, webhook_url=webhook_url)
    b = Batch(
        id=batch_format.new_batch_id(),
        tenant=tenant,
        job_id=created.job.id,
        input_file_id=source.id,
        endpoint=body.endpoint,
        completion_window=body.completion_window,
        created_at=created.job.created_at,
    )
    db.add(b)
    db.flush()
    content = BatchOut(**batch_format.batch_view(b, created.job)).model_dump(mode="json")
    return created_response(db, request, created, content, status_code=200)  # OpenAI answers a new batch with 200


@router.get(
    "/batches/{batch_id}",
    response_model=BatchOut,
    responses=ERRORS,
    summary="A batch and its counts",
    operation_id="get_batch",
)
def get_batch(batch_id: str, tenant: Tenant, db: DB) -> dict[str, Any]:
    return _view(db, _batch(db, tenant, batch_id))


@router.post(
    "/batches/{batch_id}/cancel",
    response_model=BatchOut,
    responses=ERRORS,
    summary="Cancel; results so far stay",
    operation_id="cancel_batch",
)
def cancel_batch(batch_id: str, tenant: Tenant, db: DB) -> dict[str, Any]:
    b = _batch(db, tenant, batch_id)
    job_store.request_cancel(db, job_store.get_job(db, None, b.job_id))
    view = _view(db, b)
    db.commit()
    return view


@router.get("/batches", response_model=BatchList, responses=ERRORS, summary="List batches, newest first")
def list_batches(
    tenant: Tenant,
    db: DB,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(max_length=40, description="last id of the previous page")] = None,
) -> dict[str, Any]:
    query = select(Batch).where(Batch.tenant == tenant).order_by(Batch.created_at.desc(), Batch.id.desc())
    if after is not None:
        anchor = None if unstorable(after) else db.get(Batch, after)
        if anchor is None or anchor.tenant != tenant:
            raise APIError(422, f"after: no batch {after!r}", param="after")
        query = query.where(
            (Batch.created_at < anchor.created_at) | ((Batch.created_at == anchor.created_at) & (Batch.id < anchor.id))
        )
    rows = list(db.scalars(query.limit(limit + 1)))
    data = [_view(db, b) for b in rows[:limit]]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(rows) > limit,
    }
