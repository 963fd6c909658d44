"""Operations: liveness, readiness (database, broker, teacher) and Prometheus metrics.

Job-level metrics are read from the database at scrape time, so they count the work of every worker process,
not only what this API process saw.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select

from pipelines.db.models import Chunk, Job, LabelCacheEntry, utcnow
from pipelines.db.session import ping, session_scope
from pipelines.runtime import check_teacher
from pipelines.settings import Settings

router = APIRouter(tags=["operations"])
RATE_WINDOW_S = 60


class JobMetrics:
    """A Prometheus collector over the jobs tables."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Any]:
        try:
            with session_scope(self.settings.database_url) as s:
                done, failed, cached, prompts, seconds = s.execute(
                    select(
                        func.coalesce(func.sum(Job.completed), 0),
                        func.coalesce(func.sum(Job.failed), 0),
                        func.coalesce(func.sum(Job.cached), 0),
                        func.coalesce(func.sum(Job.teacher_prompts), 0),
                        func.coalesce(func.sum(Job.teacher_seconds), 0.0),
                    )
                ).one()
                by_tenant = s.execute(
                    select(Job.tenant, Chunk.status, func.coalesce(func.sum(Chunk.size), 0))
                    .join(Job, Job.id == Chunk.job_id)
                    .where(Chunk.status.in_(("queued", "running")))
                    .group_by(Job.tenant, Chunk.status)
                ).all()
                recent = s.scalar(
                    select(func.coalesce(func.sum(Chunk.completed + Chunk.failed), 0)).where(
                        Chunk.finished_at >= utcnow() - timedelta(seconds=RATE_WINDOW_S)
                    )
                )
                jobs = dict(s.execute(select(Job.status, func.count()).group_by(Job.status)).all())
                cache_size = s.scalar(select(func.count()).select_from(LabelCacheEntry))
        except Exception:  # a scrape must not fail because the DB is down; /readyz says so
            return
        yield CounterMetricFamily("agpo_pairs_labelled", "pairs labelled (all jobs)", value=done)
        yield CounterMetricFamily("agpo_pairs_failed", "pairs the teacher could not label", value=failed)
        yield CounterMetricFamily("agpo_cache_hits", "pairs answered from the label cache", value=cached)
        yield CounterMetricFamily("agpo_teacher_prompts", "prompts sent to the teacher by workers", value=prompts)
        yield CounterMetricFamily(
            "agpo_teacher_seconds", "seconds workers spent waiting for the teacher", value=seconds
        )
        depth = {state: 0.0 for state in ("queued", "running")}
        t = GaugeMetricFamily(
            "agpo_tenant_queue_depth_pairs", "pairs in open chunks, by tenant", labels=["tenant", "state"]
        )
        for tenant, state, pairs in by_tenant:
            depth[state] += float(pairs)
            t.add_metric([tenant, state], float(pairs))
        g = GaugeMetricFamily("agpo_queue_depth_pairs", "pairs in open chunks", labels=["state"])
        for state, pairs in depth.items():
            g.add_metric([state], pairs)
        yield g
        yield t
        yield GaugeMetricFamily(
            "agpo_pairs_per_second",
            f"pairs finished per second over the last {RATE_WINDOW_S} s",
            value=float(recent) / RATE_WINDOW_S,
        )
        j = GaugeMetricFamily("agpo_jobs", "jobs by status", labels=["status"])
        for status, count in sorted(jobs.items()):
            j.add_metric([status], float(count))
        yield j
        yield GaugeMetricFamily("agpo_label_cache_entries", "entries in the label cache", value=float(cache_size or 0))


REQUEST_LABELS = ("method", "route", "status")


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    score_batch_pairs: Histogram


def make_registry(settings: Settings) -> Metrics:
    """The app's registry: job metrics read from the database, request counts and latencies by method, route
    template and status (filled by :class:`services.api.middleware.MetricsMiddleware`), and the pairs in each
    forward of ``/v1/score``'s batcher."""
    registry = CollectorRegistry()
    registry.register(JobMetrics(settings))  # type: ignore[arg-type]
    requests = Counter("agpo_requests", "API requests", REQUEST_LABELS, registry=registry)
    latency = Histogram(
        "agpo_request_seconds",
        "API request latency",
        REQUEST_LABELS,
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    )
    score_batch = Histogram(
        "agpo_score_batch_pairs",
        "pairs per student forward, gathered across /v1/score requests",
        registry=registry,
        buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    )
    return Metrics(registry, requests, latency, score_batch)


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database, broker and teacher", responses={503: {"description": "not ready"}})
async def readyz(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    checks: dict[str, dict[str, Any]] = {}

    def run(name: str, fn: Any) -> None:
        t0 = time.perf_counter()
        try:
            detail = fn()
            checks[name] = {"ok": True, "detail": detail or "ok"}
        except Exception as exc:  # every failure becomes a readable reason
            checks[name] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:300]}
        checks[name]["ms"] = round(1000 * (time.perf_counter() - t0), 1)

    dispatcher = request.app.state.dispatcher
    await run_in_threadpool(run, "database", lambda: ping(settings.database_url))
    await run_in_threadpool(run, "broker", lambda: dispatcher.ping() or dispatcher.kind)
    await run_in_threadpool(run, "teacher", lambda: check_teacher(settings))
    ok = all(c["ok"] for c in checks.values())
    return JSONResponse(
        status_code=200 if ok else 503, content={"status": "ready" if ok else "not ready", "checks": checks}
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
