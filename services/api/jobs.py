"""Annotation routes: sync annotate, jobs (create from JSON or JSONL, list, get, cancel), results and errors.

Routes are thin: they parse and authorise, then call :mod:`pipelines.jobs`. A job of another tenant is a 404,
exactly like a job that does not exist, so ids leak nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from pipelines import jobs as job_store
from pipelines.annotate import LabelRequest, label_pairs, result_line
from pipelines.backends.base import TeacherError
from pipelines.chat_lines import conversation
from pipelines.db.session import session_scope
from pipelines.prompt_fit import TOO_LONG, prompt_meter
from pipelines.runtime import configured_teacher_id, get_backend
from pipelines.settings import Settings
from pipelines.webhooks import allowed_hosts, check_url, target_problem
from relevance.label_scores import LabelMethod
from relevance.pairs import PairBatch, RowError, unstorable, validate_jsonl, validate_records
from relevance.tasks import TaskError
from services.api.deps import DB, CallerDep, SettingsDep, Tenant, job_task, label_request, with_mode
from services.api.errors import APIError
from services.api.schemas import (
    MODE_DESCRIPTION,
    THRESHOLD_DESCRIPTION,
    AnnotateOptions,
    AnnotateRequest,
    AnnotateResponse,
    CreateJobRequest,
    ErrorResponse,
    JobList,
    JobMode,
    JobOut,
    ResultPage,
)

router = APIRouter(prefix="/v1", tags=["annotation"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "missing or invalid API key"},
    404: {"model": ErrorResponse, "description": "no such job for this API key"},
    413: {"model": ErrorResponse, "description": "request too large"},
    429: {"model": ErrorResponse, "description": "the tenant's queue is full (AGPO_TENANT_MAX_PENDING_PAIRS)"},
    422: {"model": ErrorResponse, "description": "invalid request; the message names the field or line"},
    503: {"model": ErrorResponse, "description": "database or broker unavailable"},
}
JSONL_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-ndjson": {
                "schema": {"type": "string"},
                "example": '{"custom_id": "1", "query": "usb c cable 2m", "ad": {"title": "Anker USB-C cable, 2 m"}}\n',
            }
        },
    }
}


def teacher_name(settings: Settings) -> str:
    """The configured teacher as recorded on a job (the engine decides it); no model there is a 503."""
    try:
        return configured_teacher_id(settings)
    except TeacherError as exc:
        raise APIError(503, str(exc), type="service_unavailable") from None


def _validate_body_pairs(pairs: list[dict[str, Any]], settings: Settings, limit: int) -> PairBatch:
    if len(pairs) > limit:
        raise APIError(413, f"pairs: {len(pairs)} pairs; the limit is {limit}", type="request_too_large", param="pairs")
    batch = validate_records(enumerate(pairs), limits=settings.pair_limits())
    if batch.errors:
        first = batch.errors[0]
        where = f"pairs[{first.row}]" + (f".{first.field}" if first.field else "")
        more = f" (and {len(batch.errors) - 1} more errors)" if len(batch.errors) > 1 else ""
        raise APIError(422, f"{where}: {first.message}{more}", param=where)
    if not batch.pairs:
        raise APIError(422, "pairs: at least one pair is required", param="pairs")
    batch.rows = [r + 1 for r in batch.rows]  # items keep 1-based positions, like lines of a JSONL upload
    return batch


def _no_valid_pair(errors: list[RowError]) -> APIError:
    first = errors[0]
    where = f"line {first.row}"
    return APIError(422, f"no valid pair in the upload; {where}: {first.message}", param=where)


def _renders(batch: PairBatch, label: LabelRequest, *, strict: bool) -> PairBatch:
    """Under a task's own (Jinja) prompt, every pair's prompt is rendered once here: a pair it cannot render (the
    template reads an attribute the pair lacks) is refused at the door, like any bad line, never by a worker."""
    task = label.task
    if task is None or task.builtin is not None:
        return batch
    kept = PairBatch(errors=list(batch.errors))
    for pair, row in zip(batch.pairs, batch.rows, strict=True):
        try:
            if conversation(pair) is None:  # a batch line's conversation is sent as it is, never rendered
                task.messages(pair)
        except TaskError as exc:
            message = f"the prompt of task {task.ref} does not render for this pair ({exc})"
            if strict:
                raise APIError(422, f"pairs[{row - 1}]: {message}", param=f"pairs[{row - 1}]") from None
            kept.errors.append(RowError(row, None, message))
            continue
        kept.pairs.append(pair)
        kept.rows.append(row)
    kept.errors.sort(key=lambda e: e.row)
    if not kept.pairs:
        raise _no_valid_pair(kept.errors)
    return kept


def fit_to_teacher(batch: PairBatch, label: LabelRequest, settings: Settings, *, strict: bool) -> PairBatch:
    """``batch`` without the pairs whose prompt cannot be rendered (:func:`_renders`) or cannot fit the teacher's
    context (:mod:`pipelines.prompt_fit`).

    ``strict`` (pairs in a JSON body): the first such pair is a 422 naming it. Otherwise (a JSONL upload) they
    join the upload's errors by line, like any other bad line.
    """
    batch = _renders(batch, label, strict=strict)
    meter = prompt_meter(settings)
    if meter is None:
        return batch
    if strict:
        for pair, row in zip(batch.pairs, batch.rows, strict=True):
            if problem := meter.problem(pair, label):
                where = f"pairs[{row - 1}]"
                raise APIError(422, f"{where}: {TOO_LONG} {problem}", param=where)
        return batch
    checked = meter.split(batch, label)
    if not checked.pairs:
        raise _no_valid_pair(checked.errors)
    return checked


def store_job(
    db: Any,
    tenant: str,
    batch: PairBatch,
    label: LabelRequest,
    settings: Settings,
    *,
    idempotency_key: str | None = None,
    metadata: dict[str, Any] | None = None,
    webhook_url: str | None = None,
) -> job_store.CreatedJob:
    """The job for ``batch``, flushed but not committed; a reused key or a full queue is the client's error."""
    try:
        return job_store.create_job(
            db,
            tenant=tenant,
            pairs=batch.pairs,
            lines=batch.rows,
            errors=batch.errors,
            request=label,
            teacher=teacher_name(settings),
            chunk_size=settings.chunk_size,
            idempotency_key=idempotency_key,
            metadata=metadata,
            webhook_url=webhook_url,
            max_pending=settings.tenant_max_pending_pairs,
        )
    except job_store.IdempotencyConflictError as exc:
        raise APIError(409, str(exc), param="Idempotency-Key") from None
    except job_store.QuotaExceededError as exc:
        raise APIError(
            429,
            f"{exc} (AGPO_TENANT_MAX_PENDING_PAIRS): retry when your jobs have progressed, or send fewer pairs",
            type="rate_limit_error",
            headers={"Retry-After": "30"},
        ) from None


