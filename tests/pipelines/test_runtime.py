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
