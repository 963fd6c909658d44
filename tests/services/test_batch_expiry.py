"""A batch whose completion window runs out: the official openai client sees it ``expired``, the pairs labelled in
time stay in its output file, the rest are in its error file as ``batch_expired``, and every request is counted.
The API (in process, local queue, tiny teacher) notices the window itself when the batch is read; the clock is
moved by setting the batch's creation time back 25 hours in the database."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from infra import local_env, settings_from_env
from openai import OpenAI

from pipelines.db.models import Batch
from pipelines.db.session import session_scope
from services.api import create_app


def test_an_overdue_batch_expires_and_keeps_what_was_labelled(
    teacher_dir: Path, pool_pairs: list[dict], tmp_path: Path
) -> None:
    env = local_env(tmp_path, teacher_dir, AGPO_SAMPLES="2", AGPO_CHUNK_SIZE="10")
    settings = settings_from_env(env)
    pairs = pool_pairs[:300]
    lines = [
        {"custom_id": p["custom_id"], "method": "POST", "url": "/v1/annotate",
         "body": {k: v for k, v in p.items() if k not in ("custom_id", "meta")}}
        for p in pairs
    ]  # fmt: skip
    source = tmp_path / "batch.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with TestClient(create_app(settings)) as http:
        client = OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=http)
        uploaded = client.files.create(file=source.open("rb"), purpose="batch")
        batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/annotate", completion_window="24h")
        assert batch.status == "in_progress" and batch.expired_at is None
        with session_scope(settings.database_url) as s:
            row = s.get(Batch, batch.id)
            assert row is not None
            row.created_at = row.created_at - timedelta(hours=25)
        deadline = time.monotonic() + 120
        while (batch := client.batches.retrieve(batch.id)).status not in ("expired", "completed"):
            assert batch.status == "cancelling", batch.status
            assert time.monotonic() < deadline, "the expired batch never stopped"
            time.sleep(0.2)
        assert batch.status == "expired" and batch.expired_at is not None, batch
        counts = batch.request_counts
        assert counts.total == 300 and counts.completed + counts.failed == 300 and counts.failed > 0
        output = client.files.content(batch.output_file_id).text.splitlines()
        errors = [json.loads(x) for x in client.files.content(batch.error_file_id).text.splitlines()]
        # The worker drains the cancelled chunks still queued (each a no-op) and stops before the app does.
        http.app.state.dispatcher.close()
        http.app.state.dispatcher.worker.join(timeout=60)
        assert not http.app.state.dispatcher.worker.is_alive()
    assert len(output) == counts.completed
    expired = [e for e in errors if e["error"]["code"] == "batch_expired"]
    assert expired and "completion window ran out" in expired[0]["error"]["message"]
    labelled = {json.loads(x)["custom_id"] for x in output}
    assert labelled.isdisjoint(e["custom_id"] for e in expired)
    assert len(labelled) + len(errors) == 300
