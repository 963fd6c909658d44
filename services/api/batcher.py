"""Cross-request micro-batching for ``POST /v1/score``.

A cross-encoder forward on 16 pairs costs little more than on one, but each request of a busy API brings one or
two. Requests therefore queue here, and one scoring thread takes everything that is waiting (up to ``max_pairs``)
as one batch. There is no timer: an idle scorer takes the first request at once, so a lone request pays no wait,
and requests that arrive while a batch runs form the next one (the way continuous batching works in LLM
servers). One thread also means the engine's threads are never shared between overlapping calls.

A batch that fails is scored again request by request, so one request that cannot be scored fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Request(Generic[Item, Result]):
    items: Sequence[Item]
    done: asyncio.Future[list[Result]]


class MicroBatcher(Generic[Item, Result]):
    """Runs ``fn`` (a list of items -> one result per item, in order) on batches gathered across callers;
    ``on_batch`` hears the size of every batch that ran.

    Create it inside the event loop that calls :meth:`submit`; :meth:`close` stops its task and thread.
    """

    def __init__(
        self,
        fn: Callable[[list[Item]], list[Result]],
        *,
        max_pairs: int = 64,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_pairs < 1:
            raise ValueError(f"max_pairs must be at least 1, got {max_pairs}")
        self._fn = fn
        self._max = max_pairs
        self._waiting: deque[_Request[Item, Result]] = deque()
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agpo-score")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="agpo-score-batcher")
        self._on_batch = on_batch or (lambda size: None)

    async def submit(self, items: Sequence[Item]) -> list[Result]:
        """The results for ``items``, scored with whatever else is waiting."""
        if not items:
            return []
        if self._task.done():
            raise RuntimeError("the scoring batcher has stopped")
        request: _Request[Item, Result] = _Request(items, asyncio.get_running_loop().create_future())
        self._waiting.append(request)
        self._wake.set()
        return await request.done

    def _next_batch(self) -> list[_Request[Item, Result]]:
        batch = [self._waiting.popleft()]
        size = len(batch[0].items)
        while self._waiting and size + len(self._waiting[0].items) <= self._max:
            request = self._waiting.popleft()
            batch.append(request)
            size += len(request.items)
        # A caller that gave up (a client that went away) is not scored.
        return [r for r in batch if not r.done.done()]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._waiting:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = self._next_batch()
            if not batch:
                continue
            items = [item for request in batch for item in request.items]
            try:
                results = await loop.run_in_executor(self._executor, self._fn, items)
            except Exception:
                log.warning("a batch of %d requests failed; scoring them one by one", len(batch), exc_info=True)
                await self._one_by_one(batch)
                continue
            self._on_batch(len(items))
            start = 0
            for request in batch:
                end = start + len(request.items)
                if not request.done.done():
                    request.done.set_result(results[start:end])
                start = end

    async def _one_by_one(self, batch: list[_Request[Item, Result]]) -> None:
        loop = asyncio.get_running_loop()
        for request in batch:
            try:
                results = await loop.run_in_executor(self._executor, self._fn, list(request.items))
            except Exception as exc:
                if not request.done.done():
                    request.done.set_exception(exc)
            else:
                self._on_batch(len(request.items))
                if not request.done.done():
                    request.done.set_result(results)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        for request in self._waiting:
            if not request.done.done():
                request.done.set_exception(RuntimeError("the API is shutting down"))
        self._waiting.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
