"""Test helpers: a tiny causal LM built offline (no hub) and TRL trainers around it."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789 +-*/=?.,:()\n")
SPECIALS = ["<pad>", "<eos>", "<unk>"]


def build_tiny_lm(path: Path, seed: int = 0) -> Path:
    """A 2-layer Qwen2 with a character tokenizer: small enough for CPU tests, real enough for TRL."""
    vocab = {tok: i for i, tok in enumerate(SPECIALS + CHARS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=128,
        pad_token_id=vocab["<pad>"],
        eos_token_id=vocab["<eos>"],
        bos_token_id=vocab["<eos>"],
        tie_word_embeddings=True,
    )
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


PROMPTS = ["1+1=", "2+3=", "4*5=", "9-3="]


def make_trl_trainer(
    trainer_cls: type,
    config_cls: type,
    model_dir: Path,
    out_dir: Path,
    reward_funcs: object,
    group_size: int = 4,
    **config: object,
) -> object:
    """A TRL GRPO-family trainer on the tiny model, one generation batch of all PROMPTS x group_size."""
    from datasets import Dataset

    args = config_cls(
        output_dir=str(out_dir),
        per_device_train_batch_size=len(PROMPTS) * group_size,
        num_generations=group_size,
        max_completion_length=6,
        report_to="none",
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        logging_steps=1,
        seed=0,
        **config,
    )
    return trainer_cls(
        model=str(model_dir),
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": PROMPTS}),
    )
