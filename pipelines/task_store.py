"""Stored labelling tasks: one row per (tenant, name, version), built-in tasks beside them.

Storing a task that differs from its latest version makes the next version; storing the same task again returns
the version it already is, so a team can run ``agpo tasks create`` on every deploy. Versions are never changed
after they are written: a job keeps a copy of the one it was made under (``jobs.task``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipelines.db.models import TaskRecord
from relevance.pairs import unstorable
from relevance.tasks import Task, TaskError, TaskSpec, builtin_tasks, check_task

BUILTIN = "built-in"


@dataclass(frozen=True)
class StoredTask:
    task: Task
    owner: str  # the tenant, or BUILTIN
    created_at: datetime | None = None


@cache
def _builtins() -> dict[str, Task]:
    return {name: check_task(spec, 1) for name, spec in builtin_tasks().items()}


def _stored(row: TaskRecord) -> StoredTask:
    return StoredTask(Task(TaskSpec.model_validate(row.spec), row.version, row.id), row.tenant, row.created_at)


def _latest(session: Session, tenant: str, name: str) -> TaskRecord | None:
    return session.scalar(
        select(TaskRecord)
        .where(TaskRecord.tenant == tenant, TaskRecord.name == name)
        .order_by(TaskRecord.version.desc())
        .limit(1)
    )


def store_task(session: Session, tenant: str, spec: TaskSpec) -> tuple[StoredTask, bool]:
    """``(task, created)``: a new version when ``spec`` differs from the latest, else the latest itself.

    :class:`TaskError` when the task does not work (a label, an example or the prompt; see
    :func:`relevance.tasks.check_task`) or takes a built-in task's name.
    """
    if spec.name in _builtins():
        raise TaskError("name", f"{spec.name!r} is a built-in task; give yours another name")
    candidate = check_task(spec)
    for _ in range(3):
        latest = _latest(session, tenant, spec.name)
        if (
            latest is not None
            and latest.prompt_version == candidate.prompt_version
            and latest.spec == spec.model_dump(mode="json")
        ):
            return _stored(latest), False
        row = TaskRecord(
            id="task_" + uuid.uuid4().hex[:24],
            tenant=tenant,
            name=spec.name,
            version=(latest.version if latest else 0) + 1,
            spec=spec.model_dump(mode="json"),
            prompt_version=candidate.prompt_version,
        )
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()  # another request stored this version first: compare with it
            continue
        return _stored(row), True
    raise RuntimeError(f"task {spec.name!r}: versions kept changing while storing it")


def get_task(session: Session, tenant: str, name: str, version: int | None = None) -> StoredTask | None:
    """The tenant's task (its latest version unless ``version``), or the built-in one of that name."""
    if name in _builtins():
        task = _builtins()[name]
        return StoredTask(task, BUILTIN) if version in (None, task.version) else None
    query = select(TaskRecord).where(TaskRecord.tenant == tenant, TaskRecord.name == name)
    if version is None:
        row = session.scalar(query.order_by(TaskRecord.version.desc()).limit(1))
    else:
        row = session.scalar(query.where(TaskRecord.version == version))
    return _stored(row) if row is not None else None


def list_tasks(session: Session, tenant: str) -> list[tuple[StoredTask, int]]:
    """The built-in tasks, then the tenant's by name: each at its latest version, with how many versions it has."""
    out = [(StoredTask(task, BUILTIN), 1) for task in _builtins().values()]
    counts = dict(
        session.execute(
            select(TaskRecord.name, func.count()).where(TaskRecord.tenant == tenant).group_by(TaskRecord.name)
        ).all()
    )
    for name in sorted(counts):
        stored = get_task(session, tenant, name)
        assert stored is not None
        out.append((stored, counts[name]))
    return out


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``name`` or ``name@version``; :class:`TaskError` on anything else."""
    if problem := unstorable(ref):
        raise TaskError("task", problem)
    name, _, version = ref.strip().partition("@")
    if not name or (version and not version.isdigit()):
        raise TaskError("task", f"{ref!r} is not a task name or name@version (e.g. esci-zh, mine@2)")
    return name, int(version) if version else None


def resolve_task(session: Session, tenant: str, ref: str | TaskSpec) -> Task:
    """The task a job names (``name``, ``name@version``) or inlines (stored first, like ``POST /v1/tasks``)."""
    if isinstance(ref, TaskSpec):
        return store_task(session, tenant, ref)[0].task
    name, version = parse_ref(ref)
    stored = get_task(session, tenant, name, version)
    if stored is None:
        at = f" version {version}" if version is not None else ""
        raise TaskError("task", f"no task {name!r}{at}; `agpo tasks list` shows the tasks this key can use")
    return stored.task
