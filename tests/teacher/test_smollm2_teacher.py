"""The committed SmolLM2 teachers (LoRA adapters on the real SmolLM2-135M-Instruct base; ``-more`` continues the
first on more real rows): they list every real row they trained on, none of them held out; the recommended one
loads from the pinned GGUF wheel, answers the official ``openai`` client through ``agpo serve teacher``'s app,
and labels real Home Depot test pairs (never among its training rows) with every label method."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm.bases import adapter_base, is_adapter
from relevance.parsing import parse_label
from relevance.prompts import build_messages
from relevance.real import homedepot

ROOT = Path(__file__).resolve().parents[2]
FIRST = ROOT / "models/relevance-teacher-smollm2"
TEACHER = ROOT / "models/relevance-teacher-smollm2-more"


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((TEACHER / "model_card.json").read_text())


@pytest.mark.parametrize("adapter", [FIRST, TEACHER], ids=lambda p: p.name)
def test_each_committed_teacher_is_a_small_adapter_listing_its_real_rows(adapter: Path) -> None:
    card = json.loads((adapter / "model_card.json").read_text())
    assert is_adapter(adapter) and adapter_base(adapter) == "smollm2-135m-instruct"
    assert (adapter / "adapter_model.safetensors").stat().st_size < 16 * 2**20
    real = card["data"]["real"]
    assert card["base"]["gguf_sha256"] and real["rows"] > 0
    ids = set((adapter / "training_ids.txt").read_text().split())
    assert len(ids) == real["rows"] + real["rl_rows"] + real.get("earlier_rows", 0)
    held_out = {p.custom_id for s in ("dev", "test") for p in homedepot(s).pairs}
    assert not ids & held_out, "the teacher trained on rows its evaluations use"


def test_the_continued_teacher_keeps_every_row_of_the_first() -> None:
    first = set((FIRST / "training_ids.txt").read_text().split())
    assert first < set((TEACHER / "training_ids.txt").read_text().split())


def test_it_labels_real_pairs_through_the_openai_client(card: dict, serve_app) -> None:
    from openai import OpenAI

    from pipelines.backends.transformers_backend import TransformersBackend
    from services.teacher_server import create_app

    pairs = [json.loads(p.to_json()) for p in homedepot("test").pairs[:4]]
    backend = TransformersBackend(TEACHER, batch_size=8, dtype="bfloat16")
    with serve_app(create_app(backend, served_name="relevance-teacher")) as url:
        client = OpenAI(base_url=url + "/v1", api_key="unused")
        assert [m.id for m in client.models.list().data] == ["relevance-teacher"]
        labels = []
        for pair in pairs:
            answer = client.chat.completions.create(
                model="relevance-teacher",
                messages=build_messages(pair, card["label_schema"], card["prompt_template"]),
                temperature=0,
                max_tokens=48,
            )
            labels.append(parse_label(answer.choices[0].message.content))
        # The engine's scored label methods on the same backend: the adapter was trained on the rule-written
        # overlap reasoning, so after it (and after its own) nearly all the probability goes to some label.
        from pipelines.annotate import LabelRequest, label_pairs
        from pipelines.backends.base import Decoding

        def request(method: str) -> LabelRequest:
            return LabelRequest(
                prompt_template=card["prompt_template"], decoding=Decoding(max_tokens=48, method=method)
            )

        scored = label_pairs(pairs, backend, request("score"))
        overlap = label_pairs(pairs, backend, request("overlap"))
    backend.close()
    assert all(label in ("Exact", "Substitute", "Complement", "Irrelevant") for label in labels), labels
    # Scored labels are probabilities at the label line (how often they match the written label is measured on
    # hundreds of pairs by `agpo teacher eval --method score`: on 4 pairs a near tie or a batch's bf16 rounding
    # decides it).
    for outcome in scored:
        assert outcome.label in outcome.distribution and outcome.reasoning.endswith(f"Label: {outcome.label}")
        assert outcome.confidence == max(outcome.distribution.values()) and outcome.samples[0]["label_mass"] > 0.9
    assert all(o.samples[0]["label_mass"] > 0.9 for o in overlap), [o.samples[0]["label_mass"] for o in overlap]
