"""The relevance teacher's transformers backend on a CUDA GPU against the CPU, on the same gold_test pairs.

    python deploy/gpu_check_teacher.py [--model models/relevance-teacher] [--pairs 128] [--out FILE] [--device cuda]

Prints (and writes as JSON): greedy answers on the GPU against the CPU's (identical text, identical label),
whether seeded sampling repeats itself on the GPU (the backend forks the CUDA generator per request), and pairs
per second on each device. docs/results/gpu_check.md records one H200 run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pipelines.backends.base import Decoding
from pipelines.backends.transformers_backend import TransformersBackend
from relevance.parsing import parse_label
from teacher.data import messages, split_records
from teacher.evaluate import EvalSettings


def _answers(backend: TransformersBackend, prompts: list, decoding: Decoding) -> tuple[list[list[str]], float]:
    start = time.perf_counter()
    generations = backend.generate(prompts, decoding)
    return [[c.text for c in g.completions] for g in generations], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/relevance-teacher"))
    parser.add_argument("--pairs", type=int, default=128)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--max-tokens", type=int, default=112, help="answer length cap (the teacher's own: 112)")
    parser.add_argument("--device", default="cuda", help="the device to check against the CPU (cpu: a dry run)")
    args = parser.parse_args()

    schema, template = EvalSettings.schema, EvalSettings.template
    records = split_records(args.model, "gold_test", pairs=args.pairs, seed=0)
    prompts = [messages(r, schema, template) for r in records]
    greedy = Decoding(temperature=0.0, max_tokens=args.max_tokens)
    sampled = Decoding(n=4, temperature=1.0, max_tokens=args.max_tokens, seed=7)

    cpu, gpu = TransformersBackend(args.model, device="cpu"), TransformersBackend(args.model, device=args.device)
    _answers(gpu, prompts[:8], greedy)  # CUDA context and kernels load outside the timing
    on_cpu, cpu_s = _answers(cpu, prompts, greedy)
    on_gpu, gpu_s = _answers(gpu, prompts, greedy)
    first, _ = _answers(gpu, prompts, sampled)
    again, _ = _answers(gpu, prompts, sampled)
    labels = [(parse_label(a[0], schema), parse_label(b[0], schema)) for a, b in zip(on_cpu, on_gpu, strict=True)]
    result = {
        "model": str(args.model),
        "pairs": len(prompts),
        "greedy_same_text": sum(a == b for a, b in zip(on_cpu, on_gpu, strict=True)) / len(prompts),
        "greedy_same_label": sum(a == b for a, b in labels) / len(prompts),
        "device": args.device,
        "seeded_sampling_repeats_on_device": first == again,
        "seeded_first_samples_unlike_greedy": sum(f[0] != g[0] for f, g in zip(first, on_gpu, strict=True)),
        "greedy_pairs_per_s_cpu": len(prompts) / cpu_s,
        "greedy_pairs_per_s_device": len(prompts) / gpu_s,
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
