"""The teacher recipe's settings: one YAML file of sections, plus ``section.key=value`` overrides.

Every setting that changes the built model lives here and is copied into the model card, so a card says how
to rebuild its model. Unknown sections or keys fail by name before any compute is spent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlvr.config import load_config


@dataclass(frozen=True)
class DataSettings:
    """The synthetic benchmark (generated with ``seed``), or JSONL splits read from ``dir`` when it is set."""

    seed: int = 0
    dir: str | None = None
    real: str | None = None  # human-labelled pairs JSONL (meta.label) mixed into SFT; listed in the model card
    real_examples: int = 0  # how many of them, drawn as evenly over labels as the file allows
    teacher_train: int = 20_000
    dev: int = 2_000
    gold_test: int = 2_000


@dataclass(frozen=True)
class TokenizerSettings:
    vocab_size: int = 2048
    min_frequency: int = 2
    phrase_tokens: bool = True  # the prompt's fixed passages as single tokens (see tokenizer.template_phrases)


@dataclass(frozen=True)
class ModelSettings:
    """A small Qwen2 (an architecture transformers, TRL and vLLM all load)."""

    hidden: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 512
    max_positions: int = 512


@dataclass(frozen=True)
class LoraSettings:
    """The adapter trained on a pretrained ``base`` (peft LoRA on every linear layer by default)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str = "all-linear"


@dataclass(frozen=True)
class SftSettings:
    examples: int = 16_000  # teacher-train pairs used for SFT (the rest feed RL)
    epochs: float = 1.0
    learning_rate: float = 2e-3
    batch_size: int = 64
    max_length: int = 256
    bf16: bool = False  # bf16 autocast on CPU: about 2x faster on AMX cores (DESIGN.md section 7)
    # A LoRA adapter directory to train further instead of a fresh adapter (``lora`` is then the adapter's own).
    # Its real training rows are never drawn again and are listed with the new ones in the new card.
    init_adapter: str | None = None


@dataclass(frozen=True)
class RlSettings:
    """AGPO (or another estimator of ``agpo.advantages``) through ``rlvr.train`` on the label reward."""

    estimator: str = "agpo"
    steps: int = 40
    prompts_per_step: int = 16
    group_size: int = 8
    learning_rate: float = 2e-5
    max_completion_length: int = 96
    temperature: float = 1.0
    lambda_pos: float | None = None
    lambda_neg: float | None = None
    protect_shared_prefix: bool = False  # agpo.shared_prefix


@dataclass(frozen=True)
class EvalSettings:
    """The quick gold-test check recorded in the model card (``agpo teacher eval`` does the full one)."""

    split: str = "gold_test"
    pairs: int = 400
    n: int = 8
    max_new_tokens: int = 112
    temperature: float = 1.0
    batch_size: int = 256
    dtype: str | None = None  # e.g. bfloat16 for a pretrained base on CPU
    method: str = "sample"  # sample, score or overlap (teacher.evaluate.METHODS)
    real: str | None = None  # a human-labelled pairs JSONL checked too (never one the recipe trained on)
    real_pairs: int = 400


@dataclass(frozen=True)
class TeacherConfig:
    """``base`` empty: a small Qwen2 built from nothing (``model``, ``tokenizer``). ``base`` set (a registered
    name, a model directory or a hub id, see :mod:`llm.bases`): a LoRA adapter (``lora``) on that base."""

    seed: int = 0
    base: str | None = None
    schema: str = "esci"
    template: str = "compact"
    data: DataSettings = field(default_factory=DataSettings)
    tokenizer: TokenizerSettings = field(default_factory=TokenizerSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    sft: SftSettings = field(default_factory=SftSettings)
    rl: RlSettings = field(default_factory=RlSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_teacher_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TeacherConfig:
    """A config from a YAML file (optional) and ``section.key=value`` overrides, unknown keys rejected by name."""
    return load_config(TeacherConfig, path, overrides or ())
