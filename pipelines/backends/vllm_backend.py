"""The in-process GPU teacher: vLLM's offline engine (``LLM``) on a local model directory.

A LoRA adapter directory runs as vLLM serves adapters: the engine loads the base (``enable_lora``) and every
request carries a ``LoRARequest`` for the adapter, unmerged.

vLLM is a CUDA package that the CPU install does not have, so it is imported when a backend is built, never at
module import; without it the constructor raises :class:`TeacherError` saying how to get it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.backends import model_revision, plain_prompt, teacher_identity
from pipelines.backends.base import Completion, Decoding, Generation, Messages, TeacherError

INSTALL_HINT = (
    "the vllm teacher backend needs vLLM, which runs on CUDA GPUs only: pip install '.[gpu]' on a CUDA machine, "
    "or use the 'transformers' backend (CPU or GPU) or the 'openai' backend against a `vllm serve` server"
)


def sampling_kwargs(decoding: Decoding, structured_outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """``vllm.SamplingParams`` arguments for ``decoding``; ``structured_outputs`` is added by the caller as
    ``StructuredOutputsParams`` (vLLM >= 0.12 names; ``{"regex": ...}``, ``{"choice": [...]}``, ``{"json": ...}``).
    """
    kwargs: dict[str, Any] = {
        "n": decoding.n,
        "temperature": decoding.temperature,
        "top_p": decoding.top_p,
        "max_tokens": decoding.max_tokens,
        "stop": list(decoding.stop) or None,
        "seed": decoding.seed,
    }
    if structured_outputs:
        kwargs["structured_outputs"] = dict(structured_outputs)
    return kwargs


def adapter_rank(adapter_dir: Path) -> int:
    """The LoRA rank vLLM must reserve for the adapter (its ``max_lora_rank`` rounds up to 8, 16, 32, ...)."""
    rank = int(json.loads((adapter_dir / "adapter_config.json").read_text())["r"])
    return next(size for size in (8, 16, 32, 64, 128, 256, 320, 512) if size >= rank)


def _finish_reason(reason: str | None) -> str:
    return "length" if reason == "length" else "stop"


class VLLMBackend:
    """A :class:`~pipelines.backends.base.TeacherBackend` over ``vllm.LLM``.

    ``engine_kwargs`` go to ``vllm.LLM`` (``tensor_parallel_size``, ``gpu_memory_utilization``, ``dtype``, ...).
    ``use_chat`` (default: when the tokenizer has a chat template) picks ``LLM.chat`` over ``LLM.generate`` on
    :func:`~pipelines.backends.plain_prompt`.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        use_chat: bool | None = None,
        structured_outputs: dict[str, Any] | None = None,
        **engine_kwargs: Any,
    ) -> None:
        try:
            import vllm
        except ImportError as error:
            raise TeacherError(INSTALL_HINT) from error
        self.model_dir = Path(model_dir)
        self._vllm = vllm
        self._revision = model_revision(self.model_dir)
        model, self._lora = self._model_and_adapter(engine_kwargs)
        self._llm = vllm.LLM(model=model, **engine_kwargs)
        template = getattr(self._llm.get_tokenizer(), "chat_template", None)
        self.use_chat = bool(template) if use_chat is None else use_chat
        self.structured_outputs = structured_outputs
        self._lock = threading.Lock()  # LLM is not thread-safe

    def _model_and_adapter(self, engine_kwargs: dict[str, Any]) -> tuple[str, Any]:
        """The model vLLM loads, and the ``LoRARequest`` every call carries (None for a full model)."""
        if (self.model_dir / "config.json").is_file():
            return str(self.model_dir), None
        from llm.bases import BaseNotFoundError, adapter_base, is_adapter, resolve_base

        if not is_adapter(self.model_dir):
            raise TeacherError(f"{self.model_dir} is not a model directory (no config.json or adapter_config.json)")
        try:
            base = resolve_base(adapter_base(self.model_dir))
        except BaseNotFoundError as e:
            raise TeacherError(str(e)) from e
        from vllm.lora.request import LoRARequest

        engine_kwargs.setdefault("enable_lora", True)
        engine_kwargs.setdefault("max_lora_rank", adapter_rank(self.model_dir))
        return base, LoRARequest(self.model_dir.resolve().name, 1, str(self.model_dir.resolve()))

    @property
    def teacher_id(self) -> str:
        return teacher_identity(self.model_dir.resolve().name, self._revision)

    def _sampling_params(self, decoding: Decoding) -> Any:
        kwargs = sampling_kwargs(decoding, self.structured_outputs)
        if "structured_outputs" in kwargs:
            from vllm.sampling_params import StructuredOutputsParams

            kwargs["structured_outputs"] = StructuredOutputsParams(**kwargs["structured_outputs"])
        return self._vllm.SamplingParams(**kwargs)

    def generate(self, prompts: Sequence[Messages], decoding: Decoding) -> list[Generation]:
        params = self._sampling_params(decoding)
        with self._lock:
            if self.use_chat:
                outputs = self._llm.chat([list(m) for m in prompts], params, use_tqdm=False, lora_request=self._lora)
            else:
                texts = [plain_prompt(m) for m in prompts]
                outputs = self._llm.generate(texts, params, use_tqdm=False, lora_request=self._lora)
        return [self._generation(out, decoding.n) for out in outputs]

    def _generation(self, output: Any, n: int) -> Generation:
        samples = sorted(output.outputs, key=lambda o: o.index)
        if len(samples) < n:
            raise TeacherError(f"vLLM returned {len(samples)} samples for n={n}")
        completions = [
            Completion(text=s.text, completion_tokens=len(s.token_ids), finish_reason=_finish_reason(s.finish_reason))
            for s in samples[:n]
        ]
        return Generation(completions=completions, prompt_tokens=len(output.prompt_token_ids or []))

    def ping(self) -> None:
        if self._llm is None:
            raise TeacherError(f"teacher {self.teacher_id} is closed")

    def close(self) -> None:
        with self._lock:
            self._llm = None
