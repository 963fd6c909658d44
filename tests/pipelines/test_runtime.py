"""Readiness of a remote teacher: the check sends the teacher's key, as `vllm serve --api-key` requires."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipelines.backends.base import TeacherError
from pipelines.runtime import check_teacher
from pipelines.settings import Settings

KEY = "sk-teacher"


class _KeyedModels(BaseHTTPRequestHandler):
    """``GET /v1/models`` that answers 401 unless the bearer key is right, like vLLM's server with a key."""

    def do_GET(self) -> None:
        ok = self.path == "/v1/models" and self.headers.get("Authorization") == f"Bearer {KEY}"
        body = b'{"object": "list", "data": []}' if ok else b'{"error": "Unauthorized"}'
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def keyed_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeyedModels)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_readiness_sends_the_teacher_key(keyed_server: str) -> None:
    settings = Settings(teacher_backend="openai", teacher_url=keyed_server, teacher_api_key=KEY)
    assert check_teacher(settings) == "openai server answers"
    wrong = Settings(teacher_backend="openai", teacher_url=keyed_server, teacher_api_key="sk-wrong")
    with pytest.raises(TeacherError, match="401"):
        check_teacher(wrong)


def test_a_served_teachers_revision_setting_names_it_in_jobs_results_and_the_cache(dead_url: str) -> None:
    from pipelines.backends.openai_backend import OpenAIBackend
    from pipelines.runtime import backend_options, configured_teacher_id

    unnamed = Settings(teacher_backend="openai", teacher_model="relevance", teacher_url=dead_url)
    named = unnamed.model_copy(update={"teacher_revision": "2026-12-01"})
    assert configured_teacher_id(unnamed) == "relevance@served"
    assert configured_teacher_id(named) == "relevance@2026-12-01"
    # The worker's backend takes it as given: nothing to ask a server that may publish none.
    with OpenAIBackend(**backend_options(named), model="relevance") as backend:  # type: ignore[arg-type]
        assert backend.teacher_id == "relevance@2026-12-01"
