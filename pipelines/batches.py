"""The OpenAI Batch API's file formats and statuses, over the service's jobs.

A batch input file holds one request per line, ``{"custom_id", "method": "POST", "url": <the batch's endpoint>,
"body": {...}}``. Two endpoints are served: ``/v1/annotate``, where a line's body is one pair without its id
(``{"query", "ad", "meta"?}``), and ``/v1/chat/completions``, where it is a chat completion request taken unchanged
(:mod:`pipelines.chat_lines`). The line's ``custom_id`` is the pair's. Each line is checked as a pair is; a bad
line goes to the batch's error file under its line number and never stops the others, as in a JSONL job.

Results come back in Batch's shapes: the output file has one ``{"id", "custom_id", "response": {"status_code",
"request_id", "body"}, "error": null}`` line per labelled pair (the body is the pair's result line, or under the chat
endpoint a ``chat.completion`` carrying it), the error file one ``{"id", "custom_id", "response": null, "error":
{"code", "message"}}`` line per failed pair or rejected line.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from pipelines import chat_lines
from relevance.pairs import (
    DEFAULT_LIMITS,
    PairBatch,
    PairLimits,
    RowError,
    error_fields,
    validate_pair,
    validate_records,
)

ENDPOINT = "/v1/annotate"
ENDPOINTS = (ENDPOINT, chat_lines.ENDPOINT)
COMPLETION_WINDOWS = {"24h": timedelta(hours=24)}
PURPOSE = "batch"


def completion_window(name: str) -> timedelta:
    return COMPLETION_WINDOWS.get(name, timedelta(hours=24))


def new_file_id() -> str:
    return f"file-{uuid.uuid4().hex[:24]}"


def new_batch_id() -> str:
    return f"batch_{uuid.uuid4().hex[:24]}"


def output_file_id(batch_id: str) -> str:
    return f"file-out-{batch_id.removeprefix('batch_')}"


def error_file_id(batch_id: str) -> str:
    return f"file-err-{batch_id.removeprefix('batch_')}"


def batch_of_file(file_id: str) -> tuple[str, str] | None:
    """``(batch id, "output" | "error")`` for a result file's id; None for an uploaded file's."""
    for prefix, kind in (("file-out-", "output"), ("file-err-", "error")):
        if file_id.startswith(prefix):
            return f"batch_{file_id.removeprefix(prefix)}", kind
    return None


# -- input -----------------------------------------------------------------------------------------------------


def _request_records(
    lines: Iterable[bytes], endpoint: str, limits: PairLimits, errors: list[RowError]
) -> Iterator[tuple[int, Any]]:
    """``(line, pair record)`` for each request line of the Batch shape; errors for the lines that are not."""
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        if len(raw) > limits.line_bytes:
            errors.append(RowError(lineno, None, f"line is {len(raw)} bytes; the limit is {limits.line_bytes}"))
            continue
        try:
            record = json.loads(raw)
        except UnicodeDecodeError as exc:
            errors.append(RowError(lineno, None, f"not UTF-8: {exc.reason} at byte {exc.start}"))
            continue
        except json.JSONDecodeError as exc:
            errors.append(RowError(lineno, None, f"invalid JSON: {exc.msg} at column {exc.colno}"))
            continue
        except RecursionError:
            errors.append(RowError(lineno, None, "invalid JSON: nested too deeply"))
            continue
        if not isinstance(record, dict):
            errors.append(RowError(lineno, None, f"expected a JSON object, got {type(record).__name__}"))
            continue
        problem = _request_problem(record, endpoint)
        if problem is not None:
            errors.append(RowError(lineno, *problem))
            continue
        if endpoint != chat_lines.ENDPOINT:
            yield lineno, {"custom_id": record.get("custom_id"), **record["body"]}
            continue
        try:
            kind, found = chat_lines.body_record(record.get("custom_id"), record["body"])
        except chat_lines.BodyError as problem:
            errors.append(RowError(lineno, problem.field, problem.message))
            continue
        validate = validate_pair if kind == "pair" else chat_lines.validate_conversation
        try:
            item = validate(found, limits)
        except ValidationError as exc:
            errors.extend(RowError(lineno, _body_field(kind, f), m) for f, m in error_fields(exc))
            continue
        yield lineno, item


def _body_field(kind: str, field: str) -> str | None:
    """A validation error's field, named as in the line (a conversation's ``meta`` is the body's ``metadata``)."""
    if field in ("", "custom_id"):
        return field or None
    if kind == "pair":
        return f"body.pair.{field}"
    return "body.metadata" if field == "meta" else f"body.{field}"


def _request_problem(record: dict[str, Any], endpoint: str) -> tuple[str, str] | None:
    unknown = sorted(set(record) - {"custom_id", "method", "url", "body"})
    if unknown:
        return unknown[0], "not a field of a batch request line (custom_id, method, url, body)"
    if record.get("method") != "POST":
        return "method", f"must be POST, got {record.get('method')!r}"
    if record.get("url") != endpoint:
        return "url", f"must be the batch's endpoint {endpoint}, got {record.get('url')!r}"
    body = record.get("body")
    if endpoint == chat_lines.ENDPOINT:
        if isinstance(body, dict):
            return None
        return "body", f"expected a chat completion request (an object), got {type(body).__name__}"
    if not isinstance(body, dict):
        return "body", f"expected an object (one pair: query, ad), got {type(body).__name__}"
    if "messages" in body:
        return "body", (
            f"a chat completion body: create the batch with endpoint {chat_lines.ENDPOINT} (and these lines' url), "
            "or send {query, ad} (one pair)"
        )
    if "custom_id" in body:
        return "body.custom_id", "the line's custom_id names the pair; leave it out of the body"
    return None


