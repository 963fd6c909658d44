"""Score query-ad pairs with an exported student: the fast tokenizer plus an ONNX engine on CPU, no torch.

Variants of one export: ``fp32`` and ``int8`` (dynamic quantisation) run the export's ONNX files on onnxruntime;
``bf16`` runs the fp32 file on OpenVINO with bfloat16 inference precision, which uses the AMX and AVX-512 BF16
units of recent Intel CPUs (on a CPU without them OpenVINO computes in fp32, and ``precision`` says so).

Made for a web process: loaded once, one intra-op thread with spinning off (busy-waiting threads steal CPU
from every other process on the box; scale with processes instead), pairs batched by length so little work goes
to padding, and safe to call from many threads: onnxruntime's ``InferenceSession.run`` is thread-safe, OpenVINO
gets one infer request per concurrent call, and the tokenizer, whose Python object is shared Rust state, is only
used under a lock.

Dynamic int8 quantisation picks its activation scales from each batch, so an int8 score moves slightly (about
1e-3 in probability) with the other pairs in its batch; fp32 scores do not depend on the batch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from llm.hardware import CPUINFO, cpu_flags
from relevance.pairs import Ad, Pair
from student.data import MAX_DESCRIPTION_CHARS, render_ad
from student.modelio import (
    BATCH_SIZE_DEFAULT,
    MAX_LENGTH_DEFAULT,
    length_sorted_batches,
    read_meta,
    softmax,
)

ScorerVariant = Literal["int8", "fp32", "bf16"]
ONNX_FILES: dict[str, str] = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
# The ONNX file each variant runs: bf16 is the fp32 graph computed in bfloat16.
VARIANT_FILES: dict[str, str] = {**ONNX_FILES, "bf16": ONNX_FILES["fp32"]}
OPENVINO_HINT = "pip install openvino (the bf16 student variant runs on OpenVINO)"
# What ``auto`` serves: the first of these that passed its parity gate at export (``student.json`` ->
# ``export.servable``) and can run here. Fastest first, as `agpo student bench` measured them at batch 64 on one
# thread (docs/results/student_bench_*.json): without AMX (an AMD EPYC) int8 ran 2.25x and bf16 2.14x ONNX fp32;
# with AMX (an Intel Xeon) bf16 ran 4.06x and int8 2.04x.
SERVE_ORDER: tuple[str, ...] = ("int8", "bf16", "fp32")
SERVE_ORDER_AMX: tuple[str, ...] = ("bf16", "int8", "fp32")


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


def pick_variant(export_dir: str | Path, wanted: str = "auto") -> str:
    """The variant to serve from ``export_dir``: ``wanted`` itself, or for ``auto`` the first of
    :func:`serve_order` that passed its gate and can run here (fp32 always can)."""
    if wanted != "auto":
        return wanted
    export = read_meta(export_dir).get("export") or {}
    # Exports made before bf16 existed list no servable variants: their files passed their gates.
    servable = export.get("servable") or [v for v in ONNX_FILES if (Path(export_dir) / ONNX_FILES[v]).is_file()]
    for variant in serve_order():
        if variant in servable and (variant != "bf16" or openvino_available()):
            return variant
    return "fp32"


def cpu_has_amx(cpuinfo: Path = CPUINFO) -> bool:
    """Whether the CPU multiplies bf16 matrices in AMX tiles (Linux's ``amx_bf16`` flag); False where unknown."""
    return "amx_bf16" in cpu_flags(cpuinfo)


def serve_order() -> tuple[str, ...]:
    """The variants ``auto`` tries, fastest first on this CPU."""
    return SERVE_ORDER_AMX if cpu_has_amx() else SERVE_ORDER


def openvino_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


class _OrtEngine:
    def __init__(self, model_path: Path, threads: int, precision: str) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(
            str(model_path), session_options(threads), providers=["CPUExecutionProvider"]
        )
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.precision = precision

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, {k: feeds[k] for k in self.inputs})[0]


class _OpenVinoEngine:
    def __init__(self, model_path: Path, threads: int) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise ValueError(f"the bf16 variant needs OpenVINO: {OPENVINO_HINT}") from exc
        config = {
            "INFERENCE_PRECISION_HINT": "bf16",
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
        }
        self.model = ov.Core().compile_model(str(model_path), "CPU", config)
        self.inputs = [port.get_any_name() for port in self.model.inputs]
        # What the CPU actually computes in: bf16 where it has the units, else fp32.
        self.precision = self.model.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        try:
            request = self._requests.get_nowait()
        except queue.Empty:
            request = self.model.create_infer_request()
        try:
            return request.infer({k: feeds[k] for k in self.inputs})[0].copy()
        finally:
            self._requests.put(request)


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
        from tokenizers import Tokenizer

        if variant not in VARIANT_FILES:
            raise ValueError(f"variant must be one of {sorted(VARIANT_FILES)}, got {variant!r}")
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
        model_path = self.export_dir / VARIANT_FILES[variant]
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
        self.engine = (
            _OpenVinoEngine(model_path, threads)
            if variant == "bf16"
            else _OrtEngine(model_path, threads, "i8" if variant == "int8" else "f32")
        )

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
            out[idx] = self.engine.run({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
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
