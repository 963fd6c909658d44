"""An OpenAI-compatible HTTP server over the in-process (transformers) teacher, for CPU deployments.

It speaks the subset of the OpenAI API that the ``openai`` teacher backend and the official clients use:
``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions`` (n, temperature, top_p, max_tokens,
stop, seed), plus ``GET /health``. Errors have OpenAI's shape, ``{"error": {"message", "type", "param",
"code"}}``, and name the offending parameter; parameters the server does not implement are refused rather than
silently ignored. Generation runs in the threadpool, so a long request never blocks the event loop.

Run it with ``uvicorn services.teacher_server:app_from_env --factory --port 8001`` (or ``agpo serve teacher``);
the model comes from ``AGPO_TEACHER_MODEL`` (see :class:`TeacherServerSettings`).
"""

from __future__ import annotations

import hmac
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.concurrency import run_in_threadpool

from pipelines.backends.base import Decoding, Generation, Messages, TeacherError


class TextTeacher(Protocol):
    """What the server needs of a backend: the teacher interface plus generation from raw text prompts."""

    @property
    def teacher_id(self) -> str: ...

    def generate(self, prompts: Sequence[Messages], decoding: Decoding) -> list[Generation]: ...

    def generate_text(self, prompts: Sequence[str], decoding: Decoding) -> list[Generation]: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


class TeacherServerSettings(BaseSettings):
    """The server's settings, from ``AGPO_TEACHER_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="AGPO_TEACHER_", env_file=None, extra="ignore")

    model: str = Field(
        "models/relevance-teacher-smollm2-more",
        description="local HF model directory, or a LoRA adapter directory (merged into its base on load), to serve",
    )
    served_name: str | None = Field(None, description="model id clients ask for; default: the directory's name")
    device: str = Field("cpu", description="torch device: cpu, cuda, cuda:1")
    dtype: str | None = Field(None, description="torch dtype name (float32, bfloat16, auto); default: float32")
    # Not batch_size: AGPO_TEACHER_BATCH_SIZE is the workers' prompts per call, and both read one .env.
    generate_batch: int = Field(64, ge=1, description="sequences (prompts x n) per generate call")
    torch_threads: int | None = Field(None, ge=1, description="torch intra-op threads; one per process on busy CPUs")
    max_n: int = Field(64, ge=1, description="largest n a request may ask for")
    max_tokens: int = Field(2048, ge=1, description="largest max_tokens a request may ask for")
    max_prompts: int = Field(64, ge=1, description="most prompts in one /v1/completions request")
    default_max_tokens: int = Field(256, ge=1, description="max_tokens of a chat request that sets none")
    # The variable the openai teacher backend sends its key from, so one .env configures both ends.
    api_key: str | None = Field(
        None, description="bearer key every /v1 request must carry (as `vllm serve --api-key`); unset: none"
    )


# -- errors -------------------------------------------------------------------------------------------------------


class TeacherAPIError(Exception):
    """An error the teacher server answers in OpenAI's shape (not the annotation API's services.api.errors.APIError)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status)


_UNION_BRANCH = re.compile(r"str|int|float|bool|[\w-]+\[.*\]")


def _validation_error(exc: RequestValidationError) -> TeacherAPIError:
    """The first validation problem as a 400 naming its parameter (``messages.0.role``, ``n``...)."""
    first = exc.errors()[0]
    # pydantic names the union branch it tried ("prompt.list[str].0"); clients know the parameter, not the branch.
    loc = [str(part) for part in first.get("loc", ()) if part != "body" and not _UNION_BRANCH.fullmatch(str(part))]
    param = ".".join(loc) or None
    if first.get("type") == "extra_forbidden":
        message = f"unsupported parameter {param!r}: this server does not implement it"
    elif first.get("type") == "json_invalid":
        return TeacherAPIError(400, f"the request body is not valid JSON: {first.get('msg', '')}", code="json_invalid")
    elif first.get("type") == "missing":
        message = f"missing required parameter {param!r}"
    else:
        message = (
            f"invalid {param or 'request'}: {str(first.get('msg', 'invalid value')).removeprefix('Value error, ')}"
        )
    return TeacherAPIError(400, message, param=param, code=first.get("type"))


# -- request and response models ----------------------------------------------------------------------------------


def _encodable(value: Any) -> Any:
    """Refuse text a tokenizer cannot take: a lone surrogate (a JSON ``\\ud800`` escape) is not a character."""
    for text in [value] if isinstance(value, str) else value if isinstance(value, list) else []:
        if isinstance(text, str):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as error:
                raise ValueError(f"holds a lone surrogate at character {error.start}, which is not text") from None
    return value


class SamplingFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="the served model id, as listed by GET /v1/models")
    n: int = Field(1, ge=1, description="completions per prompt")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="0 decodes greedily (n identical answers)")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling mass")
    stop: str | list[str] | None = Field(
        None, description="up to 16 strings; generation ends at the first, which is not returned"
    )
    seed: int | None = Field(None, description="same seed, same request -> same completions")
    stream: bool = Field(False, description="streaming is not supported; must be false")
    user: str | None = Field(None, description="accepted and ignored")
    # Accepted at their no-op values only, because several clients send them by default.
    presence_penalty: float = Field(0.0, description="not supported: only 0")
    frequency_penalty: float = Field(0.0, description="not supported: only 0")
    logprobs: bool | int | None = Field(None, description="not supported: only null, false or 0")

    def unsupported(self) -> str | None:
        """The first parameter set to a value this server cannot honour."""
        for name in ("presence_penalty", "frequency_penalty", "logprobs"):
            if getattr(self, name):
                return name
        return None

    @field_validator("stop")
    @classmethod
    def _at_most_16_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        _encodable(value)
        stops = [value] if isinstance(value, str) else value or []
        if len(stops) > 16:
            raise ValueError(f"at most 16 stop strings, got {len(stops)}")
        if any(not s for s in stops):
            raise ValueError("a stop string must not be empty")
        return value

    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())


class CompletionRequest(SamplingFields):
    """``POST /v1/completions``: raw text in, the model's continuation out (no chat template)."""

    prompt: str | list[str] = Field(description="a prompt or a list of prompts; token-id prompts are not supported")
    max_tokens: int = Field(16, ge=1, description="tokens to generate at most (OpenAI's default: 16)")

    _prompt_is_text = field_validator("prompt")(_encodable)


class TextPart(BaseModel):
    type: Literal["text"] = "text"
    text: str

    _is_text = field_validator("text")(_encodable)


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str | list[TextPart] = Field(description="text, or a list of text parts (joined)")

    _is_text = field_validator("content")(_encodable)

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class ChatRequest(SamplingFields):
    """``POST /v1/chat/completions``: messages in, rendered with the model's chat template (or plain text)."""

    messages: list[ChatMessage] = Field(min_length=1, description="the conversation so far")
    max_tokens: int | None = Field(None, ge=1, description="tokens to generate at most; default: the server's")
    max_completion_tokens: int | None = Field(None, ge=1, description="newer name of max_tokens; wins when both set")


# -- the app ------------------------------------------------------------------------------------------------------


def _usage(generations: list[Generation]) -> dict[str, int]:
    prompt = sum(g.prompt_tokens for g in generations)
    completion = sum(c.completion_tokens for g in generations for c in g.completions)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class _Server:
    """The routes' shared state and the checks they have in common."""

    def __init__(self, backend: TextTeacher, served_name: str, settings: TeacherServerSettings) -> None:
        self.backend = backend
        self.served_name = served_name
        self.settings = settings
        self.revision = getattr(backend, "revision", None) or backend.teacher_id.partition("@")[2] or "unknown"
        self.created = int(time.time())

    def model_card(self) -> dict[str, Any]:
        # "revision" is ours (OpenAIBackend reads it into teacher_id); "root" names the weights as vLLM does.
        return {
            "id": self.served_name,
            "object": "model",
            "created": self.created,
            "owned_by": "agpo",
            "root": self.backend.teacher_id,
            "revision": self.revision,
            "max_model_len": getattr(self.backend, "max_model_len", None),
        }

    def check(self, request: SamplingFields, max_tokens: int) -> Decoding:
        if request.model != self.served_name:
            raise TeacherAPIError(
                404,
                f"model {request.model!r} does not exist; this server serves {self.served_name!r}",
                type="invalid_request_error",
                param="model",
                code="model_not_found",
            )
        if request.stream:
            raise TeacherAPIError(400, "streaming is not supported: send stream=false", param="stream")
        if unsupported := request.unsupported():
            raise TeacherAPIError(
                400, f"{unsupported} is not supported by this server; leave it unset", param=unsupported
            )
        if request.n > self.settings.max_n:
            raise TeacherAPIError(400, f"n must be <= {self.settings.max_n}, got {request.n}", param="n")
        if max_tokens > self.settings.max_tokens:
            raise TeacherAPIError(
                400, f"max_tokens must be <= {self.settings.max_tokens}, got {max_tokens}", param="max_tokens"
            )
        return Decoding(
            n=request.n,
            temperature=request.temperature,
            top_p=request.top_p,
            max_tokens=max_tokens,
            stop=request.stops(),
            seed=request.seed,
        )

    async def run(self, fn: Any, prompts: list[Any], decoding: Decoding) -> list[Generation]:
        try:
            return await run_in_threadpool(fn, prompts, decoding)
        except ValueError as error:  # the backend's word on a prompt (too long for the context, empty)
            raise TeacherAPIError(400, str(error), param="prompt") from error
        except TeacherError as error:
            raise TeacherAPIError(503, str(error), type="server_error", code="teacher_unavailable") from error

    def response(self, kind: str, generations: list[Generation]) -> dict[str, Any]:
        choices = []
        for generation in generations:
            for completion in generation.completions:
                choice: dict[str, Any] = {
                    "index": len(choices),
                    "finish_reason": completion.finish_reason,
                    "logprobs": None,
                    # Not in OpenAI's schema (clients keep unknown fields): the exact per-answer token count.
                    "completion_tokens": completion.completion_tokens,
                }
                if kind == "chat":
                    choice["message"] = {"role": "assistant", "content": completion.text}
                else:
                    choice["text"] = completion.text
                choices.append(choice)
        return {
            "id": f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex}",
            "object": "chat.completion" if kind == "chat" else "text_completion",
            "created": int(time.time()),
            "model": self.served_name,
            "system_fingerprint": self.revision,
            "choices": choices,
            "usage": _usage(generations),
        }


