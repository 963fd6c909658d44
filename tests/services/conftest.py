"""The annotation stack as real processes: PostgreSQL, a private Redis, the API under uvicorn, Celery workers.

Every service starts with the same ``agpo`` commands docker-compose runs. A private ``redis-server`` (on a free
port) lets a test restart the broker without touching anyone else's; each test module gets a fresh database.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from services.procs import answers, free_port, start, stop, wait_until


def register_ndjson_serializer() -> None:
    """Let schemathesis send the JSONL upload's body: whatever it generates for the schema's string goes over the
    wire as it is."""
    import schemathesis

    # Schemathesis 4 wraps what a serializer returns as the request's data: return the bytes themselves.
    @schemathesis.serializer("application/x-ndjson")
    def ndjson(ctx, value):  # type: ignore[no-untyped-def]
        if isinstance(value, bytes):
            return value
        return value.encode() if isinstance(value, str) else json.dumps(value).encode()


@pytest.fixture(scope="session")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from relevance.synthetic.generator import generate_benchmark

    out = tmp_path_factory.mktemp("bench")
    generate_benchmark(out, seed=7, teacher_train=64, dev=0, gold_test=0, pool=4000)
    return out


@pytest.fixture(scope="session")
def pool_pairs(bench_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (bench_dir / "pool.jsonl").read_text().splitlines()]


@pytest.fixture(scope="session")
def teacher_dir(bench_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from helpers import build_labelling_teacher

    pairs = [json.loads(line) for line in (bench_dir / "teacher_train.jsonl").read_text().splitlines()]
    return build_labelling_teacher(tmp_path_factory.mktemp("teacher") / "tiny-teacher", pairs)


class Stack:
    """API, workers and beat as plain processes sharing one environment; logs under ``logdir``."""

    def __init__(self, env: dict[str, str], logdir: Path) -> None:
        self.env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "AGPO_NO_PROGRESS": "1", **env}
        self.logdir = logdir
        self.procs: dict[str, subprocess.Popen] = {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        proc = start(args, {**self.env, **(env or {})}, self.logdir / f"{name}.log")
        self.procs[name] = proc
        return proc

    def start_api(self, name: str = "api", env: dict[str, str] | None = None, port: int | None = None) -> str:
        port = port or self.port
        self.start(name, "serve", "api", "--port", str(port), env=env)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(url + "/healthz", timeout=1.0), 60, f"{name} on {url}")
        return url

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        stop(self.procs.pop(name), sig, timeout=30)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)

    def log(self, name: str) -> str:
        return (self.logdir / f"{name}.log").read_text(errors="replace")[-4000:]
