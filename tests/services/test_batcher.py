"""The /v1/score batcher: requests that wait together are scored together, in order, and fail alone."""

from __future__ import annotations

import asyncio
import threading

import pytest

from services.api.batcher import MicroBatcher


class Recorder:
    """A scoring function that records its batches and can be held on its first call."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self.started = threading.Event()
        self.hold_first = False

    def __call__(self, items: list[str]) -> list[str]:
        self.batches.append(list(items))
        self.started.set()
        if self.hold_first and len(self.batches) == 1:
            self.release.wait(10)
        if any(item.startswith("bad") for item in items):
            raise ValueError("cannot score 'bad'")
        return [item.upper() for item in items]


async def _wait_started(fn: Recorder) -> None:
    while not fn.started.is_set():
        await asyncio.sleep(0.001)


async def _behind_a_held_batch(fn: Recorder, batcher: MicroBatcher, requests: list[list[str]]) -> list[asyncio.Task]:
    """Submit ``requests`` while a first one-item batch is held in ``fn``, so they wait together; then let it go."""
    first = asyncio.create_task(batcher.submit(["x"]))
    await _wait_started(fn)
    waiting = [asyncio.create_task(batcher.submit(items)) for items in requests]
    await asyncio.sleep(0.01)
    fn.release.set()
    assert await first == ["X"]
    return waiting


def test_a_lone_request_is_scored_at_once() -> None:
    async def main() -> None:
        fn = Recorder()
        batcher = MicroBatcher(fn, max_pairs=8)
        assert await batcher.submit(["a", "b"]) == ["A", "B"]
        assert await batcher.submit([]) == []
        await batcher.close()
        assert fn.batches == [["a", "b"]]

    asyncio.run(main())


def test_requests_that_wait_together_are_scored_together_in_order() -> None:
    async def main() -> None:
        fn = Recorder()
        fn.hold_first = True
        sizes: list[int] = []
        batcher = MicroBatcher(fn, max_pairs=8, on_batch=sizes.append)
        # These arrive while the first batch runs: 3 + 2 + 3 = 8 fit one batch, the last must wait for the next.
        requests = [["a1", "a2", "a3"], ["b1", "b2"], ["c1", "c2", "c3"], ["d1", "d2"]]
        results = await asyncio.gather(*await _behind_a_held_batch(fn, batcher, requests))
        await batcher.close()
        assert results == [["A1", "A2", "A3"], ["B1", "B2"], ["C1", "C2", "C3"], ["D1", "D2"]]
        assert fn.batches == [["x"], ["a1", "a2", "a3", "b1", "b2", "c1", "c2", "c3"], ["d1", "d2"]]
        assert sizes == [1, 8, 2]

    asyncio.run(main())


def test_one_request_that_cannot_be_scored_fails_alone() -> None:
    async def main() -> None:
        fn = Recorder()
        fn.hold_first = True
        batcher = MicroBatcher(fn, max_pairs=64)
        good1, bad, good2 = await _behind_a_held_batch(fn, batcher, [["g1"], ["bad", "g2"], ["g3"]])
        assert await good1 == ["G1"] and await good2 == ["G3"]
        with pytest.raises(ValueError, match="bad"):
            await bad
        # The batcher keeps serving after a failure.
        assert await batcher.submit(["after"]) == ["AFTER"]
        await batcher.close()

    asyncio.run(main())


def test_a_caller_that_gave_up_is_not_scored() -> None:
    async def main() -> None:
        fn = Recorder()
        fn.hold_first = True
        batcher = MicroBatcher(fn, max_pairs=64)
        first = asyncio.create_task(batcher.submit(["x"]))
        await _wait_started(fn)
        gone = asyncio.create_task(batcher.submit(["gone"]))
        kept = asyncio.create_task(batcher.submit(["kept"]))
        await asyncio.sleep(0.01)
        gone.cancel()
        fn.release.set()
        await first
        assert await kept == ["KEPT"]
        await batcher.close()
        assert ["gone"] not in fn.batches and all("gone" not in b for b in fn.batches)

    asyncio.run(main())


def test_a_closed_batcher_refuses_new_work() -> None:
    async def main() -> None:
        batcher = MicroBatcher(Recorder(), max_pairs=4)
        await batcher.close()
        with pytest.raises(RuntimeError, match="stopped"):
            await batcher.submit(["late"])

    asyncio.run(main())


def test_max_pairs_must_be_positive() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="max_pairs"):
            MicroBatcher(Recorder(), max_pairs=0)

    asyncio.run(main())
