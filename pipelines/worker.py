"""The Celery app: one task per chunk, a periodic sweep for stale chunks. Thin shells over pipelines.chunks.

Delivery settings that make a killed worker lose nothing: ``acks_late`` (a message is acknowledged only after
its chunk is written), ``reject_on_worker_lost`` (a pool child that dies puts its message back), prefetch 1 (a
worker holds one chunk at a time), and a Redis visibility timeout far above the longest chunk, so a chunk in
progress is not handed to a second worker by the broker while the first still holds its lease.

Start a worker: ``agpo worker`` (or ``celery -A pipelines.worker worker --pool solo``); the sweep: ``agpo beat``.
"""

from __future__ import annotations

import logging

from celery import Celery

from pipelines.settings import Settings, get_settings

log = logging.getLogger(__name__)
QUEUE = "annotate"


def make_celery(settings: Settings) -> Celery:
    app = Celery("agpo", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": int(max(3600, 4 * settings.lease_seconds))},
        worker_hijack_root_logger=False,
        beat_schedule={
            "sweep-stale-chunks": {"task": "agpo.sweep", "schedule": settings.beat_interval_seconds},
        },
    )
    return app


app = make_celery(get_settings())


@app.task(name="agpo.process_chunk")
def process_chunk_task(chunk_id: int) -> dict[str, object]:
    from dataclasses import asdict

    from pipelines.dispatch import worker_name
    from pipelines.runtime import run_chunk

    report = run_chunk(get_settings(), chunk_id, worker_name())
    log.info("chunk %s: %s", chunk_id, report.outcome)
    return asdict(report)


@app.task(name="agpo.sweep")
def sweep_task() -> int:
    from pipelines.chunks import stale_chunks

    s = get_settings()
    ids = stale_chunks(s.database_url, s.requeue_after_seconds)
    for chunk_id in ids:
        process_chunk_task.apply_async(args=[chunk_id], retry=False)
    if ids:
        log.info("re-sent %d stale chunks", len(ids))
    return len(ids)
