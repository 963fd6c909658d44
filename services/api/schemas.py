"""Request and response bodies of the annotation API, with the examples the OpenAPI docs show."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from relevance.label_scores import LabelMethod

EXAMPLE_PAIR = {
    "custom_id": "q1-ad7",
    "query": "samsung galaxy s23 case black",
    "ad": {
        "title": "Spigen Tough Armor case for Galaxy S23, black",
        "brand": "Spigen",
        "category": "Phone cases",
        "attributes": {"colour": "black"},
    },
}


class AnnotateOptions(BaseModel):
    """How to label; every field has a server-side default (see the configuration table)."""

    model_config = ConfigDict(extra="forbid")

    label_schema: str | None = Field(None, description="label schema: esci (default), graded, binary")
    prompt_template: str | None = Field(None, description="prompt template: compact (tiny teacher) or full")
    label_method: LabelMethod | None = Field(
        None,
        description="sample: the label is the majority of `samples` answers; score: one greedy answer, the label "
        "and confidence from the labels' probabilities at its label line; overlap: rule-written overlap "
        "reasoning, then the labels' probabilities (no generation)",
    )
    samples: int | None = Field(None, ge=1, le=32, description="samples per pair; the label is their majority")
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="makes sampling reproducible")


class AnnotateRequest(AnnotateOptions):
    pairs: list[dict[str, Any]] = Field(
        ...,
        description="pairs {custom_id, query, ad: {title, description?, brand?, category?, attributes?}, meta?}",
        json_schema_extra={"examples": [[EXAMPLE_PAIR]]},
    )


class CreateJobRequest(AnnotateRequest):
    metadata: dict[str, str] | None = Field(None, description="free key/values returned with the job")


class RequestCounts(BaseModel):
    total: int
    completed: int
    failed: int
    cached: int
    cancelled: int
    pending: int
    rejected_lines: int


class JobOut(BaseModel):
    id: str
    object: str = "annotation.job"
    status: str = Field(..., description="validating, queued, in_progress, completed, failed, cancelling, cancelled")
    label_schema: str
    prompt_template: str
    prompt_version: str
    teacher: str
    samples: int
    decoding: dict[str, Any]
    request_counts: RequestCounts
    teacher_prompts: int
    metadata: dict[str, Any] | None = None
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error: str | None = None


class JobList(BaseModel):
    object: str = "list"
    data: list[JobOut]
    has_more: bool
    last_id: str | None = None


class ResultLine(BaseModel):
    model_config = ConfigDict(extra="allow")

    custom_id: str
    status: str
    label: str | None = None
    confidence: float | None = None
    distribution: dict[str, float] | None = None
    reasoning: str | None = None
    samples: int | None = None
    teacher: str | None = None
    prompt_version: str | None = None
    cached: bool | None = None
    error: str | None = None


class ResultPage(BaseModel):
    object: str = "list"
    data: list[ResultLine]
    has_more: bool
    next_after: int | None = Field(None, description="pass as `after` to read the next page")


class AnnotateResponse(BaseModel):
    object: str = "list"
    data: list[ResultLine]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
