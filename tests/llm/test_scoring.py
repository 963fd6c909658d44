"""Next-token scoring of a closed set of continuations, on the committed tiny teacher (a byte-level BPE)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llm.scoring import first_tokens, next_token_logprobs

TEACHER = Path(__file__).resolve().parents[2] / "models" / "relevance-teacher"
LABELS = ["Exact", "Substitute", "Complement", "Irrelevant"]


@pytest.fixture(scope="module")
def teacher():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(TEACHER).eval(), AutoTokenizer.from_pretrained(TEACHER)


def test_each_label_has_its_own_first_token(teacher) -> None:
    _, tokenizer = teacher
    ids = first_tokens(tokenizer, LABELS)
    assert len(set(ids)) == 4
    for label, token in zip(LABELS, ids, strict=True):
        assert tokenizer(" " + label, add_special_tokens=False)["input_ids"][0] == token


def test_candidates_sharing_a_first_token_are_refused_by_name(tiny_lm_dir: Path) -> None:
    from transformers import AutoTokenizer

    chars = AutoTokenizer.from_pretrained(tiny_lm_dir)  # one token per character: every label starts with " "
    with pytest.raises(ValueError, match="'Exact' and 'Substitute' start with the same token"):
        first_tokens(chars, LABELS)


def test_batched_left_padded_scores_equal_one_row_at_a_time(teacher) -> None:
    model, tokenizer = teacher
    texts = ["Query: drill\nAd: cordless drill\nLabel:", "Query: a much longer query about garden hoses\nLabel:", "x"]
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    ids = first_tokens(tokenizer, LABELS)
    batched = next_token_logprobs(model, tokenizer, rows, ids, batch_size=8)
    one_by_one = np.vstack([next_token_logprobs(model, tokenizer, [r], ids, batch_size=1) for r in rows])
    assert batched.shape == (3, 4)
    assert np.all(batched <= 0)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-4)
    assert tokenizer.padding_side == "right"  # left padding is set for the call only
