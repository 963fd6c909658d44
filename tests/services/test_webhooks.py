"""A job that ends tells its webhook: a real receiver (uvicorn on a free port) refuses the first try and takes the
second; the event arrives signed as Standard Webhooks sign, verified with the `standardwebhooks` library, once
taken and never again. The API runs in process on the local queue with the tiny teacher."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient
from infra import local_env, settings_from_env
from standardwebhooks import Webhook

from pipelines.db.models import Job, WebhookDelivery
from pipelines.db.session import migrate, session_scope
from pipelines.webhooks import deliver_due, pinned, target_problem, tenant_secret
from services.api import create_app

SECRET = "whsec_" + base64.b64encode(b"agpo-test-webhook-secret-32bytes").decode()


def _hooked_env(db_dir: Path, teacher_dir: Path) -> dict[str, str]:
    return local_env(
        db_dir,
        teacher_dir,
        AGPO_BEAT_INTERVAL_SECONDS="0.5",
        AGPO_WEBHOOK_SECRET=SECRET,
        AGPO_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
    )


def receiver(calls: list[tuple[dict[str, str], bytes]], uploads: list[bytes]) -> FastAPI:
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        calls.append((dict(request.headers), await request.body()))
        return Response(status_code=503 if len(calls) == 1 else 204)  # the first try fails

    @app.post("/upload")
    async def upload(request: Request) -> Response:
        uploads.append(await request.body())
        return Response(status_code=204)

    return app


def test_a_finished_job_tells_its_webhook_signed_and_retried(
    teacher_dir: Path, pool_pairs: list[dict], tmp_path: Path, serve_app
) -> None:  # type: ignore[no-untyped-def]
    calls: list[tuple[dict[str, str], bytes]] = []
    uploads: list[bytes] = []
    env = _hooked_env(tmp_path, teacher_dir)  # the receivers run here: only the allowlist lets them in
    settings = settings_from_env(env)
    migrate(settings.database_url)
    with session_scope(settings.database_url) as s:
        own = tenant_secret(s, "default")  # the tenant's own secret signs its webhooks, not the service's
    with serve_app(receiver(calls, uploads)) as hook_url, TestClient(create_app(settings)) as http:
        bad = http.post("/v1/jobs", json={"pairs": pool_pairs[:2], "webhook_url": "ftp://example.com/x"})
        assert bad.status_code == 422 and "webhook_url" in bad.text
        jsonl = "".join(json.dumps(p) + "\n" for p in pool_pairs[:2])
        refused = http.post("/v1/jobs/jsonl", params={"webhook_url": "nowhere"}, content=jsonl)
        assert refused.status_code == 422 and refused.json()["error"]["param"] == "webhook_url"
        upload = http.post("/v1/jobs/jsonl", params={"webhook_url": f"{hook_url}/upload"}, content=jsonl)
        assert upload.status_code == 201 and upload.json()["webhook_url"] == f"{hook_url}/upload"
        upload_id = upload.json()["id"]
        created = http.post("/v1/jobs", json={"pairs": pool_pairs[:6], "webhook_url": f"{hook_url}/hook"})
        assert created.status_code == 201 and created.json()["webhook_url"] == f"{hook_url}/hook"
        job_id = created.json()["id"]
        deadline = time.monotonic() + 120
        while len(calls) < 2 or not uploads:
            assert time.monotonic() < deadline, f"webhook calls so far: {len(calls)}"
            time.sleep(0.2)
        time.sleep(3)  # a delivered event is never sent again
        http.app.state.dispatcher.worker.join(timeout=0.1)
    assert len(calls) == 2 and len(uploads) == 1
    assert json.loads(uploads[0])["data"]["id"] == upload_id
    (h1, b1), (h2, b2) = calls
    assert h1["webhook-id"] == h2["webhook-id"] and b1 == b2  # a retry is the same message
    signed = {k: v for k, v in h2.items() if k.startswith("webhook-")}
    event = Webhook(own).verify(b2, signed)
    with pytest.raises(Exception):  # noqa: B017, PT011 - the service's secret is not the one that signed it
        Webhook(SECRET).verify(b2, signed)
    assert event["type"] == "job.completed" and event["data"]["id"] == job_id
    assert event["data"]["request_counts"]["total"] == 6 and event["data"]["status"] == "completed"
    with pytest.raises(Exception):  # noqa: B017, PT011 - any verification error: a forged body
        Webhook(own).verify(b2.replace(b"completed", b"cancelled"), {k: v for k, v in h2.items()})
    with session_scope(settings.database_url) as s:
        (delivery,) = s.query(WebhookDelivery).filter(WebhookDelivery.url.endswith("/hook")).all()
        assert delivery.attempts == 2 and delivery.delivered_at is not None and delivery.last_error is None


def _resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    """Names resolved from a table (this sandbox has no DNS); the address checks themselves are the real ones."""

    def resolve(host: str) -> list[str]:
        if host not in table:
            raise OSError("unknown host")
        return table[host]

    return resolve


@pytest.mark.parametrize(
    ("url", "allowed", "problem"),
    [
        ("https://hooks.example.com/x", [], None),
        ("http://127.0.0.1:9/x", [], "not a public address"),
        ("http://169.254.169.254/latest/meta-data", [], "not a public address"),
        ("http://[::1]/x", [], "not a public address"),
        ("http://inside.example.com/x", [], "resolves to 10.0.0.7"),  # a public name pointing inside
        ("http://nowhere.invalid/x", [], "does not resolve"),
        ("http://127.0.0.1:9/x", ["127.0.0.1"], None),
        ("https://a.hooks.acme.com/x", ["*.acme.com"], None),
        ("https://hooks.example.com/x", ["*.acme.com"], "not in AGPO_WEBHOOK_ALLOWED_HOSTS"),
    ],
)
def test_webhook_targets_inside_the_network_are_refused(url: str, allowed: list[str], problem: str | None) -> None:
    resolve = _resolver(
        {
            "hooks.example.com": ["93.184.216.34"],
            "127.0.0.1": ["127.0.0.1"],
            "169.254.169.254": ["169.254.169.254"],
            "::1": ["::1"],
            "inside.example.com": ["93.184.216.34", "10.0.0.7"],
        }
    )
    found = target_problem(url, allowed, resolve)
    assert (found is None) if problem is None else (problem in (found or "")), found


def test_the_api_refuses_an_inside_target_and_a_due_delivery_is_checked_again(
    teacher_dir: Path, pool_pairs: list[dict], tmp_path: Path
) -> None:
    env = local_env(tmp_path, teacher_dir)
    settings = settings_from_env(env)
    with TestClient(create_app(settings)) as http:
        for url in ("http://127.0.0.1:9/hook", "http://localhost/hook", "http://169.254.169.254/latest"):
            r = http.post("/v1/jobs", json={"pairs": pool_pairs[:1], "webhook_url": url})
            assert r.status_code == 422 and r.json()["error"]["param"] == "webhook_url", r.text
            assert "not a public address" in r.json()["error"]["message"]
    # A delivery due to a target the allowlist no longer holds is given up without a request.
    with session_scope(settings.database_url) as s:
        job = s.query(Job).first()
        assert job is None  # every job above was refused before it was stored
    allowed = settings_from_env({**env, "AGPO_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"})
    with TestClient(create_app(allowed)) as http:
        created = http.post("/v1/jobs", json={"pairs": pool_pairs[:1], "webhook_url": "http://127.0.0.1:9/hook"})
        assert created.status_code == 201
        deadline = time.monotonic() + 120
        while http.get(f"/v1/jobs/{created.json()['id']}").json()["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.2)
    with session_scope(settings.database_url) as s:
        s.query(WebhookDelivery).update({"attempts": 0, "delivered_at": None, "last_error": None})
    assert deliver_due(settings.database_url, None, allowed=["hooks.example.com"], max_attempts=8) == 0
    with session_scope(settings.database_url) as s:
        (delivery,) = s.query(WebhookDelivery).all()
        assert delivery.attempts == 8 and delivery.delivered_at is None
        assert delivery.last_error.startswith("refused: host '127.0.0.1' is not in AGPO_WEBHOOK_ALLOWED_HOSTS")
    # A name is resolved once a try, and the try connects to the address that was checked: a name that answers a
    # public address to the check and an inside one to the connection (DNS rebinding) never reaches inside. This
    # sandbox has no DNS or outside network, so the names come from a table and httpx's MockTransport records the
    # request that would have left.
    sent: list[httpx.Request] = []
    recorder = httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(204))
    with session_scope(settings.database_url) as s:
        s.query(WebhookDelivery).update(
            {"attempts": 0, "delivered_at": None, "last_error": None, "url": "https://hooks.example.com:8443/in?x=1"}
        )
    public = _resolver({"hooks.example.com": ["93.184.216.34"]})
    assert deliver_due(settings.database_url, None, resolve=public, transport=recorder) == 1
    (request,) = sent
    assert str(request.url) == "https://93.184.216.34:8443/in?x=1"
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"  # the certificate is checked for the name
    with session_scope(settings.database_url) as s:
        s.query(WebhookDelivery).update({"attempts": 0, "delivered_at": None})
    rebound = _resolver({"hooks.example.com": ["10.0.0.7"]})
    assert deliver_due(settings.database_url, None, resolve=rebound, transport=recorder) == 0 and len(sent) == 1


def test_a_batch_tells_its_webhook_once_in_openais_batch_events(
    teacher_dir: Path, pool_pairs: list[dict], tmp_path: Path, serve_app
) -> None:  # type: ignore[no-untyped-def]
    """A batch names its webhook in the metadata (OpenAI's request has no field for it); its end arrives once as
    ``batch.<status>`` with the batch object, driven by the official openai client against a served API."""
    import openai

    calls: dict[str, list[bytes]] = {}
    hooks = FastAPI()

    @hooks.post("/{name}")
    async def hook(name: str, request: Request) -> Response:
        calls.setdefault(name, []).append(await request.body())
        return Response(status_code=503 if len(calls[name]) == 1 else 204)  # every target refuses its first try

    env = _hooked_env(tmp_path, teacher_dir)
    settings = settings_from_env(env)
    migrate(settings.database_url)
    body = [{"pair": {"query": x["query"], "ad": x["ad"]}} for x in pool_pairs[:4]]
    lines = [
        {"custom_id": x["custom_id"], "method": "POST", "url": "/v1/chat/completions", "body": b}
        for x, b in zip(pool_pairs, body, strict=False)
    ]
    path = tmp_path / "batch.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with serve_app(hooks) as hook_url, serve_app(create_app(settings)) as api_url:
        oa = openai.OpenAI(base_url=f"{api_url}/v1", api_key="none", max_retries=0)
        uploaded = oa.files.create(file=path.open("rb"), purpose="batch")

        def create(**metadata: str):  # type: ignore[no-untyped-def]
            return oa.batches.create(
                input_file_id=uploaded.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata=metadata,
            )

        with pytest.raises(openai.UnprocessableEntityError, match=r"metadata\.webhook_url"):
            create(webhook_url="gopher://example.com")
        done = create(webhook_url=f"{hook_url}/done", team="ads")
        stopped = create(webhook_url=f"{hook_url}/stopped")
        oa.batches.cancel(stopped.id)
        deadline = time.monotonic() + 120
        while len(calls.get("done", [])) < 2 or len(calls.get("stopped", [])) < 2:
            assert time.monotonic() < deadline, calls
            time.sleep(0.2)
        time.sleep(3)  # a delivered event is never sent again
        final = {b.id: b.status for b in (oa.batches.retrieve(done.id), oa.batches.retrieve(stopped.id))}
    assert {name: len(bodies) for name, bodies in calls.items()} == {"done": 2, "stopped": 2}
    for name, batch in (("done", done), ("stopped", stopped)):
        first, second = (json.loads(b) for b in calls[name])
        assert first == second and second["data"]["id"] == batch.id and second["data"]["object"] == "batch"
        assert second["type"] == f"batch.{final[batch.id]}" == f"batch.{second['data']['status']}"
    assert final[done.id] == "completed" and json.loads(calls["done"][1])["data"]["metadata"]["team"] == "ads"
    assert final[stopped.id] in ("cancelled", "completed")  # a cancel can arrive after the last pair


def test_a_pinned_request_keeps_the_name_for_host_and_tls() -> None:
    assert pinned("http://hooks.example.com/x", None) == ("http://hooks.example.com/x", {}, {})
    url, headers, extensions = pinned("http://hooks.example.com/x", "93.184.216.34")
    assert (url, headers, extensions) == ("http://93.184.216.34/x", {"host": "hooks.example.com"}, {})
    url, headers, extensions = pinned("https://u:p@hooks.example.com/x", "2606:2800:220:1:248:1893:25c8:1946")
    assert url == "https://[2606:2800:220:1:248:1893:25c8:1946]/x"
    assert headers == {"host": "hooks.example.com"} and extensions == {"sni_hostname": "hooks.example.com"}
