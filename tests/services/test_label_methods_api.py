"""Label methods through the API: a request (or the server's AGPO_LABEL_METHOD) picks sample, score or overlap;
a job records its method and its results carry probabilities. The committed tiny teacher answers (its BPE gives
every label its own first token), on the API process's own worker thread and a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from test_api_inprocess import Api, _join_worker, _settings

from pipelines.settings import Settings
from services.api import create_app

TEACHER = Path(__file__).resolve().parents[2] / "models" / "relevance-teacher"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    env = {
        "AGPO_DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('api-methods') / 'agpo.db'}",
        "AGPO_QUEUE": "local",
        "AGPO_AUTH": "false",
        "AGPO_TEACHER_MODEL": str(TEACHER),
        "AGPO_PROMPT_TEMPLATE": "compact",
        "AGPO_SAMPLES": "2",
        "AGPO_CHUNK_SIZE": "4",
    }
    settings = _settings(env)
    with TestClient(create_app(settings)) as client:
        yield Api(client, {}, settings)
    _join_worker(client)


def test_sync_annotate_scores_labels_when_asked(api: Api, pool_pairs: list[dict]) -> None:
    pairs = pool_pairs[:3]
    r = api.post("/v1/annotate", None, json={"pairs": pairs, "label_method": "score"})
    assert r.status_code == 200, r.text
    for line in r.json()["data"]:
        assert line["status"] == "completed" and line["samples"] == 1
        assert set(line["distribution"]) == {"Exact", "Substitute", "Complement", "Irrelevant"}
        assert line["confidence"] == pytest.approx(max(line["distribution"].values()), abs=1e-6)
        assert line["reasoning"].endswith(f"Label: {line['label']}")


def test_a_job_records_its_method_and_labels_every_pair(api: Api, pool_pairs: list[dict]) -> None:
    pairs = pool_pairs[10:19]
    r = api.post("/v1/jobs", None, json={"pairs": pairs, "label_method": "overlap"})
    assert r.status_code == 201, r.text
    job = api.wait(r.json()["id"], None)
    assert job["status"] == "completed" and job["samples"] == 1 and job["decoding"]["method"] == "overlap"
    lines = [x for x in api.get(f"/v1/jobs/{job['id']}/results", None).iter_lines() if x]
    assert len(lines) == len(pairs)


def test_the_jsonl_upload_takes_the_method_as_a_query_parameter(api: Api, pool_pairs: list[dict]) -> None:
    import json

    body = "\n".join(json.dumps(p) for p in pool_pairs[30:34]).encode()
    r = api.post(
        "/v1/jobs/jsonl",
        None,
        params={"label_method": "score"},
        content=body,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 201, r.text
    assert api.wait(r.json()["id"], None)["decoding"]["method"] == "score"


def test_several_samples_with_a_scored_method_is_a_422_naming_samples(api: Api, pool_pairs: list[dict]) -> None:
    r = api.post("/v1/annotate", None, json={"pairs": pool_pairs[:1], "label_method": "score", "samples": 4})
    assert r.status_code == 422 and r.json()["error"]["param"] == "samples"
    bad = api.post("/v1/annotate", None, json={"pairs": pool_pairs[:1], "label_method": "vote"})
    assert bad.status_code == 422 and "label_method" in bad.text


def test_a_server_cannot_default_to_scoring_on_a_backend_that_only_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGPO_TEACHER_BACKEND", "openai")
    monkeypatch.setenv("AGPO_LABEL_METHOD", "score")
    with pytest.raises(ValidationError, match="AGPO_LABEL_METHOD=score needs AGPO_TEACHER_BACKEND=transformers"):
        Settings()
