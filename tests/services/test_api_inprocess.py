"""The annotation API in process: FastAPI's TestClient on the real app factory, a SQLite file, the local queue.

Settings come from ``AGPO_*`` variables exactly as a served process reads them, but into a fresh
:class:`~pipelines.settings.Settings` handed to :func:`services.api.create_app`, so the process-wide
``get_settings()`` cache is never filled or needed. Labelling runs for real with the tiny test teacher, on the
API process's own worker thread.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from infra import settings_from_env

from pipelines.db.models import Job
from pipelines.db.session import migrate, session_scope
from pipelines.keys import create_key
from pipelines.settings import Settings
from services.api import create_app

TERMINAL = ("completed", "failed", "cancelled")
LABELS = ("Exact", "Substitute", "Complement", "Irrelevant")


def _settings(env: dict[str, str]) -> Settings:
    return settings_from_env(env)


def _env(db: Path, teacher_dir: Path, auth: bool) -> dict[str, str]:
    return {
        "AGPO_DATABASE_URL": f"sqlite:///{db}",
        "AGPO_QUEUE": "local",
        "AGPO_AUTH": "true" if auth else "false",
        "AGPO_TEACHER_MODEL": str(teacher_dir),
        "AGPO_SAMPLES": "2",
        "AGPO_MAX_TOKENS": "20",
        "AGPO_CHUNK_SIZE": "5",
    }


class Api:
    """A TestClient with a tenant's key, and the keys of two tenants (``a`` and ``b``) when auth is on."""

    def __init__(self, client: TestClient, keys: dict[str, str], settings: Settings) -> None:
        self.client, self.keys, self.settings = client, keys, settings

    def headers(self, tenant: str | None = "a") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[tenant]}"} if tenant in self.keys else {}

    def get(self, url: str, tenant: str | None = "a", **kw):  # type: ignore[no-untyped-def]
        return self.client.get(url, headers={**self.headers(tenant), **kw.pop("headers", {})}, **kw)

    def post(self, url: str, tenant: str | None = "a", **kw):  # type: ignore[no-untyped-def]
        return self.client.post(url, headers={**self.headers(tenant), **kw.pop("headers", {})}, **kw)

    def wait(self, job_id: str, tenant: str | None = "a", timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"/v1/jobs/{job_id}", tenant).json()
            if job["status"] in TERMINAL:
                return job
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} did not finish in {timeout:.0f} s: {job}")


def _join_worker(client: TestClient) -> None:
    # The app's shutdown told its worker thread to stop; let it finish the chunk in hand before the module ends.
    client.app.state.dispatcher.worker.join(timeout=120)


