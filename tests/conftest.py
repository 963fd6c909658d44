"""Fixtures shared across the tree: a tiny causal LM, tiny teacher servers (real uvicorn on free local ports), a
fresh PostgreSQL database and a private Redis per module (`infra.py`), and the small synthetic benchmark the
student and experiment tests train on."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from helpers import build_tiny_lm

from relevance.synthetic import generate_benchmark


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2 with a character tokenizer, saved as a standard HF model directory."""
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-lm"))


SIZES = {"teacher_train": 320, "dev": 60, "gold_test": 120, "pool": 0}
# Easy pairs, Exact or Irrelevant: a few dozen steps from MiniLM learn a real signal there.
MIX = {"difficulty_mix": {"easy": 1.0}, "label_mix": {"Exact": 0.5, "Irrelevant": 0.5}}


@pytest.fixture(scope="session")
def student_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("student-bench")
    generate_benchmark(out, seed=11, **SIZES, **MIX)
    return out


# Only characters the tiny model's tokenizer knows (lower case, digits, ": \n"), so the template text survives
# tokenisation and a test can count its tokens.
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


@contextmanager
def serve(app: object) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread on a free 127.0.0.1 port; yield its base URL (no ``/v1``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def serve_app():
    """:func:`serve`, for tests to start their own servers (conftest modules are not importable by name)."""
    return serve


@pytest.fixture
def dead_url() -> str:
    """A base URL on a port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="session")
def chat_lm_dir(tiny_lm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model again, with a chat template on its tokenizer."""
    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("tiny-chat") / "tiny-chat-lm"
    shutil.copytree(tiny_lm_dir, out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_backend(tiny_lm_dir: Path):
    """One loaded TransformersBackend on the tiny model (no chat template), shared by the session."""
    from pipelines.backends.transformers_backend import TransformersBackend

    return TransformersBackend(tiny_lm_dir, batch_size=8)


@pytest.fixture(scope="session")
def teacher_url(tiny_backend) -> Iterator[str]:
    """A real teacher server (uvicorn, own thread) over ``tiny_backend``, serving it as ``tiny-teacher``."""
    from services.teacher_server import create_app

    with serve(create_app(tiny_backend, served_name="tiny-teacher")) as url:
        yield url + "/v1"


@pytest.fixture(scope="session")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Countdown base model (one layer, a sliver of an epoch): enough to train, sample and evaluate."""
    from experiments.countdown.base_model import BaseRecipe, build_base

    out = tmp_path_factory.mktemp("countdown") / "base"
    build_base(out, BaseRecipe(trace_passes=1, epochs=0.02, hidden=32, layers=1, batch_size=32), command="test")
    return out


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL, dropped after the module."""
    from infra import create_database, drop_database

    name = create_database()
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    drop_database(name)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A private redis-server for the module (see :class:`infra.RedisServer`)."""
    from infra import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()
