"""Celery tasks: one per chunk, and the periodic sweep. Thin shells over :mod:`pipelines.chunks`.

They are ``shared_task``s, so they bind to whichever :class:`pipelines.celery_app.AnnotationCelery` runs them and
read that app's settings.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from celery import Task, shared_task

from pipelines.celery_app import PROCESS_CHUNK, SWEEP_STALE_CHUNKS
from pipelines.chunks import stale_chunks
from pipelines.db.session import session_scope
from pipelines.dispatch import send_webhooks
from pipelines.jobs import expire_overdue_batches
from pipelines.runtime import run_chunk, worker_name

log = logging.getLogger(__name__)


@shared_task(bind=True, name=PROCESS_CHUNK)
def process_chunk_task(self: Task, chunk_id: int) -> dict[str, object]:
    report = run_chunk(self.app.settings, chunk_id, worker_name())
    return asdict(report) if report is not None else {}


@shared_task(bind=True, name=SWEEP_STALE_CHUNKS)
def sweep_task(self: Task) -> int:
    settings = self.app.settings
    with session_scope(settings.database_url) as session:
        if expired := expire_overdue_batches(session):
            log.info("expired %d batches past their completion window", expired)
    if sent := send_webhooks(settings):
        log.info("sent %d job webhooks", sent)
    ids = stale_chunks(settings.database_url, settings.requeue_after_seconds)
    for chunk_id in ids:
        self.app.send_task(PROCESS_CHUNK, args=[chunk_id], retry=False)
    if ids:
        log.info("re-sent %d stale chunks", len(ids))
    return len(ids)
