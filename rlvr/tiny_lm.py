"""Tiny decoder-only language models built from scratch: tokenizer, config and supervised fine-tuning.

No weights come from a hub: a model is a character-level tokenizer trained with ``tokenizers`` on the task's
own text, a small Qwen2 (an architecture that transformers, TRL and vLLM all load), and SFT through TRL's
``SFTTrainer``. The result is a standard HF model directory, loadable with ``from_pretrained``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"


# Qwen2's pre-tokenizer. AutoTokenizer rebuilds any tokenizer of a qwen2 model with this pipeline (and the saved
# vocab and merges), so ours must use the very same one or a reloaded tokenizer would split text differently.
QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def _byte_level(char: str) -> list[str]:
    """The byte-level symbols (GPT-2's printable byte alphabet) that stand for ``char``."""
    return [s for s, _ in pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(char)]


def build_char_tokenizer(texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """A byte-level BPE with no merges, so one token per character seen in ``texts``, plus specials.

    Token ids follow the sorted characters, so the vocabulary is deterministic. The pipeline is Qwen2's, which
    is what ``AutoTokenizer`` (and so TRL and vLLM) rebuilds for a qwen2 model directory.
    """
    alphabet = sorted(set().union(*map(set, texts)))
    symbols = [PAD, EOS, UNK]
    for char in alphabet:
        symbols += [s for s in _byte_level(char) if s not in symbols]
    vocab = {tok: i for i, tok in enumerate(symbols)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=None, fuse_unk=False, byte_fallback=False))
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens([PAD, EOS, UNK])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, eos_token=EOS, unk_token=UNK)
    tokenizer.padding_side = "left"  # generation pads prompts on the left
    return tokenizer


@dataclass(frozen=True)
class TinySize:
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 512
    max_positions: int = 512


def build_model(tokenizer: PreTrainedTokenizerFast, size: TinySize, seed: int) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden,
        intermediate_size=size.intermediate,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.kv_heads,
        max_position_embeddings=size.max_positions,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=True, temperature=1.0
    )
    return model


def sft(
    model: Qwen2ForCausalLM,
    tokenizer: PreTrainedTokenizerFast,
    examples: list[dict[str, str]],
    out_dir: Path,
    *,
    epochs: float = 2.0,
    learning_rate: float = 2e-3,
    batch_size: int = 64,
    seed: int = 0,
    max_length: int = 256,
) -> dict[str, float]:
    """Supervised fine-tuning on prompt/completion pairs (loss on the completion only), saved to ``out_dir``."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=str(out_dir / "sft-checkpoints"),
        num_train_epochs=epochs,
        learning_rate=learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        per_device_train_batch_size=batch_size,
        max_length=max_length,
        seed=seed,
        use_cpu=True,
        bf16=False,
        report_to="none",
        save_strategy="no",
        logging_steps=25,
        dataloader_num_workers=0,
        disable_tqdm=os.environ.get("AGPO_NO_PROGRESS") == "1",
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(examples), processing_class=tokenizer)
    result = trainer.train()
    save(model, tokenizer, out_dir)
    return {"train_loss": float(result.training_loss), "steps": float(result.global_step)}


def save(model: Qwen2ForCausalLM, tokenizer: PreTrainedTokenizerFast, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
