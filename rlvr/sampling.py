"""Sampling n completions per prompt: transformers on CPU or GPU, vLLM where it is installed (GPU only)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    same_length_batches: bool = False,
    device: str | None = None,
    dtype: Any = None,
    progress: Callable[[int], None] | None = None,
) -> list[list[str]]:
    """``params.n`` sampled completions for each prompt, with batched ``generate`` (KV cache, left padding).

    ``device`` defaults to the first CUDA GPU where torch sees one, else the CPU (``CUDA_VISIBLE_DEVICES=`` keeps
    a GPU machine on the CPU). The model keeps its stored dtype on either unless ``dtype`` names another. A LoRA
    adapter directory is merged into its base (:func:`llm.bases.load_causal_lm`). Temperature 0 is greedy
    decoding: one answer per prompt, copied n times.

    ``same_length_batches`` puts only prompts of one token length in a batch. Without padding there is no
    attention mask, and then SDPA attends grouped-query heads directly instead of copying the whole KV cache
    for every head at every step (``repeat_kv``): Countdown's n = 256 evaluation runs about 2x faster. It
    changes which random draws each row gets, so it is an option: the relevance teacher's published
    evaluations were made without it.
    """
    from transformers import AutoTokenizer

    from llm.bases import load_causal_lm

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    target = torch_device(device)
    model = load_causal_lm(model_dir, dtype=dtype).to(target)
    model.eval()
    texts: dict[int, list[str]] = {i: [] for i in range(len(prompts))}
    torch.manual_seed(params.seed)
    greedy = params.temperature == 0
    sampling = (
        {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        if greedy
        else {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
    )
    # Greedy rows draw no random numbers, so they can be length-sorted (less padding) without changing answers.
    for chunk in row_batches(tokenizer, prompts, 1 if greedy else params.n, batch_size, same_length_batches, greedy):
        rows = [prompts[i] for i in chunk]
        enc = tokenizer(rows, return_tensors="pt", padding=True, add_special_tokens=False).to(target)
        with torch.inference_mode():
            out = model.generate(
                **enc,
                **sampling,
                max_new_tokens=params.max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        decoded = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        for i, text in zip(chunk, decoded, strict=True):
            texts[i].extend([text] * (params.n if greedy else 1))
        if progress:
            progress(len(chunk) * (params.n if greedy else 1))
    return [texts[i] for i in range(len(prompts))]


def torch_device(requested: str | None = None) -> torch.device:
    """The device to sample on: ``requested``, or CUDA where torch sees a GPU, else the CPU."""
    if requested is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {requested!r} asked for, but torch sees no CUDA GPU "
            f"(torch {torch.__version__}); sample on 'cpu' or install a CUDA build of torch on a GPU machine"
        )
    return device


def row_batches(
    tokenizer: Any, prompts: Sequence[str], n: int, batch_size: int, same_length: bool, by_length: bool = False
) -> Iterator[list[int]]:
    """Rows (one per prompt and sample, as prompt indices) cut into batches of at most ``batch_size``; rows of
    one prompt sit together so that batches share lengths. ``by_length`` sorts prompts by length first."""
    if by_length and not same_length:
        lengths = [len(ids) for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
        orders = [sorted(range(len(prompts)), key=lengths.__getitem__)]
    elif same_length:
        lengths = [len(ids) for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
        groups: dict[int, list[int]] = {}
        for i, length in enumerate(lengths):
            groups.setdefault(length, []).append(i)
        orders = [groups[length] for length in sorted(groups)]
    else:
        orders = [list(range(len(prompts)))]
    for order in orders:
        rows = [i for i in order for _ in range(n)]
        for start in range(0, len(rows), batch_size):
            yield rows[start : start + batch_size]


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
        return sample_transformers(model_dir, prompts, params, same_length_batches=True, progress=progress)
    if backend == "vllm":
        return sample_vllm(model_dir, prompts, params)
    raise ValueError(f"unknown sampling backend {backend!r}; use 'transformers' or 'vllm'")
