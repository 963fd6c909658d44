"""Scoring throughput of one student several ways, on the same pairs, side by side; and training throughput.

- ONNX int8 and ONNX fp32 (onnxruntime) and bf16 (OpenVINO, when installed) through
  :class:`student.scorer.Scorer`, the variants `/v1/score` can serve (tokenization included);
- PyTorch eager through :class:`student.modelio.TorchStudent` (HF tokenizer + model, length-sorted), in fp32 and
  under bf16 autocast;
- sentence-transformers ``CrossEncoder.predict`` on the model dir, the baseline the ratios are against.

Each engine's argmax agreement with PyTorch fp32 on the benched pairs is reported beside its rate, and the rates
are set against the bf16 compute limit: the best bf16 matrix-product rate on the same threads divided by the
FLOPs of a pair (2 x the encoder's weights, embeddings left out, x the pair's tokens).

Every engine runs with the same thread count (one by default: on a shared box that is what a serving process
gets), after a warm-up batch; each is timed ``repeats`` times and the best run counts. Both wall-clock and
CPU-time rates are reported; the ratios and the target use pairs per CPU-second, which other processes on a
busy machine barely disturb (with one thread, all work runs on the calling thread), while wall-clock rates on
such a machine mostly measure the neighbours. Training throughput is measured for a few optimiser steps
(forward, backward, AdamW) at the bench batch size, and the rate the real training run recorded in
``student.json`` is shown too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from student.data import MAX_DESCRIPTION_CHARS, read_pairs, render_ad
from student.modelio import BATCH_SIZE_DEFAULT, read_meta, set_threads

# The variant `/v1/score` serves by default should score at least this many times ONNX fp32.
TARGET_SERVED_VS_ONNX_FP32 = 2.0
SERVED_ENGINES = {"int8": "onnx_int8", "bf16": "openvino_bf16", "fp32": "onnx_fp32"}


def _best_seconds(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds over ``repeats`` runs."""
    wall, cpu = float("inf"), float("inf")
    for _ in range(max(1, repeats)):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def _train_pairs_per_s(model_dir: Path, texts: Sequence[tuple[str, str]], batch_size: int, steps: int) -> float:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    generator = torch.Generator().manual_seed(0)
    max_length = int(read_meta(model_dir).get("max_length", 128))

    def step(i: int) -> None:
        batch = [texts[(i * batch_size + j) % len(texts)] for j in range(batch_size)]
        enc = tokenizer(
            [q for q, _ in batch],
            [a for _, a in batch],
            padding=True,
            truncation="longest_first",
            max_length=max_length,
            return_tensors="pt",
        )
        labels = torch.randint(0, model.config.num_labels, (batch_size,), generator=generator)
        loss = torch.nn.functional.cross_entropy(model(**enc).logits, labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step(0)  # warm-up: first-call allocations
    start = time.perf_counter()
    for i in range(1, steps + 1):
        step(i)
    return steps * batch_size / (time.perf_counter() - start)


def bench(
    export_dir: str | Path,
    pairs_path: str | Path,
    *,
    model_dir: str | Path | None = None,
    n: int = 512,
    batch_size: int = BATCH_SIZE_DEFAULT,
    repeats: int = 3,
    threads: int = 1,
    train_steps: int = 5,
) -> dict[str, Any]:
    """Pairs per second for each engine and the ratios to ``CrossEncoder.predict``; JSON-ready."""
    from sentence_transformers import CrossEncoder

    from student.modelio import TorchStudent
    from student.scorer import Scorer

    export_dir = Path(export_dir)
    meta = read_meta(export_dir)
    if model_dir is None:
        source = meta.get("export", {}).get("source_model_dir")
        if not source:
            raise ValueError(f"{export_dir}/student.json names no source model dir; pass the model dir")
        model_dir = source
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} is not a model dir (no config.json)")
    set_threads(threads)
    chars = int(meta.get("ad_rendering", {}).get("description_chars", MAX_DESCRIPTION_CHARS))
    pairs = read_pairs(pairs_path)[:n]
    texts = [(p.query, render_ad(p.ad, description_chars=chars)) for p in pairs]
    warm = texts[:batch_size]

    import torch

    from experiments.bench.teacher import gemm_flops_per_s
    from student.scorer import ONNX_FILES, openvino_available, pick_variant, serve_order

    fp32 = Scorer(export_dir, "fp32", batch_size=batch_size, threads=threads)
    # An export whose int8 model failed its gate has no int8 file: bench what there is.
    has_int8 = (export_dir / ONNX_FILES["int8"]).is_file()
    eager = TorchStudent(model_dir)
    cross = CrossEncoder(str(model_dir), device="cpu", max_length=int(meta.get("max_length", 128)))

    def autocast_bf16(t: Sequence[tuple[str, str]]) -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return eager.logits(t, batch_size=batch_size)

    engines: dict[str, Callable[[Sequence[tuple[str, str]]], Any]] = {"onnx_fp32": fp32.logits}
    if has_int8:
        engines["onnx_int8"] = Scorer(export_dir, "int8", batch_size=batch_size, threads=threads).logits
    if openvino_available():
        engines["openvino_bf16"] = Scorer(export_dir, "bf16", batch_size=batch_size, threads=threads).logits
    engines |= {
        "torch_fp32_eager": lambda t: eager.logits(t, batch_size=batch_size),
        "torch_bf16_autocast": autocast_bf16,
        "cross_encoder_predict": lambda t: cross.predict(list(t), batch_size=batch_size, show_progress_bar=False),
    }
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    agreement: dict[str, float | None] = {}
    reference = eager.logits(texts, batch_size=batch_size).argmax(axis=1)
    for name, fn in engines.items():
        fn(warm)
        wall[name], cpu[name] = _best_seconds(lambda fn=fn: fn(texts), repeats)
        out = np.asarray(fn(texts))
        agreement[name] = float((out.argmax(axis=1) == reference).mean()) if out.ndim == 2 else None
    rates = {name: len(texts) / s for name, s in cpu.items()}
    wall_rates = {name: len(texts) / s for name, s in wall.items()}
    baseline = rates["cross_encoder_predict"]
    lengths = fp32.token_lengths(texts)
    encoder = sum(p.numel() for n, p in eager.model.named_parameters() if "embeddings" not in n)
    flops_per_pair = 2 * encoder * float(np.mean(lengths))
    bf16_gemm = gemm_flops_per_s("bfloat16")
    limit = bf16_gemm / flops_per_pair
    # What AGPO_STUDENT_VARIANT=auto serves from this export on this CPU.
    served = pick_variant(export_dir)
    served_ratio = round(rates[SERVED_ENGINES[served]] / rates["onnx_fp32"], 2)
    result: dict[str, Any] = {
        "pairs": str(pairs_path),
        "n": len(texts),
        "mean_tokens": float(np.mean(lengths)),
        "batch_size": batch_size,
        "threads": threads,
        "repeats": repeats,
        "scoring_pairs_per_cpu_s": {k: round(v, 1) for k, v in rates.items()},
        "scoring_pairs_per_wall_s": {k: round(v, 1) for k, v in wall_rates.items()},
        "ratio_vs_cross_encoder_predict": {k: round(v / baseline, 2) for k, v in rates.items()},
        "ratio_vs_onnx_fp32": {k: round(v / rates["onnx_fp32"], 2) for k, v in rates.items()},
        "ratio_basis": "pairs per CPU-second",
        "argmax_agreement_with_torch_fp32": agreement,
        "bf16_limit": {
            "gemm_gflop_per_s": round(bf16_gemm / 1e9, 1),
            "gflop_per_pair": round(flops_per_pair / 1e9, 4),
            "pairs_per_s": round(limit, 1),
            "utilisation_wall": {k: round(v / limit, 3) for k, v in wall_rates.items()},
        },
        "served": {
            "variant": served,
            "engine": SERVED_ENGINES[served],
            "serve_order": list(serve_order()),
            "ratio_vs_onnx_fp32": served_ratio,
            "target_vs_onnx_fp32": TARGET_SERVED_VS_ONNX_FP32,
            "target_met": served_ratio >= TARGET_SERVED_VS_ONNX_FP32,
        },
        "training_pairs_per_s": {
            "measured": round(_train_pairs_per_s(model_dir, texts, batch_size, train_steps), 2)
            if train_steps > 0
            else None,
            "steps": train_steps,
            "recorded_in_student_json": meta.get("training", {}).get("train_pairs_per_s"),
        },
        "model_version": meta.get("model_version"),
    }
    return result


