"""Label methods in the annotation engine: sample (n answers voted), score (one greedy answer, the labels'
probabilities at its label line) and overlap (rule-written reasoning, then the probabilities), on the committed
tiny teacher (its BPE gives every label its own first token) and through the real backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.annotate import LabelRequest, cache_key, label_pairs
from pipelines.backends.base import Decoding, TeacherError
from relevance.overlap import overlap_reasoning
from relevance.parsing import parse_label
from relevance.synthetic.generator import BenchmarkConfig, generate

TEACHER = Path(__file__).resolve().parents[2] / "models" / "relevance-teacher"


@pytest.fixture(scope="module")
def backend():
    from pipelines.backends.transformers_backend import TransformersBackend

    return TransformersBackend(TEACHER, batch_size=16)


@pytest.fixture(scope="module")
def pairs() -> list[dict]:
    bench = generate(BenchmarkConfig(seed=5, sizes={"teacher_train": 0, "dev": 0, "gold_test": 24, "pool": 0}))
    return bench.splits["gold_test"]


def _request(method: str, **decoding) -> LabelRequest:
    return LabelRequest(prompt_template="compact", decoding=Decoding(method=method, **decoding))


def test_score_labels_with_the_probability_of_the_greedy_answers_label(backend, pairs) -> None:
    greedy = label_pairs(pairs, backend, _request("sample", n=1, temperature=0.0, max_tokens=160), batch_size=8)
    scored = label_pairs(pairs, backend, _request("score", temperature=0.0, max_tokens=160), batch_size=8)
    for g, s in zip(greedy, scored, strict=True):
        assert s.label is not None and s.error is None
        assert 0.25 <= s.confidence <= 1.0 and s.confidence == max(s.distribution.values())
        assert sum(s.distribution.values()) == pytest.approx(1.0)
        assert parse_label(s.reasoning) == s.label  # the answer it returns ends in its label line
        assert s.samples[0]["finish_reason"] == "score" and s.samples[0]["completion_tokens"] > 0
        assert 0.0 < s.samples[0]["label_mass"] <= 1.0
        # The same reasoning as the greedy answer, read up to its label line.
        assert s.reasoning.rsplit("\nLabel:", 1)[0] == g.reasoning.rsplit("\nLabel:", 1)[0]
    agree = sum(g.label == s.label for g, s in zip(greedy, scored, strict=True)) / len(pairs)
    assert agree >= 0.9  # the most probable label is almost always the one greedy decoding wrote


def test_overlap_writes_the_reasoning_by_rule_and_generates_nothing(backend, pairs) -> None:
    outcomes = label_pairs(pairs, backend, _request("overlap"), batch_size=8)
    for pair, o in zip(pairs, outcomes, strict=True):
        assert o.reasoning.startswith(overlap_reasoning(pair["query"], pair["ad"]["title"]) + "\nLabel: ")
        assert o.samples[0]["completion_tokens"] == 0 and o.label in o.distribution


def test_batches_do_not_change_a_pairs_scores(backend, pairs) -> None:
    one = label_pairs(pairs[:6], backend, _request("overlap"), batch_size=1)
    many = label_pairs(pairs[:6], backend, _request("overlap"), batch_size=6)
    for a, b in zip(one, many, strict=True):
        assert a.label == b.label and a.confidence == pytest.approx(b.confidence, abs=1e-4)


def test_a_backend_that_cannot_score_says_to_sample(teacher_url: str, pairs) -> None:
    from pipelines.backends.openai_backend import OpenAIBackend

    with (
        OpenAIBackend(model="tiny-teacher", base_url=teacher_url) as remote,
        pytest.raises(TeacherError, match="use label_method 'sample'"),
    ):
        label_pairs(pairs[:2], remote, _request("score"))


def test_a_tokenizer_that_cannot_tell_labels_apart_is_a_teacher_error(tiny_backend, pairs) -> None:
    with pytest.raises(TeacherError, match="start with the same token"):
        label_pairs(pairs[:2], tiny_backend, _request("overlap"))


def test_scored_methods_read_one_answer_and_key_the_cache_by_what_changes_it(pairs) -> None:
    with pytest.raises(ValueError, match="n must be 1"):
        Decoding(method="score", n=4)
    with pytest.raises(ValueError, match="method must be one of"):
        Decoding(method="vote")
    pair, teacher = pairs[0], "t@1"
    # Sampled labels keep the key they had before label methods existed.
    assert "method" not in Decoding(n=4).cache_key()
    # A scored answer is greedy: temperature does not enter its key; max_tokens does.
    assert cache_key(pair, _request("score", temperature=1.0), teacher) == cache_key(
        pair, _request("score", temperature=0.0), teacher
    )
    assert cache_key(pair, _request("score", max_tokens=10), teacher) != cache_key(pair, _request("score"), teacher)
    # An overlap answer depends on no decoding setting, and every method has its own entries.
    assert cache_key(pair, _request("overlap", max_tokens=10), teacher) == cache_key(pair, _request("overlap"), teacher)
    keys = {cache_key(pair, _request(m), teacher) for m in ("sample", "score", "overlap")}
    assert len(keys) == 3


def test_a_conversation_is_sent_as_it_is_and_labelled_by_every_method(backend, pairs) -> None:
    """A chat batch line (pipelines.chat_lines): the teacher reads its messages, not the template's prompt; the
    overlap rule needs a query and a title, so the teacher writes the reasoning there, as under score."""
    pair = pairs[0]
    asked = LabelRequest(prompt_template="compact").messages(pair)
    chat = {"custom_id": "c1", "messages": asked}
    other = {"custom_id": "c2", "messages": [*asked[:-1], {"role": "user", "content": asked[-1]["content"] + "!"}]}
    for method in ("overlap", "score", "sample"):
        request = _request(method, n=1, temperature=0.0, max_tokens=160)
        assert request.messages(chat) == asked
        on_pair, on_chat = label_pairs([pair, chat], backend, request, batch_size=8)
        assert on_chat.label is not None and on_chat.error is None, (method, on_chat)
        if method != "overlap":  # the same prompt as the pair's, so the same answer
            assert on_chat.label == on_pair.label and on_chat.reasoning == on_pair.reasoning
        else:
            assert on_chat.samples[0]["completion_tokens"] > 0 and on_pair.samples[0]["completion_tokens"] == 0
    request = _request("score")
    assert cache_key(chat, request, "t") == cache_key({**chat, "custom_id": "z"}, request, "t")
    assert cache_key(chat, request, "t") != cache_key(other, request, "t") != cache_key(pair, request, "t")
