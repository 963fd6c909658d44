"""The Celery app: its delivery settings, its queue and its task names. The tasks live in :mod:`pipelines.tasks`.

Delivery settings that make a killed worker lose nothing: ``acks_late`` (a message is acknowledged only after
its chunk is written), ``reject_on_worker_lost`` (a pool child that dies puts its message back), prefetch 1 (a
worker holds one chunk at a time), and a Redis visibility timeout far above the longest chunk, so a chunk in
progress is not handed to a second worker by the broker while the first still holds its lease.

An app is built from the settings it is given (:func:`make_celery`) and carries them to its tasks, so the API's
dispatcher and a worker started with other settings never share hidden state. ``celery -A pipelines.celery_app``
finds ``app``, built from the environment on first use. Start a worker: ``agpo worker`` (or ``celery -A
pipelines.celery_app worker --pool solo``); the sweep: ``agpo beat``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from celery import Celery

from pipelines.settings import Settings, get_settings

QUEUE = "annotate"
PROCESS_CHUNK = "agpo.process_chunk"
SWEEP_STALE_CHUNKS = "agpo.sweep"


class AnnotationCelery(Celery):
    """A Celery app that knows the settings it was built from (its tasks read them as ``self.app.settings``)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__("agpo", broker=settings.broker_url, set_as_current=False, include=["pipelines.tasks"])
        self.settings = settings


def make_celery(settings: Settings) -> AnnotationCelery:
    app = AnnotationCelery(settings)
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
            "sweep-stale-chunks": {"task": SWEEP_STALE_CHUNKS, "schedule": settings.beat_interval_seconds},
        },
    )
    return app


@cache
def _app_from_environment() -> AnnotationCelery:
    return make_celery(get_settings())


def __getattr__(name: str) -> Any:
    # ``celery -A pipelines.celery_app`` looks up ``app``; importing this module builds nothing.
    if name == "app":
        return _app_from_environment()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