def created_response(
    db: Any, request: Request, created: job_store.CreatedJob, content: dict[str, Any], status_code: int | None = None
) -> JSONResponse:
    """Commit, answer ``content``, then send the job's chunks to the broker.

    ``content`` is rendered before the commit: a response that cannot be rendered must not leave a job behind.
    Chunks go to the broker after the answer is sent (500 sends for a 100k-pair job): the job is already safe,
    and a send that never happens is what the stale-chunk sweep is for."""
    db.commit()  # the job must be durable before a worker can be told about it
    send = BackgroundTask(request.app.state.dispatcher.dispatch, created.chunk_ids) if created.chunk_ids else None
    status = status_code or (201 if created.created else 200)
    return JSONResponse(status_code=status, content=content, background=send)


def _new_job(
    db: Any,
    request: Request,
    tenant: str,
    batch: PairBatch,
    label: LabelRequest,
    settings: Settings,
    idempotency_key: str | None,
    metadata: dict[str, Any] | None,
    webhook_url: str | None = None,
) -> JSONResponse:
    if webhook_url is not None:
        check_target(webhook_url, settings)
    created = store_job(
        db, tenant, batch, label, settings, idempotency_key=idempotency_key, metadata=metadata, webhook_url=webhook_url
    )
    return created_response(db, request, created, JobOut(**job_store.job_view(created.job)).model_dump(mode="json"))


def check_target(url: str, settings: Settings, param: str = "webhook_url") -> None:
    """A 422 naming ``param`` for a webhook the service will not call (pipelines.webhooks.target_problem)."""
    if problem := target_problem(url, allowed_hosts(settings.webhook_allowed_hosts)):
        raise APIError(422, f"{param}: {problem}", param=param)


IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=256, description="retry-safe creation")]


@router.post("/annotate", response_model=AnnotateResponse, responses=ERRORS, summary="Label a few pairs now")
async def annotate(body: AnnotateRequest, tenant: Tenant, db: DB, settings: SettingsDep) -> dict[str, Any]:
    """Label up to ``AGPO_MAX_SYNC_PAIRS`` pairs in the request; use jobs for more."""
    batch = _validate_body_pairs(body.pairs, settings, settings.max_sync_pairs)
    task = await run_in_threadpool(job_task, db, tenant, body)
    await run_in_threadpool(db.commit)  # an inline task is stored whether or not the teacher answers
    req = label_request(body, settings, task)
    await run_in_threadpool(fit_to_teacher, batch, req, settings, strict=True)
    backend = get_backend(settings)
    outcomes = await run_in_threadpool(
        label_pairs, [p.model_dump() for p in batch.pairs], backend, req, batch_size=settings.teacher_batch_size
    )
    return {
        "object": "list",
        "data": [result_line(p.custom_id, o, state="completed") for p, o in zip(batch.pairs, outcomes, strict=True)],
    }


