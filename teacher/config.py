"""The teacher recipe's settings: one YAML file of sections, plus ``section.key=value`` overrides.

Every setting that changes the built model lives here and is copied into the model card, so a card says how
to rebuild its model. Unknown sections or keys fail by name before any compute is spent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class DataSettings:
    """The synthetic benchmark (generated with ``seed``), or JSONL splits read from ``dir`` when it is set."""

    seed: int = 0
    dir: str | None = None
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
class SftSettings:
    examples: int = 16_000  # teacher-train pairs used for SFT (the rest feed RL)
    epochs: float = 1.0
    learning_rate: float = 2e-3
    batch_size: int = 64
    max_length: int = 256


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


@dataclass(frozen=True)
class TeacherConfig:
    seed: int = 0
    schema: str = "esci"
    template: str = "compact"
    data: DataSettings = field(default_factory=DataSettings)
    tokenizer: TokenizerSettings = field(default_factory=TokenizerSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    sft: SftSettings = field(default_factory=SftSettings)
    rl: RlSettings = field(default_factory=RlSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _coerce(where: str, value: Any, kind: str) -> Any:
    """``value`` in the type of the field (YAML 1.1 reads ``2e-5`` as a string, so floats are parsed)."""
    if value is None:
        if "None" in kind:
            return None
        raise ValueError(f"{where}: must not be null")
    if "bool" in kind:
        if isinstance(value, bool):
            return value
    elif "float" in kind:
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    elif "int" in kind:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif "str" in kind and isinstance(value, str | int | float):
        return str(value)
    raise ValueError(f"{where}={value!r}: expected {kind}")


def _set(obj: Any, key: str, value: Any, where: str) -> Any:
    known = {f.name: f for f in fields(obj)}
    if key not in known:
        raise ValueError(f"{where}: unknown setting {key!r}; known: {sorted(known)}")
    current = getattr(obj, key)
    if is_dataclass(current):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping of settings")
        for sub, v in value.items():
            current = _set(current, sub, v, f"{where}.{sub}")
        return replace(obj, **{key: current})
    return replace(obj, **{key: _coerce(where, value, str(known[key].type))})


def load_teacher_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TeacherConfig:
    """A config from a YAML file (optional) and ``section.key=value`` overrides, unknown keys rejected by name."""
    config = TeacherConfig()
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of settings, got {type(loaded).__name__}")
        for key, value in loaded.items():
            config = _set(config, key, value, f"{path}: {key}")
    for item in overrides or []:
        dotted, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r}: expected section.key=value")
        *sections, key = dotted.strip().replace("-", "_").split(".")
        value: Any = yaml.safe_load(raw)
        for section in reversed(sections):
            value = {key: value}
            key = section
        config = _set(config, key, value, f"override {item!r}")
    return config
