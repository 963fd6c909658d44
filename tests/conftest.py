"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import build_tiny_lm


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2 with a character tokenizer, saved as a standard HF model directory."""
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-lm"))
