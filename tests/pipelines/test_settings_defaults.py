"""The service's teacher defaults: the committed SmolLM2 teacher, labelling as its model card says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.settings import DEFAULT_TEACHER, Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AGPO_TEACHER_MODEL", "AGPO_TEACHER_BACKEND", "AGPO_PROMPT_TEMPLATE", "AGPO_LABEL_METHOD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(ROOT)


def test_the_default_teacher_is_the_committed_smollm2_adapter_with_its_own_prompt_and_method() -> None:
    card = json.loads((ROOT / DEFAULT_TEACHER / "model_card.json").read_text())
    settings = Settings()
    assert settings.teacher_model == DEFAULT_TEACHER
    assert (settings.prompt_template, settings.label_method) == (card["prompt_template"], card["label_method"])
    assert (settings.prompt_template, settings.label_method) == ("brief", "overlap")


def test_the_tiny_teacher_keeps_the_compact_prompt_and_samples() -> None:
    settings = Settings(teacher_model="models/relevance-teacher")
    assert (settings.prompt_template, settings.label_method) == ("compact", "sample")


def test_settings_given_outright_win_over_the_card(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGPO_PROMPT_TEMPLATE", "full")
    monkeypatch.setenv("AGPO_LABEL_METHOD", "sample")
    assert (Settings().prompt_template, Settings().label_method) == ("full", "sample")


def test_a_remote_backend_samples_even_when_the_card_scores(tmp_path: Path) -> None:
    # The card still names the prompt the served weights were trained on; only the transformers backend scores.
    settings = Settings(teacher_backend="openai", teacher_model=DEFAULT_TEACHER)
    assert (settings.prompt_template, settings.label_method) == ("brief", "sample")
    served = Settings(teacher_backend="openai", teacher_model="relevance-teacher")
    assert (served.prompt_template, served.label_method) == ("compact", "sample")


@pytest.mark.parametrize("content", ["not json", "[1, 2]", ""])
def test_an_unreadable_card_falls_back_to_the_plain_defaults(tmp_path: Path, content: str) -> None:
    (tmp_path / "model_card.json").write_text(content)
    settings = Settings(teacher_model=str(tmp_path))
    assert (settings.prompt_template, settings.label_method) == ("compact", "sample")
