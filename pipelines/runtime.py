"""The process's teacher: created once from the settings, shared by every chunk the process runs."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from pathlib import Path

from pipelines.backends.base import TeacherBackend, TeacherError
from pipelines.settings import Settings

log = logging.getLogger(__name__)
_lock = threading.Lock()
_backends: dict[tuple[str, str, str], TeacherBackend] = {}


def backend_options(settings: Settings) -> dict[str, object]:
    if settings.teacher_backend == "openai":
        return {
            "base_url": settings.teacher_url,
            "api_key": settings.teacher_api_key,
            "revision": settings.teacher_revision,
            "max_concurrency": settings.teacher_concurrency,
            "timeout": settings.teacher_timeout,
            "max_retries": settings.teacher_max_retries,
            "structured_outputs": json.loads(settings.teacher_structured_outputs)
            if settings.teacher_structured_outputs
            else None,
        }
    dtype = {} if settings.teacher_dtype == "auto" else {"dtype": settings.teacher_dtype}
    if settings.teacher_backend == "transformers":
        # The backend counts sequences per generate call: every prompt brings `samples` of them.
        return {"batch_size": settings.teacher_batch_size * settings.samples, **dtype}
    return dtype


def get_backend(settings: Settings) -> TeacherBackend:
    from pipelines.backends import create_backend

    key = (settings.teacher_backend, settings.teacher_model, settings.teacher_url)
    with _lock:
        if key not in _backends:
            _backends[key] = create_backend(
                settings.teacher_backend, settings.teacher_model, **backend_options(settings)
            )
        return _backends[key]


def configured_teacher_id(settings: Settings) -> str:
    """The configured teacher's identity, decided here without loading it, as a job records it.

    A local model dir (transformers, vllm) gives the id its backend reports (:func:`local_teacher_id`). A served
    model is ``<model>@<AGPO_TEACHER_REVISION>``, else ``<model>@served``: its revision is then the server's to
    tell, and the worker's backend asks for it, so result lines may carry a more precise id. Raises
    :class:`TeacherError` naming the setting when there is no model where the settings point.
    """
    from pipelines.backends import SERVED_REVISION, local_teacher_id, teacher_identity

    if settings.teacher_backend == "openai":
        return teacher_identity(settings.teacher_model, settings.teacher_revision or SERVED_REVISION)
    path = Path(settings.teacher_model)
    try:
        return local_teacher_id(path)
    except (FileNotFoundError, NotADirectoryError):
        raise TeacherError(
            f"teacher model {path} not found: set AGPO_TEACHER_MODEL or build it (agpo teacher build)"
        ) from None


def check_teacher(settings: Settings) -> str:
    """Readiness of the configured teacher without loading it: a model dir exists, or the server answers."""
    if settings.teacher_backend == "openai":
        import httpx

        try:
            # The key a `vllm serve --api-key` server checks on every route, /models included.
            auth = {"Authorization": f"Bearer {settings.teacher_api_key}"}
            r = httpx.get(settings.teacher_url.rstrip("/") + "/models", headers=auth, timeout=3.0)
            r.raise_for_status()
        except httpx.HTTPError as exc:
            raise TeacherError(f"teacher server {settings.teacher_url} does not answer: {exc}") from exc
        return "openai server answers"
    from llm.bases import is_model_dir

    path = Path(settings.teacher_model)
    if not is_model_dir(path):
        raise TeacherError(
            f"teacher model dir {path} not found (AGPO_TEACHER_MODEL); build it with `agpo teacher build`"
        )
    return f"model dir {path}"


def worker_name() -> str:
    """Who holds a chunk's lease: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


# A message runs chunks until one ends; giving way, or losing a race for a claim, takes another turn.
MAX_TURNS = 64


def run_chunk(settings: Settings, chunk_id: int, worker: str):  # type: ignore[no-untyped-def]
    """Run the chunk that fair dispatch picks now (:mod:`pipelines.fairness`), the message's own ``chunk_id`` when
    nothing is claimable, with this process's settings and teacher; after a chunk gives way, the next pick.

    Every message runs at most one chunk to its end, so messages never run short of open chunks.
    """
    from pipelines.cascade import load_student
    from pipelines.chunks import process_chunk
    from pipelines.db.models import utcnow
    from pipelines.db.session import session_scope
    from pipelines.fairness import pick_chunk
    from pipelines.logs import log_context

    report = None
    for _ in range(MAX_TURNS):
        with session_scope(settings.database_url) as s:
            target = pick_chunk(s, utcnow()) or chunk_id
        with log_context(chunk_id=target):
            report = process_chunk(
                settings.database_url,
                target,
                worker,
                lambda: get_backend(settings),
                lease_seconds=settings.lease_seconds,
                batch_size=settings.teacher_batch_size,
                unparseable_retries=settings.unparseable_retries,
                slice_seconds=settings.fair_slice_seconds,
                get_student=(
                    (lambda: load_student(settings.student_model or "", settings.student_variant))
                    if settings.student_model
                    else None
                ),
            )
            log.info("chunk %s: %s (%d labelled, %d failed)", target, report.outcome, report.completed, report.failed)
        raced = report.outcome == "skipped" and target != chunk_id
        if report.outcome != "yielded" and not raced:
            break
    return report
