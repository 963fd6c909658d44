"""``POST /v1/score``: the distilled student scores pairs in milliseconds (ONNX or OpenVINO on CPU, loaded once,
pairs of concurrent requests scored together by :mod:`services.api.batcher`)."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from pipelines.settings import Settings
from relevance.pairs import validate_records
from services.api.batcher import MicroBatcher
from services.api.deps import SettingsDep, Tenant
from services.api.errors import APIError
from services.api.schemas import EXAMPLE_PAIR, PAIR_SCHEMA, ErrorResponse

router = APIRouter(prefix="/v1", tags=["scoring"])
_lock = threading.Lock()


class ScoreRequest(BaseModel):
    pairs: list[dict[str, Any]] = Field(
        ..., json_schema_extra={"examples": [[EXAMPLE_PAIR]], "items": PAIR_SCHEMA, "minItems": 1}
    )


class ScoreLine(BaseModel):
    custom_id: str
    label: str
    expected_gain: float = Field(..., description="sum of class probabilities x the schema's gains")
    probabilities: dict[str, float]
    model_version: str


class ScoreResponse(BaseModel):
    object: str = "list"
    data: list[ScoreLine]


def get_scorer(request: Request, settings: Settings) -> Any:
    """The process's scorer, loaded on first use; a missing export is a 503 that says what to set."""
    scorer = getattr(request.app.state, "scorer", None)
    if scorer is not None:
        return scorer
    if not settings.student_model:
        raise APIError(
            503,
            "no student model configured: set AGPO_STUDENT_MODEL to an export dir (agpo student export)",
            type="service_unavailable",
        )
    with _lock:
        if getattr(request.app.state, "scorer", None) is None:
            from student.scorer import Scorer, pick_variant

            try:
                variant = pick_variant(settings.student_model, settings.student_variant)
                request.app.state.scorer = Scorer(settings.student_model, variant, threads=settings.score_threads)
            except (FileNotFoundError, ValueError) as exc:
                raise APIError(503, f"student model cannot be loaded: {exc}", type="service_unavailable") from None
    return request.app.state.scorer


async def get_batcher(request: Request, settings: Settings) -> MicroBatcher[Any, Any]:
    """The process's batcher over its scorer; the scorer loads in a thread, not on the event loop."""
    batcher = getattr(request.app.state, "score_batcher", None)
    if batcher is None:
        scorer = await run_in_threadpool(get_scorer, request, settings)
        # No await between this check and the assignment: one batcher per process.
        batcher = getattr(request.app.state, "score_batcher", None)
        if batcher is None:
            batcher = MicroBatcher(
                scorer.score,
                max_pairs=settings.score_batch_pairs,
                on_batch=request.app.state.metrics.score_batch_pairs.observe,
            )
            request.app.state.score_batcher = batcher
    return batcher


@router.post(
    "/score",
    response_model=ScoreResponse,
    summary="Score pairs with the distilled student",
    responses={413: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
async def score(body: ScoreRequest, request: Request, tenant: Tenant, settings: SettingsDep) -> dict[str, Any]:
    if len(body.pairs) > settings.max_score_pairs:
        raise APIError(
            413,
            f"pairs: {len(body.pairs)} pairs; the limit is {settings.max_score_pairs}",
            type="request_too_large",
            param="pairs",
        )
    batch = validate_records(enumerate(body.pairs), limits=settings.pair_limits())
    if batch.errors:
        first = batch.errors[0]
        where = f"pairs[{first.row}]" + (f".{first.field}" if first.field else "")
        raise APIError(422, f"{where}: {first.message}", param=where)
    batcher = await get_batcher(request, settings)
    scores = await batcher.submit(batch.pairs)
    return {
        "object": "list",
        "data": [{"custom_id": p.custom_id, **s.to_dict()} for p, s in zip(batch.pairs, scores, strict=True)],
    }
