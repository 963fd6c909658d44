"""The teacher's tokenizer: trained in Qwen2's pipeline, so AutoTokenizer's reload encodes identically."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer, Qwen2Config

from relevance.prompts import get_template
from teacher.data import load_benchmark, messages
from teacher.tokenizer import CHAT_TEMPLATE, IM_END, IM_START, PAD, template_phrases, train_tokenizer


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return load_benchmark(seed=3, sizes={"teacher_train": 300}).splits["teacher_train"]


@pytest.fixture(scope="module")
def trained(records: list[dict]):  # type: ignore[no-untyped-def]
    texts = [str(messages(r, "esci", "compact")) + r["meta"]["reasoning"] for r in records]
    return train_tokenizer(texts, vocab_size=600, phrases=template_phrases())


@pytest.fixture(scope="module")
def reloaded(trained, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("tok")
    trained.save_pretrained(out, save_jinja_files=False)
    # AutoTokenizer picks the tokenizer class from the model's config: a qwen2 model gets Qwen2Tokenizer.
    Qwen2Config(
        vocab_size=len(trained),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=32,
    ).save_pretrained(out)
    return AutoTokenizer.from_pretrained(out), out


def test_template_phrases_are_the_fixed_prompt_passages() -> None:
    phrases = template_phrases()
    assert phrases[0] == get_template("compact").system
    assert any(p.startswith("\nLabels:\n- Exact:") and p.endswith("Irrelevant.") for p in phrases)


def test_reloaded_tokenizer_is_qwen2_and_encodes_identically(trained, reloaded, records) -> None:  # type: ignore[no-untyped-def]
    tokenizer, _ = reloaded
    assert type(tokenizer).__name__ == "Qwen2Tokenizer"
    assert len(tokenizer) == len(trained)
    chats = [messages(r, "esci", "compact") for r in records[:20]]
    prompts = [trained.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in chats]
    prompts += [r["meta"]["reasoning"] for r in records[:50]]
    prompts += ["Café 1tb\t SSD\r\n  ünïcode ☃ 'll", "<|im_start|>user\nQuery: x<|im_end|>\n"]
    for text in prompts:
        ids = trained(text, add_special_tokens=False)["input_ids"]
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == ids
        assert tokenizer.decode(ids) == text


def test_specials_and_fixed_passages_are_single_tokens(reloaded) -> None:  # type: ignore[no-untyped-def]
    tokenizer, _ = reloaded
    assert (tokenizer.pad_token, tokenizer.eos_token) == (PAD, IM_END)
    for token in (PAD, IM_START, IM_END, *template_phrases()):
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1, token[:30]


def test_chat_template_renders_chatml_with_generation_prompt(reloaded) -> None:  # type: ignore[no-untyped-def]
    tokenizer, out = reloaded
    assert "chat_template" in (Path(out) / "tokenizer_config.json").read_text()
    chat = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    text = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    assert text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    closed = tokenizer.apply_chat_template([*chat, {"role": "assistant", "content": "A"}], tokenize=False)
    assert closed == text + "A<|im_end|>\n"  # prefix-preserving: a prompt plus the answer is the conversation
    assert tokenizer.chat_template == CHAT_TEMPLATE
