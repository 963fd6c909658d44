"""PostgreSQL and Redis for the tests that need them as real servers: a fresh database per module on the local
PostgreSQL, and a private ``redis-server`` on a free port (a test may restart it without touching anyone else's)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from services.procs import free_port, wait_until

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


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


def local_env(db_dir: Path, teacher_dir: Path, **overrides: str) -> dict[str, str]:
    """The embedded service's variables for an in-process API: SQLite in ``db_dir``, the local queue, no auth, the
    tiny teacher answering one short sample; ``overrides`` by variable name (``AGPO_AUTH="true"``)."""
    return {
        "AGPO_DATABASE_URL": f"sqlite:///{db_dir / 'agpo.db'}",
        "AGPO_QUEUE": "local",
        "AGPO_AUTH": "false",
        "AGPO_TEACHER_MODEL": str(teacher_dir),
        "AGPO_SAMPLES": "1",
        "AGPO_MAX_TOKENS": "20",
        **overrides,
    }


def settings_from_env(env: dict[str, str]):  # type: ignore[no-untyped-def]
    """:class:`pipelines.settings.Settings` read from ``AGPO_*`` variables as a served process reads them, without
    touching this process's environment or the ``get_settings()`` cache."""
    import pytest

    from pipelines.settings import Settings

    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        return Settings()
