"""Alembic environment: the URL comes from the caller (pipelines.db.session.migrate) or AGPO_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool, text

from pipelines.db.models import Base

# Every process that starts migrates (the API, each worker, `agpo db upgrade`); on PostgreSQL they take this
# advisory lock in turn, so the first one upgrades and the others find the schema at head.
MIGRATION_LOCK = 0x61_67_70_6F  # "agpo"

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url:
    from pipelines.settings import Settings

    url = Settings().database_url
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))


def run_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as connection:
        # render_as_batch: SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
