"""Service logs carry the job, chunk and tenant of the work they describe, as JSON or as text."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from pipelines.annotate import LabelRequest
from pipelines.chunks import process_chunk
from pipelines.db.session import migrate, session_scope
from pipelines.jobs import create_job
from pipelines.logs import ContextFilter, JsonFormatter, TextFormatter, log_context
from relevance.pairs import validate_pair


@pytest.fixture
def lines() -> list[logging.LogRecord]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield records
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_chunks_log_lines_name_its_job_chunk_and_tenant(tmp_path: Path, lines: list[logging.LogRecord]) -> None:
    url = f"sqlite:///{tmp_path / 'logs.db'}"
    migrate(url)
    pairs = [validate_pair({"custom_id": "p", "query": "q", "ad": {"title": "t"}})]
    with session_scope(url) as s:
        created = create_job(s, tenant="acme", pairs=pairs, request=LabelRequest(), teacher="t@1", chunk_size=5)

    def broken():  # type: ignore[no-untyped-def]
        logging.getLogger("pipelines.test").warning("teacher unreachable")
        raise RuntimeError("no teacher")

    with log_context(chunk_id=created.chunk_ids[0]), pytest.raises(RuntimeError):
        process_chunk(url, created.chunk_ids[0], "w", broken)
    [record] = [r for r in lines if r.getMessage() == "teacher unreachable"]
    as_json = json.loads(JsonFormatter().format(record))
    assert as_json["job_id"] == created.job.id and as_json["chunk_id"] == created.chunk_ids[0]
    assert as_json["tenant"] == "acme" and as_json["level"] == "warning"
    assert f"[job_id={created.job.id} chunk_id={created.chunk_ids[0]} tenant=acme]" in TextFormatter().format(record)
    logging.getLogger("pipelines.test").info("outside")
    assert json.loads(JsonFormatter().format(lines[-1])).keys() == {"ts", "level", "logger", "message"}
