"""Request and response bodies of the annotation API, with the examples the OpenAPI docs show."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from relevance.label_scores import LabelMethod
from relevance.pairs import DEFAULT_LIMITS, unstorable

# OpenAI's Batch API limits on metadata: a job's metadata comes back on every poll, so it stays small.
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512

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


def _text(max_chars: int, description: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_chars, "pattern": r"\S", "description": description}


# The pair contract as OpenAPI shows it (default limits; a deployment may set others). The routes take pairs as
# plain objects and validate each one themselves, so that an error names ``pairs[i]`` and a JSONL upload can
# send one bad line to the errors file instead of refusing the whole body.
PAIR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["custom_id", "query", "ad"],
    "properties": {
        "custom_id": _text(DEFAULT_LIMITS.custom_id, "your id for the pair, unique within a job"),
        "query": _text(DEFAULT_LIMITS.query, "the search query"),
        "ad": {
            "type": "object",
            "additionalProperties": False,
            "required": ["title"],
            "properties": {
                "title": _text(DEFAULT_LIMITS.title, "the ad's title"),
                "description": _text(DEFAULT_LIMITS.description, "shown to the teacher, truncated for the student"),
                "brand": _text(DEFAULT_LIMITS.brand, "brand"),
                "category": _text(DEFAULT_LIMITS.category, "category"),
                "attributes": {
                    "type": "object",
                    "maxProperties": DEFAULT_LIMITS.attributes,
                    "additionalProperties": {"type": "string", "maxLength": DEFAULT_LIMITS.attribute_value},
                },
            },
        },
        "meta": {"type": "object", "description": "returned with the result as it was sent"},
    },
}


class AnnotateOptions(BaseModel):
    """How to label; every field has a server-side default (see the configuration table)."""

    model_config = ConfigDict(extra="forbid")

    label_schema: str | None = Field(None, description="label schema: esci (default), graded, binary")
    prompt_template: str | None = Field(None, description="prompt template: compact (tiny teacher) or full")
    task: str | dict[str, Any] | None = Field(
        None,
        description="a labelling task (labels, guidelines, examples, prompt) by name or name@version "
        "(GET /v1/tasks), or one written out here (stored as the tenant's, as POST /v1/tasks does); instead of "
        "label_schema and prompt_template",
    )
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
        json_schema_extra={"examples": [[EXAMPLE_PAIR]], "items": PAIR_SCHEMA, "minItems": 1},
    )


JobMode = Literal["teacher", "cascade"]
MODE_DESCRIPTION = (
    "teacher (default): the teacher labels every pair; cascade: the distilled student (AGPO_STUDENT_MODEL) labels "
    "the pairs it is sure of and the teacher the rest, each result line saying which (source)"
)
THRESHOLD_DESCRIPTION = (
    "mode cascade: the student confidence from which the student's label is kept (default AGPO_CASCADE_THRESHOLD)"
)


class CreateJobRequest(AnnotateRequest):
    mode: JobMode | None = Field(None, description=MODE_DESCRIPTION)
    cascade_threshold: float | None = Field(None, gt=0.0, le=1.0, description=THRESHOLD_DESCRIPTION)
    metadata: dict[str, str] | None = Field(
        None,
        description=f"free key/values returned with the job: at most {MAX_METADATA_KEYS} keys of "
        f"{MAX_METADATA_KEY_CHARS} characters, values of {MAX_METADATA_VALUE_CHARS}",
    )

    webhook_url: str | None = Field(
        None,
        description="an http(s) URL told when the job ends (POST, type job.completed or job.cancelled, the job as "
        "data; signed as Standard Webhooks sign with AGPO_WEBHOOK_SECRET)",
    )

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        return check_metadata(v)

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, v: str | None) -> str | None:
        from pipelines.webhooks import check_url

        return None if v is None else check_url(v)


def check_metadata(v: dict[str, str] | None) -> dict[str, str] | None:
    """OpenAI's limits on metadata, and text that can be stored; a ValueError names the entry."""
    if v is None:
        return None
    if len(v) > MAX_METADATA_KEYS:
        raise ValueError(f"metadata has {len(v)} keys; the limit is {MAX_METADATA_KEYS}")
    for key, value in v.items():
        if problem := unstorable(key) or unstorable(value):
            raise ValueError(f"metadata entry {key[:40]!r} {problem}")
        if len(key) > MAX_METADATA_KEY_CHARS:
            raise ValueError(
                f"metadata key {key[:40]!r} is {len(key)} characters; the limit is {MAX_METADATA_KEY_CHARS}"
            )
        if len(value) > MAX_METADATA_VALUE_CHARS:
            raise ValueError(
                f"metadata[{key[:40]!r}] is {len(value)} characters; the limit is {MAX_METADATA_VALUE_CHARS}"
            )
    return v


class CreateBatchRequest(BaseModel):
    """``POST /v1/batches``, as the OpenAI Batch API takes it."""

    model_config = ConfigDict(extra="forbid")

    input_file_id: str = Field(..., max_length=40, description="a file uploaded with purpose batch")
    endpoint: str = Field(
        ...,
        max_length=64,
        description="/v1/annotate (each line's body is one pair) or /v1/chat/completions (a chat completion request)",
    )
    completion_window: str = Field("24h", max_length=16, description="24h")
    metadata: dict[str, str] | None = Field(
        None,
        description="free key/values returned with the batch; 'task' names a labelling task (name or name@v), "
        "'webhook_url' is told when the batch ends (batch.completed, batch.cancelled, batch.expired)",
    )

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        return check_metadata(v)


class FileOut(BaseModel):
    id: str
    object: str = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str = "processed"


class BatchRequestCounts(BaseModel):
    total: int
    completed: int
    failed: int


class BatchOut(BaseModel):
    id: str
    object: str = "batch"
    endpoint: str
    errors: Any = None
    input_file_id: str
    completion_window: str
    status: str = Field(
        ..., description="in_progress, finalizing, completed, failed, expired, cancelling, cancelled (OpenAI's names)"
    )
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: BatchRequestCounts
    metadata: dict[str, Any] | None = None
    model: str | None = None


class BatchList(BaseModel):
    object: str = "list"
    data: list[BatchOut]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool


class RequestCounts(BaseModel):
    total: int
    completed: int
    failed: int
    cached: int
    cancelled: int
    pending: int
    rejected_lines: int


class TaskRef(BaseModel):
    id: str | None = Field(None, description="the stored version's id; none for a built-in task")
    name: str
    version: int


class JobOut(BaseModel):
    id: str
    object: str = "annotation.job"
    status: str = Field(..., description="validating, queued, in_progress, completed, failed, cancelling, cancelled")
    label_schema: str
    prompt_template: str
    prompt_version: str
    task: TaskRef | None = None
    teacher: str
    samples: int
    mode: JobMode = "teacher"
    decoding: dict[str, Any]
    request_counts: RequestCounts
    teacher_prompts: int
    metadata: dict[str, Any] | None = None
    webhook_url: str | None = None
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
