"""Teacher backends behind one interface (:mod:`pipelines.backends.base`)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pipelines.backends.base import Messages, TeacherBackend

BACKEND_KINDS = ("transformers", "openai", "vllm")

# Where a model without a chat template starts its answer; the same text as relevance.prompts.build_prompt.
ANSWER_CUE = "\n\nAnswer:\n"

# Files whose bytes decide what a model says; tokenizer files are left out on purpose: retokenising the same
# weights is not a new teacher, and tokenizer_config.json changes whenever transformers rewrites it.
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def plain_prompt(messages: Messages) -> str:
    """The chat as plain text for models without a chat template: contents joined, then the answer cue."""
    return "\n\n".join(m["content"] for m in messages) + ANSWER_CUE


def render_prompt(tokenizer: Any, messages: Messages) -> str:
    """The text a local model reads for ``messages``: its chat template, else :func:`plain_prompt`."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return plain_prompt(messages)


def encode_prompt(tokenizer: Any, text: str, templated: bool) -> list[int]:
    """Token ids of a prompt: a chat template (``templated``) writes its own special tokens, BOS included; plain
    text gets the tokenizer's usual ones."""
    return tokenizer(text, add_special_tokens=not templated)["input_ids"]


# A LoRA adapter's config names its base: a new base under the same adapter is another teacher.
_CONFIGS = ("config.json", "adapter_config.json")


def model_revision(model_dir: str | Path) -> str:
    """12 hex characters of sha256 over a model directory's weight files and ``config.json`` (for a LoRA
    adapter directory: the adapter's weights and ``adapter_config.json``, which names the base).

    Names enter the hash with the bytes, so renaming a shard or moving bytes between shards changes it too.
    The hash is kept per process while no file's size or modification time changes: the API names the teacher
    on every job it creates, and a 7B model's weights are 15 GB to read.
    """
    root = Path(model_dir)
    files = sorted(p for p in root.iterdir() if p.is_file() and (p.suffix in _WEIGHT_SUFFIXES or p.name in _CONFIGS))
    if not any(p.suffix in _WEIGHT_SUFFIXES for p in files):
        raise FileNotFoundError(f"no weight files ({', '.join(_WEIGHT_SUFFIXES)}) in {root}")
    stamp = (root.resolve(), tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if (known := _revisions.get(stamp)) is not None:
        return known
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    _revisions[stamp] = revision = digest.hexdigest()[:12]
    return revision


_revisions: dict[tuple[Path, tuple[tuple[str, int, int], ...]], str] = {}


# The revision of a served model whose server publishes none (``/v1/models`` without a ``revision``).
SERVED_REVISION = "served"


def teacher_identity(name: str, revision: str) -> str:
    """A teacher's identity, ``<name>@<revision>``: recorded on jobs and result lines, part of the cache key."""
    return f"{name}@{revision}"


def local_teacher_id(model_dir: str | Path) -> str:
    """The identity of the model in ``model_dir``: its directory's name and :func:`model_revision`.

    Raises ``FileNotFoundError`` (or ``NotADirectoryError``) when there is no model there.
    """
    return teacher_identity(Path(model_dir).resolve().name, model_revision(model_dir))


def create_backend(kind: str, model: str, **options: Any) -> TeacherBackend:
    """A teacher backend of ``kind`` for ``model`` (a model directory, or the served model name for ``openai``).

    ``options`` go to the backend's constructor: ``device``/``batch_size``/``dtype`` for ``transformers``,
    ``base_url``/``api_key``/``max_retries``/... for ``openai``, vLLM engine arguments for ``vllm``. Backends are
    imported here, not at module import, so that importing this package pulls in neither torch nor vLLM.
    """
    if kind == "transformers":
        from pipelines.backends.transformers_backend import TransformersBackend

        return TransformersBackend(model, **options)
    if kind == "openai":
        from pipelines.backends.openai_backend import OpenAIBackend

        if "base_url" not in options:
            raise ValueError("the openai teacher backend needs base_url (e.g. http://localhost:8000/v1)")
        return OpenAIBackend(model=model, **options)
    if kind == "vllm":
        from pipelines.backends.vllm_backend import VLLMBackend

        return VLLMBackend(model, **options)
    raise ValueError(f"unknown teacher backend {kind!r}; known: {', '.join(BACKEND_KINDS)}")


__all__ = [
    "ANSWER_CUE",
    "BACKEND_KINDS",
    "SERVED_REVISION",
    "create_backend",
    "encode_prompt",
    "local_teacher_id",
    "model_revision",
    "plain_prompt",
    "render_prompt",
    "teacher_identity",
]