# Where a created job's id leads (OpenAPI links): generated clients and the stateful fuzzer follow them.
JOB_LINKS = {
    name: {"operationId": operation, "parameters": {"job_id": "$response.body#/id"}}
    for name, operation in (
        ("GetJob", "get_job"),
        ("CancelJob", "cancel_job"),
        ("GetResults", "get_job_results"),
        ("GetResultsPage", "get_job_results_page"),
        ("GetErrors", "get_job_errors"),
    )
}
CREATED = {**ERRORS, 201: {"description": "the job, queued", "links": JOB_LINKS}}


@router.post(
    "/jobs",
    status_code=201,
    response_model=JobOut,
    responses=CREATED,
    summary="Create a job from JSON",
    operation_id="create_job",
)
def create_job(
    body: CreateJobRequest,
    request: Request,
    tenant: Tenant,
    db: DB,
    settings: SettingsDep,
    idempotency_key: IdemKey = None,
) -> JSONResponse:
    """Queue ``pairs`` for labelling. With an ``Idempotency-Key`` a retried request returns the same job (200)."""
    batch = _validate_body_pairs(body.pairs, settings, settings.max_pairs_per_job)
    options = AnnotateOptions(**body.model_dump(include=set(AnnotateOptions.model_fields)))
    label = with_mode(
        label_request(options, settings, job_task(db, tenant, options)), body.mode, body.cascade_threshold, settings
    )
    return _new_job(
        db,
        request,
        tenant,
        batch=fit_to_teacher(batch, label, settings, strict=True),
        label=label,
        settings=settings,
        idempotency_key=idempotency_key,
        metadata=body.metadata,
        webhook_url=body.webhook_url,
    )


@router.post(
    "/jobs/jsonl",
    status_code=201,
    response_model=JobOut,
    responses=CREATED,
    operation_id="create_job_jsonl",
    openapi_extra=JSONL_BODY,
    summary="Create a job from a JSONL upload",
)
async def create_job_jsonl(
    request: Request,
    tenant: Tenant,
    db: DB,
    settings: SettingsDep,
    idempotency_key: IdemKey = None,
    label_schema: str | None = None,
    prompt_template: str | None = None,
    task: Annotated[str | None, Query(max_length=64, description="a task's name or name@version")] = None,
    label_method: LabelMethod | None = None,
    samples: Annotated[int | None, Query(ge=1, le=32)] = None,
    temperature: Annotated[float | None, Query(ge=0.0, le=2.0)] = None,
    top_p: Annotated[float | None, Query(gt=0.0, le=1.0)] = None,
    max_tokens: Annotated[int | None, Query(ge=1, le=4096)] = None,
    seed: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    mode: Annotated[JobMode | None, Query(description=MODE_DESCRIPTION)] = None,
    cascade_threshold: Annotated[float | None, Query(gt=0.0, le=1.0, description=THRESHOLD_DESCRIPTION)] = None,
    webhook_url: Annotated[str | None, Query(max_length=2048, description="told when the job ends")] = None,
) -> JSONResponse:
    """One pair per line. Bad lines do not stop the job: they go to its errors file with their line numbers."""
    if webhook_url is not None:
        try:
            check_url(webhook_url)
        except ValueError as exc:
            raise APIError(422, str(exc), param="webhook_url") from None
    options = AnnotateOptions(
        label_schema=label_schema,
        prompt_template=prompt_template,
        task=task,
        label_method=label_method,
        samples=samples,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=seed,
    )
    resolved = await run_in_threadpool(job_task, db, tenant, options)
    label = with_mode(label_request(options, settings, resolved), mode, cascade_threshold, settings)
    raw = await request.body()  # BodyLimitMiddleware caps it, chunked or not
    lines = raw.split(b"\n")
    batch = await run_in_threadpool(
        validate_jsonl,
        (ln.rstrip(b"\r") for ln in lines),
        limits=settings.pair_limits(),
        max_pairs=settings.max_pairs_per_job,
    )
    if len(batch.pairs) >= settings.max_pairs_per_job and any("too many pairs" in e.message for e in batch.errors):
        raise APIError(
            413,
            f"more than {settings.max_pairs_per_job} pairs (AGPO_MAX_PAIRS_PER_JOB); split the file",
            type="request_too_large",
        )
    if not batch.pairs:
        first = batch.errors[0] if batch.errors else None
        detail = (
            f"; line {first.row}" + (f", {first.field}" if first.field else "") + f": {first.message}" if first else ""
        )
        raise APIError(422, f"no valid pair in the upload{detail}", param=f"line {first.row}" if first else None)
    batch = await run_in_threadpool(fit_to_teacher, batch, label, settings, strict=False)
    return await run_in_threadpool(
        _new_job,
        db,
        request,
        tenant,
        batch=batch,
        label=label,
        settings=settings,
        idempotency_key=idempotency_key,
        metadata=None,
        webhook_url=webhook_url,
    )


