"""The submission-time check of prompt length: its cheap bound never undercounts, and it agrees with the
teacher's own refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.annotate import LabelRequest
from pipelines.backends.base import Decoding
from pipelines.prompt_fit import PromptMeter, prompt_meter
from pipelines.settings import Settings
from relevance.pairs import validate_pair
from relevance.schemas import get_schema

TEACHER = Path(__file__).resolve().parents[2] / "models" / "relevance-teacher"


@pytest.fixture(scope="module")
def meter() -> PromptMeter:
    found = prompt_meter(Settings(teacher_model=str(TEACHER)))
    assert found is not None and found.context == 512 and found.byte_level
    return found


def _pairs(bench_dir: Path) -> list:
    rows = [json.loads(x) for x in (bench_dir / "pool.jsonl").read_text().splitlines()[:300]]
    odd = {
        "custom_id": "odd",
        "query": "é" * 60 + " 電動ドリル",
        "ad": {"title": "ü" * 100, "brand": "ß", "description": "€" * 400, "attributes": {"é" * 10: "日本" * 20}},
    }
    return [validate_pair(p) for p in [*rows, odd]]


@pytest.mark.parametrize("template", ["compact", "full"])
def test_the_bound_never_undercounts_the_prompt(meter: PromptMeter, bench_dir: Path, template: str) -> None:
    request = LabelRequest(get_schema("esci"), template, Decoding(max_tokens=16))
    for pair in _pairs(bench_dir):
        assert meter._bound(pair, request) >= meter._tokens(pair, request), pair.custom_id


def test_what_the_meter_refuses_is_what_the_teacher_refuses(meter: PromptMeter, bench_dir: Path) -> None:
    from pipelines.backends.base import PromptError
    from pipelines.backends.transformers_backend import TransformersBackend
    from relevance.prompts import build_messages

    backend = TransformersBackend(TEACHER)
    for max_tokens in (96, 160, 300):
        request = LabelRequest(get_schema("esci"), "compact", Decoding(max_tokens=max_tokens))
        pairs = _pairs(bench_dir)[:60]
        refused_here = {i for i, p in enumerate(pairs) if meter.problem(p, request)}
        prompts = [backend.render(build_messages(p, request.schema, "compact")) for p in pairs]
        try:
            backend._check_lengths([backend._encode(t, backend.has_chat_template) for t in prompts], request.decoding)
            refused_there: set[int] = set()
        except PromptError as error:
            refused_there = set(error.refused)
        assert refused_here == refused_there, max_tokens