@pytest.fixture(scope="module")
def api(teacher_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """Auth on, with an API key for each of tenants ``a`` and ``b`` created through :mod:`pipelines.keys`."""
    settings = _settings(_env(tmp_path_factory.mktemp("api-auth") / "agpo.db", teacher_dir, auth=True))
    migrate(settings.database_url)
    with session_scope(settings.database_url) as s:
        keys = {tenant: create_key(s, tenant, name="test")[0] for tenant in ("a", "b")}
    with TestClient(create_app(settings)) as client:
        yield Api(client, keys, settings)
    _join_worker(client)


@pytest.fixture(scope="module")
def open_api(teacher_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """Auth off: every caller is tenant ``default``."""
    settings = _settings(_env(tmp_path_factory.mktemp("api-open") / "agpo.db", teacher_dir, auth=False))
    with TestClient(create_app(settings)) as client:
        yield Api(client, {}, settings)
    _join_worker(client)


def _pairs(pool_pairs: list[dict], start: int, n: int) -> list[dict]:
    return pool_pairs[start : start + n]


def test_settings_come_from_the_environment_not_the_process_cache(api: Api, open_api: Api, teacher_dir: Path):
    assert api.settings.auth is True and open_api.settings.auth is False
    assert api.settings.queue == "local" and api.settings.chunk_size == 5 and api.settings.samples == 2
    assert api.client.app.state.settings is api.settings
    assert api.settings.database_url != open_api.settings.database_url


def test_health_and_readiness_shape(api: Api):
    assert api.client.get("/healthz").json() == {"status": "ok"}
    r = api.client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready" and set(body["checks"]) == {"database", "broker", "teacher"}
    for check in body["checks"].values():
        assert check["ok"] is True and isinstance(check["detail"], str) and check["ms"] >= 0
    assert body["checks"]["broker"]["detail"] == "local"
    assert "agpo_jobs" in api.client.get("/metrics").text


def test_auth_on_needs_a_valid_key(api: Api):
    missing = api.client.get("/v1/jobs")
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"
    wrong = api.client.get("/v1/jobs", headers={"Authorization": "Bearer agpo_not-a-key"})
    assert wrong.status_code == 401 and "invalid" in wrong.json()["error"]["message"]
    assert api.get("/v1/jobs").status_code == 200


def test_create_a_job_from_json_read_it_back_and_get_its_results(api: Api, pool_pairs: list[dict]):
    pairs = _pairs(pool_pairs, 0, 7)
    r = api.post("/v1/jobs", json={"pairs": pairs, "seed": 3, "metadata": {"run": "inprocess"}})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["id"].startswith("job_") and created["object"] == "annotation.job"
    assert created["request_counts"]["total"] == 7 and created["request_counts"]["rejected_lines"] == 0
    assert (created["label_schema"], created["prompt_template"], created["samples"]) == ("esci", "compact", 2)
    assert created["decoding"]["max_tokens"] == 20 and created["decoding"]["seed"] == 3
    assert created["teacher"].startswith("tiny-teacher@")

    read = api.get(f"/v1/jobs/{created['id']}").json()
    assert read["id"] == created["id"] and read["metadata"] == {"run": "inprocess"}
    assert read["created_at"] == created["created_at"]
    assert created["id"] in [j["id"] for j in api.get("/v1/jobs").json()["data"]]

    job = api.wait(created["id"])
    c = job["request_counts"]
    assert job["status"] == "completed" and c["completed"] + c["failed"] == 7 and c["pending"] == 0
    lines = [json.loads(x) for x in api.get(f"/v1/jobs/{job['id']}/results").text.splitlines()]
    assert [x["custom_id"] for x in lines] == [p["custom_id"] for p in pairs]
    for line in lines:
        # The id the engine recorded on the job is the one the worker's backend labelled with.
        assert line["teacher"] == job["teacher"] and line["prompt_version"] == job["prompt_version"]
        assert line["samples"] == 2 and line["status"] in ("completed", "failed")
        if line["status"] == "completed":
            assert line["label"] in LABELS and 0.0 < line["confidence"] <= 1.0
        else:
            assert line["label"] is None and line["error"]


def test_a_bad_pair_is_a_422_naming_its_field(api: Api, pool_pairs: list[dict]):
    jobs_before = len(api.get("/v1/jobs", params={"limit": 100}).json()["data"])
    good = _pairs(pool_pairs, 10, 1)[0]
    long_title = {**good, "ad": {**good["ad"], "title": "x" * (api.settings.max_title_chars + 1)}}
    r = api.post("/v1/jobs", json={"pairs": [long_title]})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["param"] == "pairs[0].ad.title" and error["message"].startswith("pairs[0].ad.title: ")
    assert str(api.settings.max_title_chars) in error["message"]

    no_query = {k: v for k, v in good.items() if k != "query"}
    r = api.post("/v1/jobs", json={"pairs": [good, no_query]})
    assert r.status_code == 422 and r.json()["error"]["param"] == "pairs[1].query", r.text

    r = api.post("/v1/jobs", json={"label_schema": "esci"})
    assert r.status_code == 422 and r.json()["error"]["param"] == "pairs", r.text
    r = api.post("/v1/jobs", json={"pairs": [good], "label_schema": "nope"})
    assert r.status_code == 422 and r.json()["error"]["param"] == "label_schema", r.text
    assert len(api.get("/v1/jobs", params={"limit": 100}).json()["data"]) == jobs_before  # nothing was created


def test_text_that_cannot_be_stored_and_oversized_metadata_are_422s_that_create_nothing(
    api: Api, pool_pairs: list[dict]
):
    jobs_before = len(api.get("/v1/jobs", params={"limit": 100}).json()["data"])
    good = json.dumps(_pairs(pool_pairs, 10, 1)[0])
    headers = {**api.headers(), "Content-Type": "application/json"}

    def body(pair: str = good, metadata: str = "{}") -> str:
        return '{"pairs": [' + pair + '], "metadata": ' + metadata + "}"

    # Raw bodies with JSON escapes for a NUL and a lone surrogate, as a client that does not check its strings sends.
    many = ", ".join(f'"k{i}": "v"' for i in range(17))
    cases = [
        (body(metadata=r'{"run": "\ud800"}'), "metadata", "lone surrogate"),
        (body(metadata=r'{"run": "a\u0000b"}'), "metadata", "NUL"),
        (body(metadata='{"k": "' + "x" * 513 + '"}'), "metadata", "the limit is 512"),
        (body(metadata="{" + many + "}"), "metadata", "17 keys"),
        (body(good.replace('"query": "', r'"query": "\u0000', 1)), "pairs[0].query", "NUL"),
        (body(good.replace('"custom_id": "', r'"custom_id": "\udc00', 1)), "pairs[0].custom_id", "lone surrogate"),
    ]
    for raw, param, message in cases:
        r = api.client.post("/v1/jobs", content=raw.encode(), headers=headers)
        assert r.status_code == 422, (raw[:80], r.text)
        error = r.json()["error"]
        assert error["param"] == param and message in error["message"], r.text
    nul_query = '{"pairs": [' + good.replace('"query": "', r'"query": "\u0000', 1) + "]}"
    r = api.client.post("/v1/annotate", content=nul_query.encode(), headers=headers)
    assert r.status_code == 422 and r.json()["error"]["param"] == "pairs[0].query", r.text
    assert len(api.get("/v1/jobs", params={"limit": 100}).json()["data"]) == jobs_before  # nothing was created


def test_jsonl_upload_lists_the_bad_line_in_the_errors_file(api: Api, pool_pairs: list[dict]):
    pairs = _pairs(pool_pairs, 20, 3)
    lines = [json.dumps(pairs[0]), "{not json", json.dumps(pairs[1]), json.dumps(pairs[2])]
    r = api.post(
        "/v1/jobs/jsonl",
        content="\n".join(lines).encode(),
        headers={"Content-Type": "application/x-ndjson"},
        params={"samples": 1},
    )
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["request_counts"]["total"] == 3 and job["request_counts"]["rejected_lines"] == 1
    assert job["samples"] == 1
    errors = [json.loads(x) for x in api.get(f"/v1/jobs/{job['id']}/errors").text.splitlines()]
    assert len(errors) >= 1
    rejected = [e for e in errors if e["kind"] == "invalid_input"]
    assert len(rejected) == 1 and rejected[0]["line"] == 2 and "invalid JSON" in rejected[0]["message"]
    done = api.wait(job["id"])
    results = [json.loads(x) for x in api.get(f"/v1/jobs/{job['id']}/results").text.splitlines()]
    assert [x["custom_id"] for x in results] == [p["custom_id"] for p in pairs]
    assert done["status"] == "completed" and all(x["samples"] == 1 for x in results)


def test_idempotency_key_returns_the_same_job(api: Api, pool_pairs: list[dict]):
    body = {"pairs": _pairs(pool_pairs, 30, 2), "seed": 5}
    key = {"Idempotency-Key": "inprocess-idem-1"}
    first = api.post("/v1/jobs", json=body, headers=key)
    again = api.post("/v1/jobs", json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 200), (first.text, again.text)
    assert again.json()["id"] == first.json()["id"]
    # The seed is not part of the request's identity (samples are a draw); other pairs are another request.
    other = api.post("/v1/jobs", json={**body, "pairs": _pairs(pool_pairs, 32, 2)}, headers=key)
    assert other.status_code == 409 and other.json()["error"]["param"] == "Idempotency-Key", other.text
    # Keys are per tenant: the same key from tenant b is a new job.
    theirs = api.post("/v1/jobs", "b", json=body, headers=key)
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
    api.wait(first.json()["id"])
    api.wait(theirs.json()["id"], "b")


def test_a_tenant_never_sees_another_tenants_job(api: Api, pool_pairs: list[dict]):
    job = api.post("/v1/jobs", json={"pairs": _pairs(pool_pairs, 40, 2)}).json()
    for path in ("", "/results", "/results/page", "/errors"):
        r = api.get(f"/v1/jobs/{job['id']}{path}", "b")
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error", (path, r.text)
    assert api.post(f"/v1/jobs/{job['id']}/cancel", "b").status_code == 404
    assert job["id"] not in [j["id"] for j in api.get("/v1/jobs", "b").json()["data"]]
    assert api.get(f"/v1/jobs/{job['id']}").status_code == 200
    assert api.get("/v1/jobs/job_doesnotexist").status_code == 404
    assert api.wait(job["id"])["status"] == "completed"  # b's cancel did nothing


def test_results_page_by_page_in_input_order(api: Api, pool_pairs: list[dict]):
    pairs = _pairs(pool_pairs, 50, 5)
    job = api.wait(api.post("/v1/jobs", json={"pairs": pairs}).json()["id"])
    assert job["status"] == "completed"
    pages, after = [], 0
    for _ in range(10):
        page = api.get(f"/v1/jobs/{job['id']}/results/page", params={"after": after, "limit": 2}).json()
        pages.append(page)
        if not page["has_more"]:
            break
        after = page["next_after"]
    assert [len(p["data"]) for p in pages] == [2, 2, 1]
    assert [p["next_after"] for p in pages] == [2, 4, None]
    assert [x["custom_id"] for p in pages for x in p["data"]] == [p["custom_id"] for p in pairs]
    whole = [json.loads(x) for x in api.get(f"/v1/jobs/{job['id']}/results").text.splitlines()]

    # The page's lines are the file's, with the contract's absent fields spelled out as null.
    def bare(line: dict) -> dict:
        return {k: v for k, v in line.items() if v is not None}

    assert [bare(x) for p in pages for x in p["data"]] == [bare(x) for x in whole]
    r = api.get(f"/v1/jobs/{job['id']}/results/page", params={"limit": 0})
    assert r.status_code == 422 and r.json()["error"]["param"] == "limit"


def test_cancel_stops_the_job_and_keeps_what_was_done(api: Api, pool_pairs: list[dict]):
    pairs = _pairs(pool_pairs, 100, 60)  # 12 chunks of 5: most are still queued when the cancel lands
    job = api.post("/v1/jobs", json={"pairs": pairs}).json()
    r = api.post(f"/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("cancelling", "cancelled")
    done = api.wait(job["id"])
    c = done["request_counts"]
    assert done["status"] == "cancelled" and done["completed_at"] is not None
    assert c["cancelled"] > 0 and c["completed"] + c["failed"] + c["cancelled"] == 60 and c["pending"] == 0
    lines = [json.loads(x) for x in api.get(f"/v1/jobs/{job['id']}/results").text.splitlines()]
    assert len(lines) == 60 and sum(x["status"] == "cancelled" for x in lines) == c["cancelled"]
    # Cancelling a finished job changes nothing.
    again = api.post(f"/v1/jobs/{job['id']}/cancel").json()
    assert again["status"] == "cancelled" and again["request_counts"] == c


def test_a_small_job_does_not_wait_behind_another_tenants_big_one(api: Api, pool_pairs: list[dict]):
    big = api.post("/v1/jobs", "a", json={"pairs": _pairs(pool_pairs, 2000, 600), "samples": 1})
    small = api.post("/v1/jobs", "b", json={"pairs": _pairs(pool_pairs, 2700, 5), "samples": 1})
    assert (big.status_code, small.status_code) == (201, 201)
    done_small = api.wait(small.json()["id"], "b")
    done_big = api.wait(big.json()["id"], "a")
    assert done_small["status"] == done_big["status"] == "completed"
    # 120 chunks of a were queued before b's one: first come, first served, b would have finished last.
    finished = {name: datetime.fromisoformat(job["completed_at"]) for name, job in (("a", done_big), ("b", done_small))}
    assert (finished["a"] - finished["b"]).total_seconds() > 1, finished


def test_sync_annotate_labels_a_few_pairs(api: Api, pool_pairs: list[dict]):
    pairs = _pairs(pool_pairs, 200, 2)
    r = api.post("/v1/annotate", json={"pairs": pairs, "samples": 1, "seed": 1})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [x["custom_id"] for x in data] == [p["custom_id"] for p in pairs]
    assert all(x["samples"] == 1 and x["teacher"].startswith("tiny-teacher@") for x in data)
    too_many = api.post("/v1/annotate", json={"pairs": _pairs(pool_pairs, 200, api.settings.max_sync_pairs + 1)})
    assert too_many.status_code == 413 and too_many.json()["error"]["param"] == "pairs"


def test_auth_off_every_caller_is_the_default_tenant(open_api: Api, pool_pairs: list[dict]):
    r = open_api.client.post("/v1/jobs", json={"pairs": _pairs(pool_pairs, 300, 2)})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    listed = open_api.client.get("/v1/jobs").json()["data"]
    assert [j["id"] for j in listed] == [job_id]  # its own database: only this job
    assert open_api.client.get(f"/v1/jobs/{job_id}", headers={"Authorization": "Bearer anything"}).status_code == 200
    assert open_api.wait(job_id, None)["status"] == "completed"
    with session_scope(open_api.settings.database_url) as s:
        assert s.get(Job, job_id).tenant == "default"


def test_a_cascade_job_on_a_server_without_a_student_is_a_422_naming_mode(api: Api, pool_pairs: list[dict]):
    r = api.post("/v1/jobs", json={"pairs": _pairs(pool_pairs, 0, 2), "mode": "cascade", "cascade_threshold": 0.6})
    assert r.status_code == 422 and r.json()["error"]["param"] == "mode" and "AGPO_STUDENT_MODEL" in r.text
    bad = api.post("/v1/jobs", json={"pairs": _pairs(pool_pairs, 0, 2), "mode": "student-only"})
    assert bad.status_code == 422 and "mode" in bad.text
    assert api.post("/v1/jobs", json={"pairs": _pairs(pool_pairs, 0, 2)}).json()["mode"] == "teacher"
