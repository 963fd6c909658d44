"""A pair whose prompt cannot fit the teacher's context: refused at submission with the token counts, and when
one slips through (a served teacher whose tokenizer the API does not know), it fails alone in its chunk while
its neighbours are labelled. The teacher is the tests' tiny labelling model (char tokenizer, context 2,048)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from test_api_inprocess import Api, _env, _join_worker, _settings

from pipelines.annotate import LabelRequest
from pipelines.backends.base import Decoding
from pipelines.backends.transformers_backend import TransformersBackend
from pipelines.chunks import process_chunk
from pipelines.db.models import JobItem
from pipelines.db.session import migrate, session_scope
from pipelines.jobs import create_job
from relevance.pairs import validate_pair
from services.api import create_app


@pytest.fixture(scope="module")
def api(teacher_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    settings = _settings(_env(tmp_path_factory.mktemp("api-fit") / "agpo.db", teacher_dir, auth=False))
    with TestClient(create_app(settings)) as client:
        yield Api(client, {}, settings)
    _join_worker(client)


def _too_long(pair: dict) -> dict:
    # Every field the compact prompt shows, near its character limit: valid input, about 3,500 characters of
    # prompt, which no teacher with a 2,048-token context can read.
    ad = {
        "title": "cordless drill " * 34,
        "brand": "b" * 120,
        "category": "tools " * 42,
        "attributes": {f"attribute {i:02d} " * 4: "value " * 42 for i in range(8)},
    }
    return {**pair, "custom_id": pair["custom_id"] + "-long", "query": "drill " * 85, "ad": ad}


def test_a_json_pair_that_cannot_fit_is_a_422_naming_it_and_the_token_counts(api: Api, pool_pairs: list[dict]):
    good = pool_pairs[500:502]
    for route in ("/v1/jobs", "/v1/annotate"):
        r = api.post(route, None, json={"pairs": [good[0], _too_long(good[1])]})
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["param"] == "pairs[1]"
        assert "tokens" in error["message"] and "context of 2048 tokens" in error["message"]
    # A max_tokens that leaves no room is refused for any pair.
    r = api.post("/v1/jobs", None, json={"pairs": good, "max_tokens": 2048})
    assert r.status_code == 422 and "leaves no room" in r.json()["error"]["message"]
    assert api.get("/v1/jobs", None).json()["data"] == []  # nothing was created


def test_a_jsonl_line_that_cannot_fit_goes_to_the_errors_file_and_the_rest_run(api: Api, pool_pairs: list[dict]):
    good = pool_pairs[510:512]
    lines = [json.dumps(good[0]), json.dumps(_too_long(good[1])), json.dumps(good[1])]
    r = api.post(
        "/v1/jobs/jsonl", None, content="\n".join(lines).encode(), headers={"Content-Type": "application/x-ndjson"}
    )
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["request_counts"]["total"] == 2 and job["request_counts"]["rejected_lines"] == 1
    [error] = [json.loads(x) for x in api.get(f"/v1/jobs/{job['id']}/errors", None).text.splitlines()]
    assert error["line"] == 2 and "too long for the teacher" in error["message"]
    done = api.wait(job["id"], None)
    assert done["status"] == "completed" and done["request_counts"]["failed"] == 0


def test_a_pair_the_teacher_refuses_fails_alone_in_its_chunk(teacher_dir: Path, pool_pairs: list[dict], tmp_path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    migrate(url)
    raw = [*pool_pairs[520:522], _too_long(pool_pairs[522]), pool_pairs[523]]
    pairs = [validate_pair(p) for p in raw]
    request = LabelRequest(decoding=Decoding(n=2, max_tokens=20, seed=0))
    backend = TransformersBackend(teacher_dir, batch_size=8)
    with session_scope(url) as s:  # straight into the store: no API stands in the way here
        created = create_job(s, tenant="t", pairs=pairs, request=request, teacher=backend.teacher_id, chunk_size=10)
    report = process_chunk(url, created.chunk_ids[0], "w", lambda: backend)
    assert (report.outcome, report.completed, report.failed) == ("done", 3, 1)
    with session_scope(url) as s:
        items = {i.custom_id: i for i in s.scalars(select(JobItem).where(JobItem.job_id == created.job.id))}
    refused = items[raw[2]["custom_id"]]
    assert refused.state == "failed"
    assert "cannot take this pair's prompt" in refused.result["error"]
    assert "exceeds the model's context of 2048 tokens" in refused.result["error"]
    assert all(items[p["custom_id"]].state == "completed" for p in raw if p is not raw[2])
