"""Every service process migrates when it starts; started together on a fresh PostgreSQL, they must not race."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from infra import create_database, drop_database
from sqlalchemy import create_engine, text

# Each process loads everything first, then waits for the same instant: their migrations overlap for sure.
MIGRATE_AT = """
import sys, time
import alembic.command, sqlalchemy, psycopg
from pipelines.db.session import migrate
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
migrate(sys.argv[1])
"""


def test_processes_that_migrate_at_once_take_turns_on_postgresql() -> None:
    name = create_database()
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        start = str(time.time() + 6)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", MIGRATE_AT, url, start],
                env=os.environ.copy(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(6)
        ]
        outputs = [(p.wait(timeout=120), p.stdout.read().decode()[-600:] if p.stdout else "") for p in procs]
        assert all(code == 0 for code, _ in outputs), outputs
        engine = create_engine(url)
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
            tables = conn.execute(text("SELECT count(*) FROM pg_tables WHERE tablename = 'job_items'")).scalar()
        engine.dispose()
        assert len(versions) == 1 and tables == 1
    finally:
        drop_database(name)


def _drift(url: str) -> list:  # type: ignore[type-arg]
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from pipelines.db.models import Base
    from pipelines.db.session import migrate

    migrate(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            # Server defaults and types read back differently per dialect; tables, columns, indexes and
            # constraints are what a migration can forget.
            context = MigrationContext.configure(conn, opts={"compare_type": False, "compare_server_default": False})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def test_the_migrations_build_exactly_the_models_on_sqlite_and_postgresql(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert _drift(f"sqlite:///{tmp_path / 'drift.db'}") == []
    name = create_database()
    try:
        assert _drift(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}") == []
    finally:
        drop_database(name)
