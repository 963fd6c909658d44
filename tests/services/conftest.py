"""The annotation stack as real processes: PostgreSQL, a private Redis, the API under uvicorn, Celery workers.

Every service starts with the same ``agpo`` commands docker-compose runs. A private ``redis-server`` (on a free
port) lets a test restart the broker without touching anyone else's; each test module gets a fresh database.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.procs import answers, free_port, start, stop, wait_until

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


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


def create_database() -> str:
    import psycopg

    name = f"agpo_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    name = create_database()
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    drop_database(name)


class RedisServer:
    """A private redis-server without persistence: a restart loses every queued message, like a crash."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        wait_until(lambda: _redis_up(redis, self.url), 20, "redis-server")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


def _redis_up(redis, url: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except Exception:
        return False


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


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