def job_or_404(db: Any, tenant: str, job_id: str) -> Any:
    # An id holding a NUL or a lone surrogate names no job, and PostgreSQL refuses to compare text with one.
    job = None if unstorable(job_id) else job_store.get_job(db, tenant, job_id)
    if job is None:
        raise APIError(404, f"no job {job_id!r}", type="not_found_error", param="job_id")
    return job


@router.get("/jobs", response_model=JobList, responses=ERRORS, summary="List jobs, newest first")
def list_jobs(
    caller: CallerDep,  # reviewers too: the review page lists the jobs to review
    db: DB,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(max_length=40, description="last id of the previous page")] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
) -> dict[str, Any]:
    for name, value in (("after", after), ("status", status)):
        if value is not None and (problem := unstorable(value)):
            raise APIError(422, f"{name} {problem}", param=name)
    rows = job_store.list_jobs(db, caller.tenant, limit=limit + 1, after=after, status=status)
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "object": "list",
        "data": [job_store.job_view(j) for j in rows],
        "has_more": more,
        "last_id": rows[-1].id if rows else None,
    }


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    responses=ERRORS,
    summary="A job with its progress counts",
    operation_id="get_job",
)
def get_job(job_id: str, caller: CallerDep, db: DB) -> dict[str, Any]:
    return job_store.job_view(job_or_404(db, caller.tenant, job_id))


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobOut,
    responses=ERRORS,
    summary="Cancel; results so far stay",
    operation_id="cancel_job",
)
def cancel_job(job_id: str, tenant: Tenant, db: DB) -> dict[str, Any]:
    job = job_store.request_cancel(db, job_or_404(db, tenant, job_id))
    return job_store.job_view(job)


DOWNLOAD_PAGE = 1000


def paged(settings: Settings, job_id: str, page: Any) -> Iterator[list[dict[str, Any]]]:
    """A job's rows page by page (keyset on the input line), each page read in its own short session: a client
    that reads slowly, or never, holds no database connection while it waits."""
    after = 0
    while True:
        with session_scope(settings.database_url) as s:
            rows, cursor = page(s, job_id, after=after, limit=DOWNLOAD_PAGE)
        yield rows
        if cursor is None:
            return
        after = cursor


def jsonl_bytes(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows).encode("utf-8")


def _stream(settings: Settings, job_id: str, page: Any) -> Iterator[bytes]:
    for rows in paged(settings, job_id, page):
        yield jsonl_bytes(rows)


@router.get(
    "/jobs/{job_id}/results",
    responses={**ERRORS, 200: {"content": {"application/x-ndjson": {}}, "description": "one result line per pair"}},
    summary="All results as a JSONL file (streamed)",
    operation_id="get_job_results",
)
def results_file(job_id: str, tenant: Tenant, db: DB, settings: SettingsDep) -> StreamingResponse:
    job_or_404(db, tenant, job_id)
    return _jsonl_file(settings, job_id, job_store.results_page, "results")


def _jsonl_file(settings: Settings, job_id: str, rows: Any, kind: str) -> StreamingResponse:
    return StreamingResponse(
        _stream(settings, job_id, rows),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{job_id}-{kind}.jsonl"'},
    )


@router.get(
    "/jobs/{job_id}/results/page",
    response_model=ResultPage,
    responses=ERRORS,
    summary="Results, paged",
    operation_id="get_job_results_page",
)
def results_page(
    job_id: str,
    tenant: Tenant,
    db: DB,
    settings: SettingsDep,
    after: Annotated[int, Query(ge=0, le=2**31 - 1, description="input line to start after")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    include_pair: Annotated[bool, Query(description="add each line's pair (query, ad, meta) as `pair`")] = False,
) -> dict[str, Any]:
    job_or_404(db, tenant, job_id)
    data, cursor = job_store.results_page(
        db, job_id, after=after, limit=min(limit, settings.page_size_limit), include_pair=include_pair
    )
    return {"object": "list", "data": data, "has_more": cursor is not None, "next_after": cursor}


@router.get(
    "/jobs/{job_id}/errors",
    responses={**ERRORS, 200: {"content": {"application/x-ndjson": {}}, "description": "one line per problem"}},
    summary="Rejected input lines and failed pairs (JSONL, by line number)",
    operation_id="get_job_errors",
)
def errors_file(job_id: str, tenant: Tenant, db: DB, settings: SettingsDep) -> StreamingResponse:
    job_or_404(db, tenant, job_id)
    return _jsonl_file(settings, job_id, job_store.errors_page, "errors")