def render_table(result: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(
        title=f"{result['n']} pairs, {result['mean_tokens']:.0f} tokens on average, "
        f"batch {result['batch_size']}, {result['threads']} thread(s)"
    )
    table.add_column("engine")
    table.add_column("pairs/CPU-s", justify="right")
    table.add_column("pairs/wall-s", justify="right")
    table.add_column("x CrossEncoder.predict", justify="right")
    table.add_column("x ONNX fp32", justify="right")
    table.add_column("of bf16 limit", justify="right")
    table.add_column("agrees with torch fp32", justify="right")
    limit = result["bf16_limit"]
    for name, rate in result["scoring_pairs_per_cpu_s"].items():
        wall = result["scoring_pairs_per_wall_s"][name]
        agree = result["argmax_agreement_with_torch_fp32"].get(name)
        table.add_row(
            name,
            f"{rate:,.1f}",
            f"{wall:,.1f}",
            f"{result['ratio_vs_cross_encoder_predict'][name]:.2f}",
            f"{result['ratio_vs_onnx_fp32'][name]:.2f}",
            f"{limit['utilisation_wall'][name]:.1%}",
            "-" if agree is None else f"{agree:.4f}",
        )
    train = result["training_pairs_per_s"]
    measured = "-" if train["measured"] is None else f"{train['measured']:,.1f}"
    table.add_row("training (measured, wall)", "", measured, "")
    return table


def write_result(result: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return path
