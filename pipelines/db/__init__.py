"""Storage: SQLAlchemy models, sessions and alembic migrations."""
