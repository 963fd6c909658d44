"""Request-scoped dependencies: settings, a DB session, the caller's tenant, label options."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from pipelines.annotate import LabelRequest
from pipelines.backends.base import Decoding
from pipelines.db.session import session_scope
from pipelines.keys import Caller, authenticate
from pipelines.settings import Settings
from pipelines.task_store import resolve_task
from relevance.prompts import template_names
from relevance.schemas import get_schema, schema_names
from relevance.tasks import Task, TaskError, parse_task
from services.api.errors import APIError
from services.api.schemas import AnnotateOptions

bearer = HTTPBearer(auto_error=False, description="an API key from `agpo keys create`")


async def request_settings(request: Request) -> Settings:
    """The app's settings (``app.state.settings``), as a dependency; not :func:`pipelines.settings.get_settings`."""
    # async: trivial dependencies run on the event loop instead of costing a threadpool hop per request
    return request.app.state.settings


def get_db(settings: Annotated[Settings, Depends(request_settings)]) -> Iterator[Session]:
    with session_scope(settings.database_url) as session:
        yield session


def get_caller(
    settings: Annotated[Settings, Depends(request_settings)],
    db: Annotated[Session, Depends(get_db, scope="function")],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    reviewer: Annotated[str | None, Header(alias="X-Reviewer", include_in_schema=False)] = None,
) -> Caller:
    if not settings.auth:
        # No keys on a laptop: whoever calls is tenant default, and names themselves for reviews.
        return Caller("default", (reviewer or "").strip()[:128] or "reviewer")
    if credentials is None or not credentials.credentials:
        raise APIError(401, "missing API key: send 'Authorization: Bearer <key>'", type="authentication_error")
    caller = authenticate(db, credentials.credentials)
    # End the read: the connection goes back to the pool while the route waits on its client (an upload).
    db.commit()
    if caller is None:
        raise APIError(401, "invalid or revoked API key", type="authentication_error")
    return caller


def get_tenant(request: Request, caller: Annotated[Caller, Depends(get_caller)]) -> str:
    """The tenant of a key that may run jobs; a reviewer's key is refused here."""
    if caller.role != "client":
        raise APIError(
            403,
            f"this is a reviewer's key: it reviews jobs (/review, /v1/jobs/{{id}}/queue) but cannot call "
            f"{request.method} {request.url.path}",
            type="permission_error",
        )
    return caller.tenant


Tenant = Annotated[str, Depends(get_tenant)]
# Any key, reviewers' included: the review routes.
CallerDep = Annotated[Caller, Depends(get_caller)]
# Function scope: the session (and its pooled connection) is given back when the route returns, not after the
# response is sent, so a streamed download to a slow client holds none.
DB = Annotated[Session, Depends(get_db, scope="function")]
SettingsDep = Annotated[Settings, Depends(request_settings)]


def job_task(db: Session, tenant: str, options: AnnotateOptions) -> Task | None:
    """The task the request names or inlines (an inline one is stored as the tenant's), or None; 422 naming the
    field when it does not exist or does not work."""
    if options.task is None:
        return None
    if options.label_schema or options.prompt_template:
        raise APIError(
            422,
            "task: a task brings its own labels and prompt; leave label_schema and prompt_template out",
            param="task",
        )
    try:
        ref = options.task if isinstance(options.task, str) else parse_task(options.task)
        return resolve_task(db, tenant, ref)
    except TaskError as exc:
        field = exc.field if exc.field.startswith("task") else f"task.{exc.field}"
        raise APIError(422, f"{field}: {str(exc).split(': ', 1)[1]}", param=field) from None


def label_request(options: AnnotateOptions, settings: Settings, task: Task | None = None) -> LabelRequest:
    """Options from the request over the server's defaults; unknown schema or template names are 422s."""
    if task is not None:
        return replace(label_request(options, settings), task=task)
    schema = options.label_schema or settings.label_schema
    if schema not in schema_names():
        raise APIError(
            422, f"label_schema: unknown schema {schema!r}; known: {', '.join(schema_names())}", param="label_schema"
        )
    template = options.prompt_template or settings.prompt_template
    if template not in template_names():
        raise APIError(
            422,
            f"prompt_template: unknown template {template!r}; known: {', '.join(template_names())}",
            param="prompt_template",
        )
    method = options.label_method or settings.label_method
    if method != "sample" and settings.teacher_backend != "transformers":
        raise APIError(
            422,
            f"label_method: {method!r} needs the transformers teacher backend; this server's "
            f"{settings.teacher_backend} backend can only sample",
            param="label_method",
        )
    if method != "sample" and (options.samples or 1) > 1:
        raise APIError(
            422, f"samples: label_method {method!r} reads one answer per pair; leave samples out", param="samples"
        )
    sampled = method == "sample"
    decoding = Decoding(
        n=(options.samples or settings.samples) if sampled else 1,
        temperature=(settings.temperature if options.temperature is None else options.temperature) if sampled else 0.0,
        top_p=options.top_p or settings.top_p,
        max_tokens=options.max_tokens or settings.max_tokens,
        seed=options.seed,
        method=method,
    )
    return LabelRequest(get_schema(schema), template, decoding, settings.unparseable_retries)


def with_mode(label: LabelRequest, mode: str | None, threshold: float | None, settings: Settings) -> LabelRequest:
    """A job's request in its mode: a cascade needs a student on this server and a threshold."""
    if (mode or "teacher") == "teacher":
        if threshold is not None:
            raise APIError(422, "cascade_threshold: only a job in mode 'cascade' takes one", param="cascade_threshold")
        return label
    if not settings.student_model:
        raise APIError(
            422,
            "mode: 'cascade' needs a distilled student; this server has none (set AGPO_STUDENT_MODEL to an export "
            "dir of `agpo student export`)",
            param="mode",
        )
    from student.modelio import read_meta

    try:
        student_labels = set(read_meta(settings.student_model).get("labels") or ())
    except (OSError, ValueError):
        raise APIError(
            503, f"the student export {settings.student_model} cannot be read", type="service_unavailable"
        ) from None
    if not student_labels <= set(label.schema.names):
        raise APIError(
            422,
            f"label_schema: the student labels with {', '.join(sorted(student_labels))}, not the labels of schema "
            f"{label.schema.name!r}; a cascade job uses the student's schema",
            param="label_schema",
        )
    chosen = settings.cascade_threshold if threshold is None else threshold
    if chosen is None:
        raise APIError(
            422,
            "cascade_threshold: a cascade job needs one, and this server sets no AGPO_CASCADE_THRESHOLD; choose it "
            "on dev with `agpo student cascade`",
            param="cascade_threshold",
        )
    return replace(label, cascade_threshold=chosen)
