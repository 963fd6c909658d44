"""Getting chunks to workers: Celery over Redis, or a worker thread inside the API process.

Both run the same :func:`pipelines.chunks.process_chunk`, so the embedded default (no Redis) and production
behave alike: leases, exactly-once writes and the stale-chunk sweep work the same way.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Protocol

from pipelines.celery_app import PROCESS_CHUNK, make_celery
from pipelines.chunks import mark_dispatched, stale_chunks
from pipelines.runtime import run_chunk, worker_name
from pipelines.settings import Settings

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    kind: str

    def dispatch(self, chunk_ids: list[int]) -> None: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


class CeleryDispatcher:
    kind = "celery"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = make_celery(settings)

    def dispatch(self, chunk_ids: list[int]) -> None:
        # A broker that is down loses nothing: the chunks stay queued in the DB and the beat sweep sends them.
        try:
            for chunk_id in chunk_ids:
                self.app.send_task(PROCESS_CHUNK, args=[chunk_id], retry=False)
        except Exception as exc:  # any broker error leaves the chunk to the sweep
            log.warning("broker unavailable, %d chunks left to the sweep: %s", len(chunk_ids), exc)
            return
        mark_dispatched(self.settings.database_url, chunk_ids)

    def ping(self) -> None:
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)

    def close(self) -> None:
        pass


def send_webhooks(settings: Settings) -> int:
    """The due job webhooks, sent (the sweep's second duty)."""
    from pipelines.webhooks import allowed_hosts, deliver_due

    return deliver_due(
        settings.database_url,
        settings.webhook_secret,
        allowed=allowed_hosts(settings.webhook_allowed_hosts),
        max_attempts=settings.webhook_max_attempts,
    )


class LocalDispatcher:
    """One daemon thread that runs chunks in order, and a sweeper that re-sends stale ones."""

    kind = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queue: queue.Queue[int | None] = queue.Queue()
        self.stop = threading.Event()
        self.worker = threading.Thread(target=self._run, name="agpo-local-worker", daemon=True)
        self.sweeper = threading.Thread(target=self._sweep, name="agpo-local-sweeper", daemon=True)
        self.worker.start()
        self.sweeper.start()

    def dispatch(self, chunk_ids: list[int]) -> None:
        mark_dispatched(self.settings.database_url, chunk_ids)
        for chunk_id in chunk_ids:
            self.queue.put(chunk_id)

    def _run(self) -> None:
        while (chunk_id := self.queue.get()) is not None:
            try:
                run_chunk(self.settings, chunk_id, worker_name())
            except Exception:  # the lease expires and the sweep retries the chunk
                log.exception("chunk %s failed", chunk_id)

    def _sweep(self) -> None:
        while not self.stop.wait(self.settings.beat_interval_seconds):
            try:
                for chunk_id in stale_chunks(self.settings.database_url, self.settings.requeue_after_seconds):
                    self.queue.put(chunk_id)
                send_webhooks(self.settings)
            except Exception:
                log.exception("stale-chunk sweep failed")

    def ping(self) -> None:
        if not self.worker.is_alive():
            raise RuntimeError("the local worker thread has stopped")

    def close(self) -> None:
        self.stop.set()
        self.queue.put(None)


def broker_reachable(url: str, timeout: float = 1.0) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout).ping())
    except Exception:
        return False


def make_dispatcher(settings: Settings) -> Dispatcher:
    kind = settings.queue
    if kind == "auto":
        kind = "celery" if broker_reachable(settings.broker_url) else "local"
        log.info("queue: %s", kind)
    return CeleryDispatcher(settings) if kind == "celery" else LocalDispatcher(settings)