def parse_input(
    content: bytes, *, endpoint: str = ENDPOINT, limits: PairLimits = DEFAULT_LIMITS, max_pairs: int | None = None
) -> PairBatch:
    """The pairs of a batch input file, and its bad lines (fields named as in the file: ``body.ad.title``)."""
    shape_errors: list[RowError] = []
    records = _request_records(content.split(b"\n"), endpoint, limits, shape_errors)
    batch = validate_records(records, limits=limits, max_pairs=max_pairs)
    # Under the chat endpoint lines are validated (and their fields named) while read; here only as pairs.
    prefix = "body." if endpoint == ENDPOINT else ""
    pair_errors = [
        RowError(e.row, e.field if e.field in (None, "custom_id") else f"{prefix}{e.field}", e.message)
        for e in batch.errors
    ]
    batch.errors = sorted(shape_errors + pair_errors, key=lambda e: e.row)
    return batch


# -- status ----------------------------------------------------------------------------------------------------


def unix(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp())


def batch_status(job: Any, expired: bool = False) -> str:
    """The job's state in the Batch API's words (validating happens inside the create call, so never shows). An
    expired batch reads ``expired`` once the work in hand has stopped."""
    if expired:
        return "expired" if job.status in ("failed", "cancelled", "completed") else "cancelling"
    if job.status in ("failed", "cancelled", "completed"):
        return str(job.status)
    if job.cancel_requested:
        return "cancelling"
    if job.total - job.completed - job.failed - job.cancelled <= 0:
        return "finalizing"
    return "in_progress"


def batch_view(batch: Any, job: Any) -> dict[str, Any]:
    """The batch object as ``GET /v1/batches/{id}`` returns it."""
    expired_at = getattr(batch, "expired_at", None)
    status = batch_status(job, expired=expired_at is not None)
    done = status in ("completed", "cancelled", "failed", "expired")
    rejected_or_failed = job.failed + job.rejected + job.cancelled > 0
    window = completion_window(batch.completion_window)
    return {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "errors": None,
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": status,
        "output_file_id": output_file_id(batch.id) if done else None,
        "error_file_id": error_file_id(batch.id) if done and rejected_or_failed else None,
        "created_at": unix(batch.created_at),
        "in_progress_at": unix(job.started_at or batch.created_at),
        "expires_at": unix(batch.created_at + window),
        "finalizing_at": None,
        "completed_at": unix(job.completed_at) if status == "completed" else None,
        "failed_at": unix(job.completed_at) if status == "failed" else None,
        "expired_at": unix(expired_at),
        "cancelling_at": None,
        "cancelled_at": unix(job.completed_at) if status == "cancelled" else None,
        # Lines rejected at creation and pairs a cancel stopped count as failed requests, as in OpenAI's batches.
        "request_counts": {
            "total": job.total + job.rejected,
            "completed": job.completed,
            "failed": job.failed + job.rejected + job.cancelled,
        },
        "metadata": job.metadata_,
        "model": job.teacher,
    }


# -- output ----------------------------------------------------------------------------------------------------


def _request_id(batch_id: str, key: str) -> str:
    return "batch_req_" + hashlib.sha256(f"{batch_id}/{key}".encode()).hexdigest()[:24]


def output_line(
    batch_id: str, result: dict[str, Any], *, endpoint: str = ENDPOINT, created: int | None = None
) -> dict[str, Any]:
    """A labelled pair's line of the output file: its result line as the response body, or under the chat endpoint
    a ``chat.completion`` (created at ``created``, Unix seconds) that carries it."""
    request_id = _request_id(batch_id, result["custom_id"])
    body = result if endpoint == ENDPOINT else chat_lines.chat_completion(request_id, result, created)
    return {
        "id": request_id,
        "custom_id": result["custom_id"],
        "response": {"status_code": 200, "request_id": request_id, "body": body},
        "error": None,
    }


def error_line(batch_id: str, problem: dict[str, Any], *, expired: bool = False) -> dict[str, Any]:
    """A line of the error file from a line of the job's errors file (a rejected line or a failed pair). In an
    expired batch the pairs its cancel stopped carry OpenAI's code for them, ``batch_expired``."""
    custom_id = problem.get("custom_id")
    where = f"line {problem['line']}" + (f", {problem['field']}" if problem.get("field") else "")
    code, message = problem.get("kind", "failed"), problem["message"]
    if expired and code == "cancelled":
        code, message = "batch_expired", "the batch's completion window ran out before this pair was labelled"
    return {
        "id": _request_id(batch_id, custom_id or f"line-{problem['line']}"),
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": f"{where}: {message}"},
    }
