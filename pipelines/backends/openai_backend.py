"""The teacher over HTTP: any OpenAI-compatible server (``vllm serve``, our CPU teacher server, a hosted API).

``generate`` is synchronous because its callers (Celery tasks) are; inside, one request per prompt runs on a
private event loop in a background thread, at most ``max_concurrency`` at a time. The loop lives as long as the
backend so the HTTP connection pool is reused, and callers on any thread (or inside a running loop) can share it.

Retries are the ``openai`` client's own: connection errors, timeouts, 408/409/429 and 5xx are retried with
capped exponential backoff and jitter, after the server's ``retry-after-ms`` or ``Retry-After`` (seconds or an
HTTP date) when it sends one; any other error fails at once, since sending the same request again cannot fix
it. An httpx event hook counts every attempt, so errors say how many were made and ``requests_sent`` is what
the server saw. A 400/413/422 on a generation request refuses that prompt alone (:class:`PromptError`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import httpx
import openai

from pipelines.backends import SERVED_REVISION, plain_prompt, teacher_identity
from pipelines.backends.base import Completion, Decoding, Generation, Messages, PromptError, TeacherError

T = TypeVar("T")
log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 409, 429})
# What a server answers for a prompt it will never take (vLLM: 400 for a prompt beyond max_model_len).
REFUSAL_STATUS = frozenset({400, 413, 422})

# The HTTP attempts of the call running in this task; the client's request hook adds to it.
_attempts: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("teacher_attempts", default=None)


def is_retryable(error: BaseException) -> bool:
    """Whether the client retries ``error`` (its own rule, restated for the error messages)."""
    if isinstance(error, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code in RETRYABLE_STATUS or error.status_code >= 500
    return False


def _server_message(error: openai.APIStatusError) -> str:
    body = error.body if isinstance(error.body, dict) else {}
    return str(body.get("message") or error.message)


def _split_tokens(total: int, texts: Sequence[str]) -> list[int]:
    """Share ``total`` out over the answers in proportion to their lengths (the sum stays exact)."""
    weights = [max(len(t), 1) for t in texts]
    shares = [total * w // sum(weights) for w in weights]
    shares[0] += total - sum(shares)
    return shares


class OpenAIBackend:
    """A :class:`~pipelines.backends.base.TeacherBackend` for a model behind an OpenAI-compatible API.

    ``use_chat`` picks ``/v1/chat/completions`` (the server applies the chat template) or ``/v1/completions``
    (we send :func:`~pipelines.backends.plain_prompt`). ``structured_outputs`` is sent as vLLM's extra request
    field of that name, e.g. ``{"regex": "(.|\\n)*Label: (Exact|Irrelevant)"}`` or ``{"choice": [...]}``.
    ``revision`` names the weights; when absent it is read from the server's ``/v1/models`` entry (our teacher
    server publishes one) and is ``served`` otherwise.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "EMPTY",
        max_concurrency: int = 8,
        timeout: float = 60,
        max_retries: int = 3,
        use_chat: bool = True,
        structured_outputs: dict[str, Any] | None = None,
        revision: str | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.base_url = base_url
        self.model = model
        self.max_retries = max_retries
        self.use_chat = use_chat
        self.structured_outputs = structured_outputs
        self._revision = revision
        self._client_options = {"base_url": base_url, "api_key": api_key, "timeout": timeout}
        self._max_concurrency = max_concurrency
        self._closed = False
        self._start_lock = threading.Lock()
        self._start_loop()
        self.requests_sent = 0  # every HTTP attempt, retries included: what the server saw

    async def _count_attempt(self, _: httpx.Request) -> None:
        self.requests_sent += 1
        if (count := _attempts.get()) is not None:
            count[0] += 1

    def _start_loop(self) -> None:
        # A forked child (a Celery prefork worker) inherits the loop but not its thread: it needs its own.
        self._pid = os.getpid()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="openai-teacher-loop", daemon=True)
        self._thread.start()
        http = openai.DefaultAsyncHttpxClient(event_hooks={"request": [self._count_attempt]})
        self._client = openai.AsyncOpenAI(**self._client_options, max_retries=self.max_retries, http_client=http)
        self._semaphore = asyncio.Semaphore(self._max_concurrency)

    # -- identity ---------------------------------------------------------------------------------------------

    @property
    def revision(self) -> str:
        if self._revision is None:
            self._revision = self._run(self._served_revision())
        return self._revision

    @property
    def teacher_id(self) -> str:
        return teacher_identity(self.model, self.revision)

    async def _served_revision(self) -> str:
        entry = await self._served_model()
        revision = (entry.model_extra or {}).get("revision")
        if not revision:
            log.warning(
                "%s publishes no revision for %s: the label cache cannot tell its weights apart; set "
                "AGPO_TEACHER_REVISION and change it whenever the served weights change",
                self.base_url,
                self.model,
            )
        return str(revision) if revision else SERVED_REVISION

    async def _served_model(self) -> openai.types.Model:
        page = await self._call(self._client.models.list, "GET /models")
        served = {m.id: m for m in page.data}
        if self.model not in served:
            raise TeacherError(
                f"{self.base_url} does not serve model {self.model!r}; it serves: {', '.join(served) or 'nothing'}"
            )
        return served[self.model]

    def ping(self) -> None:
        """Return when the server answers ``/v1/models`` and serves our model; else raise :class:`TeacherError`."""
        self._run(self._served_model())

    # -- generation -------------------------------------------------------------------------------------------

    def generate(self, prompts: Sequence[Messages], decoding: Decoding) -> list[Generation]:
        return self._run(self._generate_all(prompts, decoding))

    async def _generate_all(self, prompts: Sequence[Messages], decoding: Decoding) -> list[Generation]:
        answered: dict[int, Generation] = {}
        refused: dict[int, str] = {}

        async def one(i: int, messages: Messages) -> None:
            try:
                answered[i] = await self._generate_one(messages, decoding)
            except PromptError as error:
                refused[i] = error.refused[0]

        # A task group cancels the other requests once one has failed: the teacher is unreachable, the batch lost.
        try:
            async with asyncio.TaskGroup() as group:
                for i, messages in enumerate(prompts):
                    group.create_task(one(i, messages))
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        if refused:
            raise PromptError(refused, answered)
        return [answered[i] for i in range(len(prompts))]

    async def _generate_one(self, messages: Messages, decoding: Decoding) -> Generation:
        params: dict[str, Any] = {
            "model": self.model,
            "n": decoding.n,
            "temperature": decoding.temperature,
            "top_p": decoding.top_p,
            "max_tokens": decoding.max_tokens,
        }
        if decoding.stop:
            params["stop"] = list(decoding.stop)
        if decoding.seed is not None:
            params["seed"] = decoding.seed
        if self.structured_outputs:
            params["extra_body"] = {"structured_outputs": self.structured_outputs}
        if self.use_chat:
            response = await self._call(
                lambda: self._client.chat.completions.create(messages=messages, **params),
                "POST /chat/completions",
                refusable=True,
            )
            texts = [(c.index, c.message.content or "", c.finish_reason, c.model_extra) for c in response.choices]
        else:
            response = await self._call(
                lambda: self._client.completions.create(prompt=plain_prompt(messages), **params),
                "POST /completions",
                refusable=True,
            )
            texts = [(c.index, c.text, c.finish_reason, c.model_extra) for c in response.choices]
        return self._generation(sorted(texts, key=lambda t: t[0]), response.usage, decoding.n)

    def _generation(self, choices: list[tuple[int, str, str | None, dict | None]], usage: Any, n: int) -> Generation:
        if len(choices) < n:
            raise TeacherError(f"{self.base_url} returned {len(choices)} choices for n={n} (model {self.model})")
        choices = choices[:n]
        total = usage.completion_tokens if usage else 0
        # The OpenAI API reports completion tokens per request only; our server adds an exact count per choice.
        exact = [(extra or {}).get("completion_tokens") for _, _, _, extra in choices]
        counts = (
            exact if all(isinstance(c, int) for c in exact) else _split_tokens(total, [t for _, t, _, _ in choices])
        )
        completions = [
            Completion(text=text, completion_tokens=count, finish_reason="length" if reason == "length" else "stop")
            for (_, text, reason, _), count in zip(choices, counts, strict=True)
        ]
        return Generation(
            completions=completions,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            extra={"completion_tokens_exact": counts is exact, "usage_completion_tokens": total},
        )

    # -- plumbing ---------------------------------------------------------------------------------------------

    async def _call(self, call: Callable[[], Awaitable[T]], what: str, *, refusable: bool = False) -> T:
        """``await call()`` under the concurrency bound, the client retrying as the module docstring says.

        ``refusable``: the request carries one prompt, and a 400/413/422 is the server refusing that prompt.
        """
        attempts = [0]
        token = _attempts.set(attempts)
        try:
            async with self._semaphore:
                return await call()
        except openai.APIStatusError as error:
            if refusable and error.status_code in REFUSAL_STATUS:
                reason = f"the teacher server refused it ({error.status_code}): {_server_message(error)}"
                raise PromptError({0: reason}) from error
            raise self._failure(what, error, attempts[0]) from error
        except openai.OpenAIError as error:
            raise self._failure(what, error, attempts[0]) from error
        finally:
            _attempts.reset(token)

    def _failure(self, what: str, error: openai.OpenAIError, attempts: int) -> TeacherError:
        if is_retryable(error):
            return TeacherError(f"{what} to {self.base_url} failed after {attempts} attempts; last error: {error}")
        return TeacherError(f"{what} to {self.base_url} failed (not retryable): {error}")

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise TeacherError(f"the teacher backend for {self.base_url} is closed")
        with self._start_lock:
            if self._pid != os.getpid():
                self._start_loop()
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pid != os.getpid():
            return  # the loop and its connections belong to the parent process
        asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
