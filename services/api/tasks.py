"""Task routes: store a labelling task (a new version when it changed), list them, read one. The logic lives in
:mod:`pipelines.task_store`; a job names a task with ``task`` (see ``POST /v1/jobs``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from pipelines.task_store import StoredTask, get_task, list_tasks, parse_ref, store_task
from relevance.tasks import TaskError, TaskSpec
from services.api.deps import DB, Tenant
from services.api.errors import APIError
from services.api.jobs import ERRORS

router = APIRouter(prefix="/v1", tags=["tasks"])


class TaskOut(BaseModel):
    id: str | None = Field(None, description="this version's id; none for a built-in task")
    object: str = "task"
    name: str
    version: int
    versions: int | None = Field(None, description="how many versions the task has (in lists)")
    owner: str = Field(..., description="'tenant' or 'built-in'")
    language: str
    labels: list[str]
    prompt_version: str = Field(..., description="hash of the whole task, recorded with every label made under it")
    created_at: datetime | None = None
    spec: dict[str, Any]


class TaskList(BaseModel):
    object: str = "list"
    data: list[TaskOut]


def _out(stored: StoredTask, versions: int | None = None) -> dict[str, Any]:
    task = stored.task
    return TaskOut(
        id=task.id,
        name=task.name,
        version=task.version,
        versions=versions,
        owner="built-in" if task.id is None else "tenant",
        language=task.spec.language,
        labels=task.schema.names,
        prompt_version=task.prompt_version,
        created_at=stored.created_at,
        spec=task.spec.model_dump(mode="json", exclude_none=True),
    ).model_dump(mode="json")


@router.post(
    "/tasks",
    status_code=201,
    response_model=TaskOut,
    responses={**ERRORS, 200: {"model": TaskOut, "description": "the same task as its latest version"}},
    summary="Store a labelling task",
)
def create_task(body: TaskSpec, tenant: Tenant, db: DB) -> JSONResponse:
    """A new version when ``body`` differs from the task's latest version (201), else that version (200)."""
    try:
        stored, created = store_task(db, tenant, body)
    except TaskError as exc:
        raise APIError(422, str(exc), param=exc.field) from None
    content = _out(stored)
    db.commit()
    return JSONResponse(status_code=201 if created else 200, content=content)


@router.get("/tasks", response_model=TaskList, responses=ERRORS, summary="List the tasks this key can use")
def tasks(tenant: Tenant, db: DB) -> dict[str, Any]:
    return {"object": "list", "data": [_out(stored, n) for stored, n in list_tasks(db, tenant)]}


@router.get("/tasks/{name}", response_model=TaskOut, responses=ERRORS, summary="A task (latest version by default)")
def task(
    name: str,
    tenant: Tenant,
    db: DB,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> dict[str, Any]:
    try:
        ref, at = parse_ref(name)
    except TaskError as exc:
        raise APIError(422, str(exc), param="name") from None
    stored = get_task(db, tenant, ref, version if version is not None else at)
    if stored is None:
        raise APIError(404, f"no task {name!r}" + (f" version {version}" if version else ""), type="not_found_error")
    return _out(stored)
