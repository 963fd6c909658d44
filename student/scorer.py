"""Score query-ad pairs with an exported student: the fast tokenizer plus onnxruntime on CPU, no torch.

Made for a web process: loaded once, one intra-op thread with spinning off (busy-waiting threads steal CPU
from every other process on the box; scale with processes instead), pairs batched by length so little work goes
to padding, and safe to call from many threads: onnxruntime's ``InferenceSession.run`` is thread-safe, and the
tokenizer, whose Python object is shared Rust state, is only used under a lock.

Dynamic int8 quantisation picks its activation scales from each batch, so an int8 score moves slightly (about
1e-3 in probability) with the other pairs in its batch; fp32 scores do not depend on the batch.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from relevance.pairs import Ad, Pair
from student.data import MAX_DESCRIPTION_CHARS, render_ad
from student.modelio import BATCH_SIZE_DEFAULT, MAX_LENGTH_DEFAULT, length_sorted_batches, read_meta, softmax

ScorerVariant = Literal["int8", "fp32"]
ONNX_FILES: dict[str, str] = {"fp32": "model.onnx", "int8": "model.int8.onnx"}


@dataclass(frozen=True)
class Score:
    """One pair's score: per-class probabilities (temperature applied), the label, and the expected gain."""

    probabilities: dict[str, float]
    label: str
    expected_gain: float
    model_version: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "expected_gain": self.expected_gain,
            "probabilities": self.probabilities,
            "model_version": self.model_version,
        }


def session_options(threads: int = 1) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


class Scorer:
    """An export dir (``student export``) loaded for scoring."""

    def __init__(
        self,
        export_dir: str | Path,
        variant: ScorerVariant = "int8",
        *,
        batch_size: int = BATCH_SIZE_DEFAULT,
        threads: int = 1,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if variant not in ONNX_FILES:
            raise ValueError(f"variant must be one of {sorted(ONNX_FILES)}, got {variant!r}")
        self.export_dir = Path(export_dir)
        self.meta = read_meta(self.export_dir)
        self.variant = variant
        self.batch_size = batch_size
        self.labels: list[str] = list(self.meta["labels"])
        self.gains = np.array([float(self.meta["gains"][n]) for n in self.labels])
        self.temperature = float(self.meta.get("temperature", 1.0))
        self.model_version = f"{self.meta.get('model_version', 'student')}/{variant}"
        self.max_length = int(self.meta.get("max_length", MAX_LENGTH_DEFAULT))
        self.description_chars = int(self.meta.get("ad_rendering", {}).get("description_chars", MAX_DESCRIPTION_CHARS))
        model_path = self.export_dir / ONNX_FILES[variant]
        if not model_path.is_file():
            raise FileNotFoundError(f"{model_path} is missing: not an export dir, or exported without {variant}")
        tokenizer = Tokenizer.from_file(str(self.export_dir / "tokenizer.json"))
        padding = tokenizer.padding
        self._pad_id = int(padding["pad_id"]) if padding else int(tokenizer.token_to_id("[PAD]") or 0)
        # tokenizer.json may carry fixed-length padding (MiniLM's pads to 128): pad per batch instead.
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.max_length, strategy="longest_first")
        self._tokenizer = tokenizer
        self._lock = threading.Lock()
        self.session = ort.InferenceSession(
            str(model_path), session_options(threads), providers=["CPUExecutionProvider"]
        )
        self._inputs = [i.name for i in self.session.get_inputs()]

    def _encode(self, pairs: Sequence[tuple[str, str]]) -> list[Any]:
        with self._lock:
            return self._tokenizer.encode_batch([(q, a) for q, a in pairs])

    def token_lengths(self, pairs: Sequence[tuple[str, str]]) -> list[int]:
        """Tokens per pair after truncation, special tokens included."""
        return [len(e.ids) for e in self._encode(pairs)]

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Raw logits for (query, ad text) pairs, in input order."""
        out = np.zeros((len(pairs), len(self.labels)), dtype=np.float32)
        if not pairs:
            return out
        encodings = self._encode(pairs)
        for idx in length_sorted_batches([len(e.ids) for e in encodings], self.batch_size):
            width = max(len(encodings[i].ids) for i in idx)
            ids = np.full((len(idx), width), self._pad_id, dtype=np.int64)
            types = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                enc = encodings[i]
                n = len(enc.ids)
                ids[row, :n] = enc.ids
                types[row, :n] = enc.type_ids
                mask[row, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            out[idx] = self.session.run(None, {k: feeds[k] for k in self._inputs})[0]
        return out

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Per-class probabilities with the fitted temperature applied, columns in ``self.labels`` order."""
        return softmax(self.logits(pairs), self.temperature)

    def score_texts(self, pairs: Sequence[tuple[str, str]]) -> list[Score]:
        probs = self.probabilities(pairs)
        expected = probs @ self.gains
        return [
            Score(
                {name: float(p[j]) for j, name in enumerate(self.labels)},
                self.labels[int(p.argmax())],
                float(g),
                self.model_version,
            )
            for p, g in zip(probs, expected, strict=True)
        ]

    def render(self, ad: Ad | Mapping[str, Any]) -> str:
        return render_ad(ad, description_chars=self.description_chars)

    def score(self, pairs: Sequence[Pair | Mapping[str, Any]]) -> list[Score]:
        """Score pairs in the Pair contract shape (``Pair`` objects or mappings with ``query`` and ``ad``)."""
        texts = []
        for pair in pairs:
            if isinstance(pair, Pair):
                texts.append((pair.query, self.render(pair.ad)))
            else:
                texts.append((str(pair["query"]), self.render(pair["ad"])))
        return self.score_texts(texts)
