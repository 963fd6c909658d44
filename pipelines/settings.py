"""Settings of every service process, read once from the environment (prefix ``AGPO_``).

The defaults are the embedded deployment: SQLite in the working directory, a Redis on localhost when one
answers (else an in-process worker thread), and the committed SmolLM2 teacher, labelling as its model card says.
Production overrides them with environment variables (see ``.env.example`` and the README's configuration table).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from relevance.label_scores import LabelMethod
from relevance.pairs import PairLimits

DEFAULT_TEACHER = "models/relevance-teacher-smollm2-more"
MODEL_CARD = "model_card.json"


def teacher_card(model: str) -> dict[str, Any]:
    """The model card of a teacher directory, or {} for a served name or a directory without one."""
    path = Path(model) / MODEL_CARD
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGPO_", env_file=None, extra="ignore")

    # storage and queue
    database_url: str = Field(
        "sqlite:///agpo.db", description="SQLAlchemy URL: sqlite:///file.db or postgresql+psycopg://..."
    )
    broker_url: str = Field("redis://127.0.0.1:6379/0", description="Celery broker (Redis)")
    queue: Literal["auto", "celery", "local"] = Field(
        "auto",
        description="celery: send chunks to Celery workers; local: a worker thread in the API process; "
        "auto: celery when the broker answers, else local",
    )
    # teacher
    teacher_backend: Literal["transformers", "openai", "vllm"] = Field(
        "transformers", description="transformers (in-process), openai (any OpenAI-compatible server), vllm (GPU)"
    )
    teacher_model: str = Field(
        DEFAULT_TEACHER,
        description="model dir (transformers, vllm) or served name; models/relevance-teacher is the tiny teacher "
        "built from scratch on synthetic pairs",
    )
    teacher_url: str = Field("http://127.0.0.1:8001/v1", description="OpenAI-compatible base URL (backend openai)")
    teacher_api_key: str = Field("EMPTY", description="bearer key for the teacher server (backend openai)")
    teacher_revision: str | None = Field(
        None,
        description="the served weights' revision (backend openai), part of the label-cache key: change it "
        "whenever other weights are served under the same name; default: the server's /v1/models revision "
        "(the teacher server publishes one), else 'served'",
    )
    teacher_timeout: float = Field(120.0, gt=0, description="seconds per teacher HTTP request (backend openai)")
    teacher_max_retries: int = Field(3, ge=0, description="retries with backoff per request (backend openai)")
    teacher_structured_outputs: str | None = Field(
        None, description='JSON sent as vLLM structured_outputs, e.g. {"regex": "..."}'
    )
    teacher_batch_size: int = Field(32, ge=1, description="prompts per teacher call (x samples = sequences)")
    teacher_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="weights' dtype (transformers, vllm); auto: as stored; `agpo teacher bench` compares "
        "float32 and bfloat16 on this CPU",
    )
    teacher_concurrency: int = Field(8, ge=1, description="concurrent HTTP requests (backend openai)")
    teacher_tokenizer: str | None = Field(
        None,
        description="tokenizer dir or hub id of a served teacher (backend openai): with teacher_context, pairs "
        "whose prompt cannot fit are refused at submission; a local teacher's own tokenizer is used without it",
    )
    teacher_context: int | None = Field(
        None, ge=16, description="the teacher's context in tokens; default: a local model's config"
    )
    # student scoring (POST /v1/score)
    student_model: str | None = Field(
        None, description="an export dir of `agpo student export`; unset: /v1/score is 503"
    )
    student_variant: Literal["auto", "bf16", "int8", "fp32"] = Field(
        "auto",
        description="auto: the fastest variant that passed its parity gate at export (bf16 before int8 on a CPU "
        "with AMX, int8 first elsewhere); or bf16, int8, fp32",
    )
    max_score_pairs: int = Field(256, ge=1, description="pairs per POST /v1/score")
    score_batch_pairs: int = Field(
        64, ge=1, description="the most pairs scored in one forward, gathered across concurrent /v1/score requests"
    )
    score_threads: int = Field(1, ge=1, description="the student engine's threads in the API process")
    cascade_threshold: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="a cascade job's default threshold: the student's label where its confidence reaches it, the "
        "teacher's elsewhere; choose it with `agpo student cascade` (unset: cascade jobs must give one)",
    )
    # annotation defaults
    label_method: LabelMethod | None = Field(
        None,
        description="sample: `samples` answers voted; score: one greedy answer, the labels' probabilities at its "
        "label line; overlap: rule-written overlap reasoning, then the labels' probabilities (transformers only); "
        "default: the teacher's model card (label_method) on the transformers backend, else sample",
    )
    samples: int = Field(4, ge=1, le=32, description="samples per pair (self-consistency)")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="sampling temperature (0: greedy)")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling")
    max_tokens: int = Field(160, ge=1, le=4096, description="tokens per teacher answer")
    label_schema: str = Field("esci", description="default label schema: esci, graded, binary, wands")
    prompt_template: str | None = Field(
        None,
        description="default prompt template: compact, full, brief; default: the template the teacher was trained "
        "on (its model card's prompt_template), else compact",
    )
    unparseable_retries: int = Field(1, ge=0, le=5, description="re-asks for samples without a label")
    # jobs
    chunk_size: int = Field(200, ge=1, description="pairs per Celery task")
    lease_seconds: float = Field(600.0, gt=0, description="a chunk's lease; must exceed the longest chunk")
    requeue_after_seconds: float = Field(900.0, gt=0, description="re-send chunks queued this long without a claim")
    beat_interval_seconds: float = Field(
        30.0, gt=0, description="how often the sweep looks for stale chunks and sends due webhooks"
    )
    webhook_secret: str | None = Field(
        None,
        description="Standard Webhooks secret (whsec_<base64>) that signs job webhooks of tenants without their own "
        "(`agpo keys webhook-secret --tenant T`); unset: those are sent unsigned",
    )
    webhook_max_attempts: int = Field(8, ge=1, le=50, description="tries per webhook before it is given up")
    webhook_allowed_hosts: str = Field(
        "",
        description="comma-separated hosts (or *.domain) job webhooks may call; empty: any host whose every address "
        "is public (never loopback, private or link-local: a webhook is a request the tenant aims from inside)",
    )
    fair_slice_seconds: float = Field(
        10.0,
        gt=0,
        description="fair dispatch: a tenant's chunk gives way between teacher batches to a tenant with fewer chunks "
        "running, or one fewer and nothing claimed for this long (round-robin by time slices)",
    )
    worker_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="CPU niceness a Celery worker takes at start: labelling is batch work, so on a machine it shares "
        "with the API the API's reads go first (0: no change)",
    )
    tenant_max_pending_pairs: int | None = Field(
        None, ge=1, description="pairs a tenant may have waiting or running; a job beyond it is a 429; unset: no quota"
    )
    # limits
    max_request_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="request body limit (413 above)")
    max_pairs_per_job: int = Field(1_000_000, ge=1, description="pairs per job (413 above)")
    max_sync_pairs: int = Field(16, ge=1, description="pairs per POST /v1/annotate")
    max_query_chars: int = Field(512, ge=1, description="query length limit (422 above)")
    max_title_chars: int = Field(512, ge=1, description="ad title length limit (422 above)")
    max_description_chars: int = Field(4096, ge=1, description="ad description length limit (422 above)")
    page_size_limit: int = Field(1000, ge=1, description="largest page of GET /v1/jobs/{id}/results/page")
    log_format: Literal["text", "json"] = Field(
        "text", description="service logs: text, or json (one object per line, with job_id, chunk_id and tenant)"
    )
    auth: bool = Field(True, description="bearer API keys; false only on a laptop (every caller is tenant default)")

    @model_validator(mode="after")
    def _teacher_defaults(self) -> Settings:
        # A teacher answers best in the prompt it was trained on, and only a teacher that learnt to score labels
        # can use a scored method: both defaults come from its card, so changing AGPO_TEACHER_MODEL is enough.
        card = teacher_card(self.teacher_model)
        if self.prompt_template is None:
            self.prompt_template = card.get("prompt_template") or "compact"
        if self.label_method is None:
            method = card.get("label_method") if self.teacher_backend == "transformers" else None
            self.label_method = method or "sample"
        return self

    @model_validator(mode="after")
    def _scoring_backend(self) -> Settings:
        if self.label_method != "sample" and self.teacher_backend != "transformers":
            raise ValueError(
                f"AGPO_LABEL_METHOD={self.label_method} needs AGPO_TEACHER_BACKEND=transformers (the "
                f"{self.teacher_backend} backend can only sample); set AGPO_LABEL_METHOD=sample"
            )
        return self

    def pair_limits(self) -> PairLimits:
        return PairLimits(
            query=self.max_query_chars, title=self.max_title_chars, description=self.max_description_chars
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