def _load_backend(model_dir: str | Path, settings: TeacherServerSettings) -> TextTeacher:
    from pipelines.backends.transformers_backend import TransformersBackend

    return TransformersBackend(
        model_dir,
        device=settings.device,
        batch_size=settings.generate_batch,
        dtype=settings.dtype,
        torch_threads=settings.torch_threads,
    )


def create_app(
    backend: TextTeacher | str | Path,
    *,
    served_name: str | None = None,
    settings: TeacherServerSettings | None = None,
) -> FastAPI:
    """The server app over ``backend``: a loaded backend, or a model directory loaded with ``settings``.

    ``served_name`` is the model id clients send (default: the teacher's name, the part of ``teacher_id`` before
    ``@``). A backend loaded here is closed when the app shuts down; one passed in stays the caller's.
    """
    settings = settings or TeacherServerSettings()
    owned = isinstance(backend, str | Path)
    teacher = _load_backend(backend, settings) if owned else backend
    server = _Server(teacher, served_name or settings.served_name or teacher.teacher_id.partition("@")[0], settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            teacher.close()

    app = FastAPI(
        title="AGPO relevance teacher (OpenAI-compatible)",
        version="1",
        description=__doc__,
        lifespan=lifespan,
    )
    app.state.server = server

    @app.exception_handler(TeacherAPIError)
    async def _api_error(_: Request, exc: TeacherAPIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(exc).response()

    if settings.api_key:
        expected = f"Bearer {settings.api_key}".encode()

        @app.middleware("http")
        async def _authenticate(request: Request, call_next):  # type: ignore[no-untyped-def]
            given = request.headers.get("authorization", "").encode()
            if request.url.path.startswith("/v1") and not hmac.compare_digest(given, expected):
                return TeacherAPIError(
                    401,
                    "missing or incorrect API key: send 'Authorization: Bearer <key>' (AGPO_TEACHER_API_KEY)",
                    code="invalid_api_key",
                ).response()
            return await call_next(request)

    @app.get("/health", summary="Liveness: the teacher is loaded and answers")
    async def health() -> dict[str, str]:
        try:
            teacher.ping()
        except TeacherError as error:
            raise TeacherAPIError(503, str(error), type="server_error", code="teacher_unavailable") from error
        return {"status": "ok", "model": server.served_name, "teacher_id": teacher.teacher_id}

    @app.get("/v1/models", summary="The served model, with its weights' revision")
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [server.model_card()]}

    @app.get("/v1/models/{model}", summary="One served model")
    async def get_model(model: str) -> dict[str, Any]:
        if model != server.served_name:
            raise TeacherAPIError(
                404,
                f"model {model!r} does not exist",
                type="invalid_request_error",
                param="model",
                code="model_not_found",
            )
        return server.model_card()

    @app.post("/v1/completions", summary="Continue text prompts (n completions per prompt)")
    async def completions(request: CompletionRequest) -> dict[str, Any]:
        decoding = server.check(request, request.max_tokens)
        prompts = [request.prompt] if isinstance(request.prompt, str) else request.prompt
        if not prompts:
            raise TeacherAPIError(400, "prompt must not be an empty list", param="prompt")
        if len(prompts) > settings.max_prompts:
            raise TeacherAPIError(
                400, f"at most {settings.max_prompts} prompts per request, got {len(prompts)}", param="prompt"
            )
        return server.response("text", await server.run(teacher.generate_text, prompts, decoding))

    @app.post("/v1/chat/completions", summary="Answer a conversation (n completions)")
    async def chat_completions(request: ChatRequest) -> dict[str, Any]:
        max_tokens = request.max_completion_tokens or request.max_tokens or settings.default_max_tokens
        decoding = server.check(request, max_tokens)
        messages = [{"role": m.role, "content": m.text()} for m in request.messages]
        return server.response("chat", await server.run(teacher.generate, [messages], decoding))

    return app


def app_from_env() -> FastAPI:
    """The app for ``uvicorn services.teacher_server:app_from_env --factory``: settings from ``AGPO_TEACHER_*``."""
    settings = TeacherServerSettings()
    return create_app(settings.model, settings=settings)
