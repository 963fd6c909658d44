"""The Batch API's file formats and statuses over jobs (pipelines/batches.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

from pipelines.batches import (
    batch_of_file,
    batch_status,
    batch_view,
    error_file_id,
    error_line,
    output_file_id,
    output_line,
    parse_input,
)


def _line(custom_id: str, body: object, **over: object) -> bytes:
    record = {"custom_id": custom_id, "method": "POST", "url": "/v1/annotate", "body": body, **over}
    return json.dumps(record).encode()


def test_request_lines_become_pairs_and_bad_lines_are_named_by_line_and_field() -> None:
    good = {"query": "usb c cable", "ad": {"title": "Anker USB-C cable, 2 m"}, "meta": {"k": 1}}
    content = b"\n".join(
        [
            _line("a", good),
            b"",
            _line("b", good, method="GET"),
            _line("c", good, url="/v1/chat/completions"),
            _line("d", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
            _line("e", {"query": "q", "ad": {"title": ""}}),
            _line("a", good),
            b"[1, 2]",
            b"{not json",
            _line("f", good, extra=1),
            _line("g", {**good, "custom_id": "x"}),
            _line("h", good),
        ]
    )
    batch = parse_input(content)
    assert [p.custom_id for p in batch.pairs] == ["a", "h"] and batch.rows == [1, 12]
    assert batch.pairs[0].meta == {"k": 1} and batch.pairs[0].ad.title == "Anker USB-C cable, 2 m"
    errors = {e.row: (e.field, e.message) for e in batch.errors}
    assert errors[3] == ("method", "must be POST, got 'GET'")
    assert errors[4][0] == "url" and "/v1/annotate" in errors[4][1]
    assert errors[5][0] == "body" and "chat completion" in errors[5][1]
    assert errors[6][0] == "body.ad.title"
    assert errors[7][0] == "custom_id" and "duplicate" in errors[7][1]
    assert errors[8] == (None, "expected a JSON object, got list")
    assert errors[9][1].startswith("invalid JSON")
    assert errors[10][0] == "extra"
    assert errors[11][0] == "body.custom_id"
    assert sorted(errors) == [3, 4, 5, 6, 7, 8, 9, 10, 11]


def _job(**over: object) -> SimpleNamespace:
    base = {
        "status": "in_progress",
        "cancel_requested": False,
        "total": 10,
        "completed": 4,
        "failed": 1,
        "cancelled": 0,
        "rejected": 2,
        "started_at": datetime(2026, 12, 6, 9, 0, 5, tzinfo=UTC),
        "completed_at": None,
        "metadata_": {"team": "ads"},
        "teacher": "relevance-teacher",
    }
    return SimpleNamespace(**{**base, **over})


def test_job_states_read_as_batch_statuses() -> None:
    assert batch_status(_job(status="queued")) == "in_progress"
    assert batch_status(_job()) == "in_progress"
    assert batch_status(_job(completed=9)) == "finalizing"
    assert batch_status(_job(cancel_requested=True, status="cancelling")) == "cancelling"
    for terminal in ("completed", "cancelled", "failed"):
        assert batch_status(_job(status=terminal)) == terminal
        # an expired batch reads expired once its work has stopped, cancelling until then
        assert batch_status(_job(status=terminal), expired=True) == "expired"
    assert batch_status(_job(cancel_requested=True, status="cancelling"), expired=True) == "cancelling"


def test_the_batch_view_names_result_files_only_once_the_batch_ended() -> None:
    batch = SimpleNamespace(
        id="batch_abc",
        endpoint="/v1/annotate",
        input_file_id="file-1",
        completion_window="24h",
        created_at=datetime(2026, 12, 6, 9, 0, 0, tzinfo=UTC),
    )
    running = batch_view(batch, _job())
    assert running["output_file_id"] is None and running["error_file_id"] is None
    assert running["request_counts"] == {"total": 12, "completed": 4, "failed": 3}
    assert running["expires_at"] - running["created_at"] == 24 * 3600 and running["metadata"] == {"team": "ads"}
    ended = datetime(2026, 12, 6, 9, 1, 0, tzinfo=UTC)
    done = batch_view(batch, _job(status="completed", completed=9, completed_at=ended))
    assert done["output_file_id"] == output_file_id("batch_abc") == "file-out-abc"
    assert done["error_file_id"] == error_file_id("batch_abc") == "file-err-abc"
    assert done["completed_at"] == int(ended.timestamp()) and done["cancelled_at"] is None
    clean = batch_view(batch, _job(status="completed", completed=10, failed=0, rejected=0, completed_at=ended))
    assert clean["error_file_id"] is None
    assert batch_of_file("file-out-abc") == ("batch_abc", "output")
    assert batch_of_file("file-err-abc") == ("batch_abc", "error")
    assert batch_of_file("file-123") is None


def test_output_and_error_lines_have_the_batch_shapes() -> None:
    result = {"custom_id": "a", "status": "completed", "label": "Exact", "confidence": 1.0}
    line = output_line("batch_abc", result)
    assert line["custom_id"] == "a" and line["error"] is None
    assert line["response"] == {"status_code": 200, "request_id": line["id"], "body": result}
    assert line["id"].startswith("batch_req_") and output_line("batch_abc", result)["id"] == line["id"]
    rejected = error_line("batch_abc", {"line": 4, "field": "url", "message": "must be ...", "kind": "invalid_input"})
    assert rejected["response"] is None and rejected["custom_id"] is None
    assert rejected["error"] == {"code": "invalid_input", "message": "line 4, url: must be ..."}
    failed = error_line("batch_abc", {"line": 7, "custom_id": "b", "message": "no label", "kind": "teacher_failure"})
    assert failed["custom_id"] == "b" and failed["error"]["message"] == "line 7: no label"


CHAT = "/v1/chat/completions"


def _chat_line(custom_id: str, body: object) -> bytes:
    return _line(custom_id, body, url=CHAT)


def test_chat_completion_lines_are_taken_unchanged_and_a_pair_may_ride_in_the_body() -> None:
    """Lines as `vllm run-batch` and OpenAI's Batch API take them (vLLM's example file's shape: model, messages,
    max_completion_tokens); the body's metadata comes back as the item's meta."""
    asks = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hello world!"}]
    parts = [{"type": "text", "text": "Query: usb c cable"}, {"type": "text", "text": "Ad: Anker USB-C cable"}]
    content = b"\n".join(
        [
            _chat_line("request-1", {"model": "meta-llama/Meta-Llama-3-8B-Instruct", "messages": asks, "n": 3}),
            _chat_line(
                "parts", {"messages": [{"role": "developer", "content": "Judge."}, {"role": "user", "content": parts}]}
            ),
            _chat_line("pair", {"model": "x", "pair": {"query": "usb c cable", "ad": {"title": "Anker cable"}}}),
            _chat_line("meta", {"messages": asks, "metadata": {"sku": "123"}}),
            _chat_line("both", {"messages": asks, "pair": {"query": "q", "ad": {"title": "t"}}}),
            _chat_line("image", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}),
            _chat_line("last", {"messages": [*asks, {"role": "assistant", "content": "Hi"}]}),
            _chat_line("none", {"model": "x"}),
            _chat_line("role", {"messages": [{"role": "tool", "content": "x"}]}),
            _chat_line("nul", {"messages": [{"role": "user", "content": "a\u0000b"}]}),
            _chat_line("bad-pair", {"pair": {"query": "", "ad": {"title": "t"}}}),
            _chat_line("big", {"messages": asks, "metadata": {"k": "x" * 20_000}}),
            _line("annotate", {"query": "q", "ad": {"title": "t"}}),  # url /v1/annotate in a chat batch
        ]
    )
    batch = parse_input(content, endpoint=CHAT)
    assert [p.custom_id for p in batch.pairs] == ["request-1", "parts", "pair", "meta"]
    first, joined, pair, meta = batch.pairs
    assert [m.model_dump() for m in first.messages] == asks
    assert [m.model_dump() for m in joined.messages] == [
        {"role": "system", "content": "Judge."},  # developer is the system role to the teacher's chat template
        {"role": "user", "content": "Query: usb c cable\nAd: Anker USB-C cable"},
    ]
    assert pair.query == "usb c cable" and pair.ad.title == "Anker cable"  # a Pair, reviewed and exported as one
    assert meta.meta == {"sku": "123"}
    errors = {e.row: (e.field, e.message) for e in batch.errors}
    assert errors[5] == ("body.pair", "give messages or a pair, not both (a pair is asked with the task's prompt)")
    assert errors[6][0] == "body.messages.0.content" and "'image_url'" in errors[6][1]
    assert errors[7][0] == "body.messages" and "assistant" in errors[7][1]
    assert errors[8][0] == "body.messages" and "field required" in errors[8][1]
    assert errors[9][0] == "body.messages.0.role"
    assert errors[10] == ("body.messages.0.content", "content contains a NUL character (\\u0000)")
    assert errors[11][0] == "body.pair.query"
    assert errors[12][0] == "body.metadata" and "limit" in errors[12][1]
    assert errors[13][0] == "url" and CHAT in errors[13][1]
    assert sorted(errors) == list(range(5, 14))


def test_a_chat_line_is_answered_as_a_chat_completion_the_openai_types_read() -> None:
    from openai.types.chat import ChatCompletion

    result = {"custom_id": "a", "status": "completed", "label": "Exact", "confidence": 0.9, "teacher": "t@1"}
    result["reasoning"] = "The cable is what was asked for.\nLabel: Exact"
    line = output_line("batch_abc", result, endpoint=CHAT, created=1_765_000_000)
    body = line["response"]["body"]
    completion = ChatCompletion.model_validate(body)
    assert completion.choices[0].message.content == result["reasoning"] and completion.model == "t@1"
    assert completion.created == 1_765_000_000 and completion.id.startswith("chatcmpl-")
    assert body["relevance"] == result  # the label beside the answer, as the annotate endpoint gives it
    assert output_line("batch_abc", result)["response"]["body"] == result
