"""Sampling n completions per prompt: transformers on CPU or GPU, vLLM where it is installed (GPU only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class SamplingParams:
    n: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 160
    seed: int = 0


def sample_transformers(
    model_dir: str | Path,
    prompts: Sequence[str],
    params: SamplingParams,
    *,
    batch_size: int = 512,
    progress: Callable[[int], None] | None = None,
) -> list[list[str]]:
    """``params.n`` sampled completions for each prompt, with batched ``generate`` (KV cache, left padding)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.eval()
    # Each row is one (prompt, sample) pair; rows of the same prompt sit together so batches share lengths.
    rows = [i for i in range(len(prompts)) for _ in range(params.n)]
    texts: list[str] = []
    torch.manual_seed(params.seed)
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        enc = tokenizer([prompts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(
                **enc,
                do_sample=True,
                temperature=params.temperature,
                top_p=params.top_p,
                max_new_tokens=params.max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        texts.extend(tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True))
        if progress:
            progress(len(chunk))
    return [texts[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]


def sample_vllm(model_dir: str | Path, prompts: Sequence[str], params: SamplingParams) -> list[list[str]]:
    """The same with vLLM's offline engine (imported lazily: it is a CUDA package, absent on CPU machines)."""
    try:
        from vllm import LLM
        from vllm import SamplingParams as VllmParams
    except ImportError as e:
        raise RuntimeError("the vllm backend needs the 'gpu' extra (pip install -e '.[gpu]') on a CUDA machine") from e
    llm = LLM(model=str(model_dir), seed=params.seed)
    vp = VllmParams(n=params.n, temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_new_tokens)
    return [[o.text for o in req.outputs] for req in llm.generate(list(prompts), vp)]


def sample(
    model_dir: str | Path,
    prompts: Sequence[str],
    params: SamplingParams,
    backend: str = "transformers",
    progress: Callable[[int], None] | None = None,
) -> list[list[str]]:
    if backend == "transformers":
        return sample_transformers(model_dir, prompts, params, progress=progress)
    if backend == "vllm":
        return sample_vllm(model_dir, prompts, params)
    raise ValueError(f"unknown sampling backend {backend!r}; use 'transformers' or 'vllm'")
