"""The annotation API's application factory."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from pipelines.db.session import migrate
from pipelines.dispatch import make_dispatcher
from pipelines.prompt_fit import prompt_meter
from pipelines.settings import Settings, get_settings
from services.api import batches, jobs, ops, review, score, tasks
from services.api.errors import install
from services.api.middleware import BodyLimitMiddleware, MetricsMiddleware

log = logging.getLogger(__name__)

DESCRIPTION = """
Label (query, ad) pairs with the relevance teacher. Send a few pairs to `POST /v1/annotate` and get labels in
the response; send many as a job (`POST /v1/jobs` with JSON, `POST /v1/jobs/jsonl` with a JSONL file), follow
it with `GET /v1/jobs/{id}` and download `GET /v1/jobs/{id}/results`. Every result carries the majority label of
n teacher samples, its vote share as confidence, and the vote distribution.

Review the labels a human should check at `/review` (a page on this server): the queue of a job ordered by
uncertainty, reviews per reviewer, agreement with the teacher, and the reviewed pairs as gold.

Authenticate with `Authorization: Bearer <key>` (`agpo keys create --tenant NAME`; a reviewer's key,
`--role reviewer`, reviews but cannot run jobs).
"""


def create_app(settings: Settings | None = None, *, run_migrations: bool = True) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_migrations:
            try:
                migrate(settings.database_url)
            except Exception as exc:  # start anyway: /readyz reports the DB, and requests get 503s
                log.error("database migration failed: %s", exc)
        app.state.dispatcher = make_dispatcher(settings)
        # Load the teacher's tokenizer now, not in the first job's request (transformers takes seconds to import).
        threading.Thread(target=prompt_meter, args=(settings,), name="agpo-prompt-meter", daemon=True).start()
        try:
            yield
        finally:
            app.state.dispatcher.close()
            if (batcher := getattr(app.state, "score_batcher", None)) is not None:
                await batcher.close()

    app = FastAPI(
        title="AGPO Relevance annotation API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics = ops.make_registry(settings)
    app.state.registry = metrics.registry
    install(app)
    app.include_router(jobs.router)
    app.include_router(score.router)
    app.include_router(batches.router)
    app.include_router(review.router)
    app.include_router(tasks.router)
    app.include_router(ops.router)
    # The last added runs first: the body limit holds for every request, metrics included.
    app.add_middleware(MetricsMiddleware, requests=metrics.requests, latency=metrics.latency)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_request_bytes)
    return app
