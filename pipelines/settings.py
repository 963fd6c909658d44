"""Settings of every service process, read once from the environment (prefix ``AGPO_``).

The defaults are the embedded deployment: SQLite in the working directory, a Redis on localhost when one
answers (else an in-process worker thread), and the tiny teacher the project builds. Production overrides them
with environment variables (see ``.env.example`` and the README's configuration table).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from relevance.pairs import PairLimits


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
    teacher_backend: Literal["transformers", "openai", "vllm"] = "transformers"
    teacher_model: str = Field("models/relevance-teacher", description="model dir (transformers, vllm) or served name")
    teacher_url: str = Field("http://127.0.0.1:8001/v1", description="OpenAI-compatible base URL (backend openai)")
    teacher_api_key: str = "EMPTY"
    teacher_batch_size: int = Field(32, ge=1, description="prompts per teacher call")
    teacher_concurrency: int = Field(8, ge=1, description="concurrent HTTP requests (backend openai)")
    # annotation defaults
    samples: int = Field(4, ge=1, le=32, description="samples per pair (self-consistency)")
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(160, ge=1, le=4096)
    label_schema: str = "esci"
    prompt_template: str = "compact"
    unparseable_retries: int = Field(1, ge=0, le=5, description="re-asks for samples without a label")
    # jobs
    chunk_size: int = Field(200, ge=1, description="pairs per Celery task")
    lease_seconds: float = Field(600.0, gt=0, description="a chunk's lease; must exceed the longest chunk")
    requeue_after_seconds: float = Field(900.0, gt=0, description="re-send chunks queued this long without a claim")
    beat_interval_seconds: float = Field(30.0, gt=0)
    # limits
    max_request_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    max_pairs_per_job: int = Field(1_000_000, ge=1)
    max_sync_pairs: int = Field(16, ge=1)
    max_query_chars: int = 512
    max_title_chars: int = 512
    max_description_chars: int = 4096
    page_size_limit: int = Field(1000, ge=1)
    # auth: off only for a laptop (every request is tenant "default")
    auth: bool = True

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
