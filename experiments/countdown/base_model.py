"""The Countdown base model: a tiny Qwen2 built from scratch and fine-tuned on search traces.

The traces try chains of arithmetic in a sampled order, abandon dead ends and stop at a solution, so the
model learns to *search*: one sample often fails, but many samples explore many orders, which makes pass@k
grow with k. That is the reasoning boundary that RL may widen or shrink.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rlvr.tasks.countdown import make_splits, sft_examples
from rlvr.tiny_lm import TinySize, build_char_tokenizer, build_model, sft


@dataclass(frozen=True)
class BaseRecipe:
    seed: int = 0
    data_seed: int = 0
    trace_passes: int = 5  # fresh random traces of every SFT problem, one pass each
    # Dead ends before the solution, at most, and the trace's length cap in characters (= tokens). The first base
    # searched up to 4 dead ends with no cap, and most of its samples ran out of a 128-token budget unanswered;
    # the budget-fit base (2, 120, most traces with both dead ends) answers within it.
    max_failures: int = 4
    max_chars: int | None = None
    fail_rate: float = 0.6  # chance of each further dead end (up to max_failures)
    epochs: float = 1.0
    learning_rate: float = 2e-3
    batch_size: int = 64
    hidden: int = 128
    layers: int = 4


def build_base(out_dir: Path, recipe: BaseRecipe, command: str = "") -> dict:
    """Build, fine-tune and save the base model; returns (and writes) its model card as a dict."""
    start = time.time()
    splits = make_splits(seed=recipe.data_seed)
    examples = [
        e
        for rep in range(recipe.trace_passes)
        for e in sft_examples(
            splits.sft,
            seed=recipe.seed + rep,
            max_failures=recipe.max_failures,
            max_chars=recipe.max_chars,
            fail_rate=recipe.fail_rate,
        )
    ]
    tokenizer = build_char_tokenizer(e["prompt"] + e["completion"] for e in examples)
    size = TinySize(hidden=recipe.hidden, layers=recipe.layers, intermediate=4 * recipe.hidden)
    model = build_model(tokenizer, size, seed=recipe.seed)
    metrics = sft(
        model,
        tokenizer,
        examples,
        out_dir,
        epochs=recipe.epochs,
        learning_rate=recipe.learning_rate,
        batch_size=recipe.batch_size,
        seed=recipe.seed,
    )
    card = {
        "task": "countdown",
        "recipe": asdict(recipe),
        "parameters": sum(p.numel() for p in model.parameters()),
        "sft_examples": len(examples),
        "sft_problems": len(splits.sft),
        "metrics": metrics,
        "build_seconds": round(time.time() - start, 1),
        "command": command,
        "python": platform.python_version(),
    }
    (out_dir / "model_card.json").write_text(json.dumps(card, indent=1))
    return card
