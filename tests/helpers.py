"""Test helpers: a tiny causal LM built offline (no hub) and TRL trainers around it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from rlvr.tiny_lm import TinySize, build_char_tokenizer, build_model, save

CHARS = "abcdefghijklmnopqrstuvwxyz0123456789 +-*/=?.,:()\n"


def build_tiny_lm(path: Path, seed: int = 0) -> Path:
    """A 2-layer Qwen2 with a character tokenizer: small enough for CPU tests, real enough for TRL."""
    tokenizer = build_char_tokenizer([CHARS])
    model = build_model(tokenizer, TinySize(hidden=32, layers=2, heads=2, kv_heads=1, intermediate=64), seed=seed)
    save(model, tokenizer, path)
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


def recording_reward(binary: bool, seed: int, seen: list[float]) -> Callable[..., list[float]]:
    """A reward function drawing seeded random rewards and recording them in order."""
    generator = torch.Generator().manual_seed(seed)

    def reward(completions: list[str], **_: object) -> list[float]:
        n = len(completions)
        values = (
            torch.randint(0, 2, (n,), generator=generator).float() if binary else torch.rand(n, generator=generator)
        )
        seen.extend(values.tolist())
        return values.tolist()

    return reward


def build_labelling_teacher(
    path: Path, pairs: list[dict], *, seed: int = 0, steps: int = 80, labels: tuple[str, ...] = ("Exact",)
) -> Path:
    """A tiny char-level Qwen2 taught in seconds to end every answer with a label line.

    It reads nothing of the pair (it is far too small to judge relevance); it exists so that the service's
    tests run the real path (prompt, batched generation, parsing, votes) with answers that parse. With several
    ``labels`` it is taught them in turn, so sampled answers carry a mix of them.
    """
    from pipelines.backends import plain_prompt
    from relevance.prompts import build_messages
    from rlvr.tiny_lm import sft

    prompts = [plain_prompt(build_messages(p)) for p in pairs]
    examples = [{"prompt": p, "completion": f"ok.\nLabel: {labels[i % len(labels)]}"} for i, p in enumerate(prompts)]
    tokenizer = build_char_tokenizer(prompts + [e["completion"] for e in examples])
    model = build_model(
        tokenizer, TinySize(hidden=32, layers=2, heads=2, kv_heads=1, intermediate=64, max_positions=2048), seed=seed
    )
    epochs = steps * 8 / len(examples)
    sft(model, tokenizer, examples, path, epochs=epochs, learning_rate=2e-2, batch_size=8, seed=seed, max_length=2048)
    return path
