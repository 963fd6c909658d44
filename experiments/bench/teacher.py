"""Labelling throughput of a teacher on this CPU, against the compute limit measured in the same run.

The teacher runs through :class:`pipelines.backends.transformers_backend.TransformersBackend`, the engine the
workers and ``agpo serve teacher`` use (length-sorted batches, left padding, KV cache, ``inference_mode``, an
adapter merged into its base), on real pairs, at n = 1 (greedy) and n = 4 (sampled), in each dtype asked for;
and with the label methods that score labels (``score``: a greedy answer, then one forward pass for the labels'
probabilities; ``overlap``: rule-written reasoning and that forward pass alone) through
:func:`pipelines.annotate.label_pairs`, the same function the workers call.

The limit: a pair needs 2 x parameters FLOPs per token it reads (the prompt, once) and per token it writes
(every sample's answer); for a scored label, per token of the prompt and of the reasoning before the label.
Divided by the GEMM rate measured here in the same dtype, that gives the fastest any engine could label on this
machine; ``utilisation`` is the measured rate over that one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from relevance.parsing import parse_label
from relevance.prompts import build_messages


def gemm_flops_per_s(dtype: str, size: int = 2048, repeats: int = 5) -> float:
    """The best rate of a square matrix product in ``dtype`` on the current torch threads."""
    import torch

    kind = getattr(torch, dtype)
    a, b = torch.randn(size, size, dtype=kind), torch.randn(size, size, dtype=kind)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def _parameters(model: Any) -> int:
    """Parameters a token passes through: every weight, the tied embedding counted once (it is the head)."""
    return sum(p.numel() for p in model.parameters())


def bench_teacher(
    model_dir: str | Path,
    records: Sequence[dict[str, Any]],
    *,
    template: str,
    schema: str = "esci",
    dtypes: Sequence[str] = ("bfloat16", "float32"),
    samples: Sequence[int] = (1, 4),
    methods: Sequence[str] = (),
    batch_size: int = 64,
    max_tokens: int = 48,
) -> dict[str, Any]:
    """Pairs/s, tokens and utilisation for each dtype and sample count, and for each scoring label method
    (``score``, ``overlap``) in ``methods`` (see the module docstring)."""
    from pipelines.backends.base import Decoding
    from pipelines.backends.transformers_backend import TransformersBackend

    prompts = [build_messages({k: v for k, v in r.items() if k != "meta"}, schema, template) for r in records]
    rows = []
    for dtype in dtypes:
        backend = TransformersBackend(model_dir, batch_size=batch_size, dtype=dtype)
        parameters = _parameters(backend.model)
        limit = gemm_flops_per_s(dtype)
        for n in samples:
            decoding = Decoding(n=n, temperature=0.0 if n == 1 else 1.0, max_tokens=max_tokens, seed=0)
            backend.generate(prompts[:4], decoding)  # warm-up: first-call allocations and kernel choices
            start = time.perf_counter()
            generations = backend.generate(prompts, decoding)
            seconds = time.perf_counter() - start
            prompt_tokens = sum(g.prompt_tokens for g in generations)
            answer_tokens = sum(c.completion_tokens for g in generations for c in g.completions)
            needed = 2 * parameters * (prompt_tokens + answer_tokens)
            texts = [c.text for g in generations for c in g.completions]
            rows.append(
                {
                    "dtype": dtype,
                    "n": n,
                    "pairs": len(prompts),
                    "seconds": round(seconds, 2),
                    "pairs_per_s": round(len(prompts) / seconds, 2),
                    "prompt_tokens_mean": round(prompt_tokens / len(prompts), 1),
                    "answer_tokens_mean": round(answer_tokens / len(texts), 1),
                    "gemm_gflop_per_s": round(limit / 1e9, 1),
                    "limit_pairs_per_s": round(len(prompts) / (needed / limit), 2),
                    "utilisation": round(needed / seconds / limit, 4),
                    "unparseable_rate": round(sum(parse_label(t, schema) is None for t in texts) / len(texts), 4),
                }
            )
        for method in methods:
            rows.append(_bench_method(backend, records, method, template, schema, batch_size, max_tokens, limit))
        backend.close()
    return {"model": str(model_dir), "parameters": parameters, "batch_size": batch_size, "rows": rows}


def _tokens(backend: Any, text: str) -> int:
    # A chat template writes its own special tokens; raw text gets the tokenizer's.
    return len(backend.tokenizer(text, add_special_tokens=not backend.has_chat_template)["input_ids"])


def _bench_method(
    backend: Any,
    records: Sequence[dict[str, Any]],
    method: str,
    template: str,
    schema: str,
    batch_size: int,
    max_tokens: int,
    limit: float,
) -> dict[str, Any]:
    """One row for a label method that scores labels, timed through ``label_pairs``."""
    from pipelines.annotate import LabelRequest, label_pairs
    from pipelines.backends.base import Decoding
    from relevance.label_scores import reasoning_of, scoring_prefix
    from relevance.schemas import get_schema

    request = LabelRequest(get_schema(schema), template, Decoding(max_tokens=max_tokens, method=method))
    pairs = [{k: v for k, v in r.items() if k != "meta"} for r in records]
    label_pairs(pairs[:4], backend, request, batch_size=batch_size)  # warm-up
    start = time.perf_counter()
    outcomes = label_pairs(pairs, backend, request, batch_size=batch_size)
    seconds = time.perf_counter() - start
    rendered = [backend.render(build_messages(p, schema, template)) for p in pairs]
    prompt_tokens = sum(_tokens(backend, text) for text in rendered)
    total = sum(
        _tokens(backend, text + scoring_prefix(reasoning_of(o.reasoning)))
        for text, o in zip(rendered, outcomes, strict=True)
    )
    needed = 2 * _parameters(backend.model) * total
    return {
        "dtype": str(backend.model.dtype).removeprefix("torch."),
        "n": method,
        "pairs": len(pairs),
        "seconds": round(seconds, 2),
        "pairs_per_s": round(len(pairs) / seconds, 2),
        "prompt_tokens_mean": round(prompt_tokens / len(pairs), 1),
        "answer_tokens_mean": round((total - prompt_tokens) / len(pairs), 1),
        "gemm_gflop_per_s": round(limit / 1e9, 1),
        "limit_pairs_per_s": round(len(pairs) / (needed / limit), 2),
        "utilisation": round(needed / seconds / limit, 4),
        "unparseable_rate": round(sum(o.label is None for o in outcomes) / len(outcomes), 4),
    }


def markdown(report: dict[str, Any], command: str) -> str:
    lines = [
        f"# Teacher labelling throughput: `{report['model']}`",
        "",
        f"{report['parameters']:,} parameters; batches of {report['batch_size']} sequences; the limit is 2 x "
        "parameters FLOPs per prompt token (once) and per answer token (every sample), at the GEMM rate measured "
        "in the same run and dtype.",
        "",
        "| dtype | samples or method | pairs/s | limit pairs/s | utilisation | prompt tok | answer tok | GEMM GFLOP/s "
        "| unparseable |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['dtype']} | {r['n']} | {r['pairs_per_s']:.2f} | {r['limit_pairs_per_s']:.1f} | "
            f"{r['utilisation']:.1%} | {r['prompt_tokens_mean']:.0f} | {r['answer_tokens_mean']:.0f} | "
            f"{r['gemm_gflop_per_s']:.0f} | {r['unparseable_rate']:.1%} |"
        )
    lines += ["", f"Command: `{command}`", ""]
    return "\n".join(lines)
