"""Service logs: every line a worker writes while it runs a chunk names the job, the chunk and the tenant.

The ids live in a context variable (:func:`log_context`), so they follow the work through threads' contexts
and need no passing around; a logging filter copies them onto every record. ``AGPO_LOG_FORMAT=json`` writes
one JSON object per line (for Loki, Elasticsearch, Cloud Logging); ``text`` keeps a readable line with the
same ids in brackets.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

CONTEXT_FIELDS = ("job_id", "chunk_id", "tenant")
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("agpo_log_context", default=None)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach ``fields`` (job_id, chunk_id, tenant) to every log record made inside the block."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add ``fields`` to the current context, up to the end of the enclosing :func:`log_context` block or
    :func:`log_scope` function."""
    _context.set({**(_context.get() or {}), **fields})


def log_scope(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` in a log context of its own: fields it binds (:func:`bind`) end when it returns."""

    @functools.wraps(fn)
    def scoped(*args: P.args, **kwargs: P.kwargs) -> R:
        token = _context.set(dict(_context.get() or {}))
        try:
            return fn(*args, **kwargs)
        finally:
            _context.reset(token)

    return scoped


class ContextFilter(logging.Filter):
    """Copies the current :func:`log_context` onto each record (None where unset)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _context.get() or {}
        for name in CONTEXT_FIELDS:
            setattr(record, name, current.get(name))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the context ids, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({name: value for name in CONTEXT_FIELDS if (value := getattr(record, name, None)) is not None})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(ids)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = [f"{name}={value}" for name in CONTEXT_FIELDS if (value := getattr(record, name, None)) is not None]
        record.ids = f" [{' '.join(ids)}]" if ids else ""
        return super().format(record)


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    """Route the root logger (and so every library's) through one handler in ``log_format``: text or json."""
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
