"""Export a student to ONNX (fp32, and dynamic int8), checked against PyTorch before anything is written.

``torch.onnx.export`` (the dynamo exporter, which needs onnxscript) writes fp32 with dynamic batch and
sequence axes; ``onnxruntime.quantization.quantize_dynamic`` makes int8 weights from it. Both are built in a
scratch dir next to the target and checked on held-out pairs:

- fp32: every probability (temperature applied, as served) within ``fp32_atol`` of PyTorch;
- int8: argmax agreement with PyTorch at least ``int8_min_agreement``, and NDCG@10 (ads ranked by expected
  gain) within ``int8_max_ndcg_delta`` of PyTorch's;
- bf16 (the fp32 file computed in bfloat16 by OpenVINO, when it is installed): the same gate as int8. It writes
  no file, so failing it does not refuse the export; ``bf16_ok`` tells the server whether it may serve it.

Only an export that passes is moved into place; one that fails is deleted and :class:`ExportError` carries
the measured numbers. NDCG needs relevance: gold labels (``meta.label``) when the parity pairs have them,
otherwise PyTorch's own predicted labels, which still measures how much the int8 ranking moved.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from relevance.metrics import ndcg_at_k
from relevance.schemas import get_schema
from student.data import MAX_DESCRIPTION_CHARS, query_group, read_pairs, render_ad
from student.modelio import STUDENT_JSON, TOKENIZER_FILES, read_meta, softmax, write_meta
from student.scorer import ONNX_FILES, Scorer, openvino_available

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 18


@dataclass(frozen=True)
class ExportTolerances:
    fp32_atol: float = 1e-3
    int8_min_agreement: float = 0.99
    int8_max_ndcg_delta: float = 0.005


class ExportError(RuntimeError):
    """The export failed its parity check; ``report`` holds the measured numbers."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


def export_onnx(model_dir: str | Path, path: str | Path, max_length: int, opset: int = OPSET) -> Path:
    """fp32 ONNX of the classifier: (input_ids, attention_mask, token_type_ids) -> logits, batch and length dynamic."""
    import torch
    from transformers import AutoModelForSequenceClassification

    class Logits(torch.nn.Module):
        # The exporter wants a module that returns a tensor, not a ModelOutput.
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    model = Logits(AutoModelForSequenceClassification.from_pretrained(model_dir)).eval()
    # A sample of batch 2 and length 16: sizes of 1 would be specialised into constants by torch.export.
    sample = (
        torch.randint(1000, 2000, (2, 16), dtype=torch.long),
        torch.ones((2, 16), dtype=torch.long),
        torch.zeros((2, 16), dtype=torch.long),
    )
    batch = torch.export.Dim("batch", max=65536)
    sequence = torch.export.Dim("sequence", max=max(max_length, 17))
    dims = {0: batch, 1: sequence}
    path = Path(path)
    # The exporter logs a warning per missing torchvision op it could have registered; none is used here.
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    with torch.no_grad(), warnings.catch_warnings():
        # Known, harmless notes of the dynamo exporter about axis naming and a deprecated pytree class.
        warnings.filterwarnings("ignore", message=".*axis name.*will not be used", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
        torch.onnx.export(
            model,
            sample,
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=["logits"],
            dynamic_shapes={name: dims for name in INPUT_NAMES},
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    registration.setLevel(level)
    return path


def optimize_for_cpu(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """Fuse the exported graph for onnxruntime's CPU kernels; returns what was done.

    The dynamo exporter writes attention as a dozen small ops, which onnxruntime's own BERT optimizer does not
    recognise. onnxscript's ORT fusions do: SkipLayerNormalization, BiasGelu and one ``Attention`` op per layer
    (packed QKV weights, folded here into one initializer). Their Attention takes the padding mask as an additive
    bias (input 5) and carries ``qkv_hidden_sizes``; dynamic quantisation only turns the classic form into
    ``QAttention``, so when every layer matches, the mask goes in as ``mask_index`` (the raw 0/1 mask, int32)
    instead. About 1.2x faster in fp32 and 1.25x in int8 at ~56 tokens. Anything unexpected leaves the graph as
    it was: the parity check, not this function, is what vouches for the result.
    """
    import onnx
    import onnx_ir as ir
    from onnx_ir.passes import common
    from onnxscript import optimizer
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    report: dict[str, Any] = {"fused": False, "attention_mask_index": False}
    try:
        model = ir.load(str(src))
        model, counts = optimize_for_ort(model)
        optimizer.fold_constants(model, input_size_limit=1 << 30, output_size_limit=1 << 30)
        proto = ir.serde.serialize_model(model)
        report["fusions"] = {k: v for k, v in counts.items() if v}
        report["fused"] = True
        report["attention_mask_index"] = _attention_to_mask_index(proto)
        model = ir.serde.deserialize_model(proto)
        common.RemoveUnusedNodesPass()(model)
        ir.save(model, str(dst))
        onnx.checker.check_model(str(dst))
    except Exception as exc:  # any failure of the optional fusion: keep the plain graph
        report = {"fused": False, "attention_mask_index": False, "error": f"{type(exc).__name__}: {exc}"}
        shutil.copy2(src, dst)
    return report


def _attention_to_mask_index(proto: Any) -> bool:
    """Rewrite fused Attention nodes to take the raw mask as mask_index; False (and no change) unless all match."""
    from onnx import TensorProto, helper

    graph = proto.graph
    inputs = {i.name for i in graph.input}
    initializers = {i.name for i in graph.initializer}
    nodes = [n for n in graph.node if n.op_type == "Attention" and n.domain == "com.microsoft"]
    if not nodes or "attention_mask" not in inputs:
        return False
    for node in nodes:
        sizes = next((list(a.ints) for a in node.attribute if a.name == "qkv_hidden_sizes"), None)
        if (
            len(node.input) != 6
            or node.input[3]
            or node.input[4]
            or node.input[1] not in initializers
            or (sizes is not None and len(set(sizes)) != 1)
        ):
            return False
    mask = "attention_mask_int32"
    graph.node.insert(0, helper.make_node("Cast", ["attention_mask"], [mask], to=TensorProto.INT32, name=mask))
    for node in nodes:
        attributes = [a for a in node.attribute if a.name != "qkv_hidden_sizes"]
        del node.attribute[:]
        node.attribute.extend(attributes)
        new_inputs = [*list(node.input)[:3], mask]
        del node.input[:]
        node.input.extend(new_inputs)
    return True


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def quantize_int8(fp32_path: str | Path, int8_path: str | Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel weight scales: per-tensor ones flipped about one argmax in ten on a weakly trained student.
    # The quantiser's advice to pre-process first does not apply: its symbolic shape inference fails on this graph.
    quiet = _DropMessage("Please consider to run pre-processing")
    logging.getLogger().addFilter(quiet)
    source, target = str(Path(fp32_path).resolve()), str(Path(int8_path).resolve())  # before the chdir below
    try:
        # The quantiser's shape inference drops temporary files into the working directory: give it a
        # throwaway one instead of wherever the command was started.
        with tempfile.TemporaryDirectory() as junk, contextlib.chdir(junk):
            quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True)
    finally:
        logging.getLogger().removeFilter(quiet)
    return Path(int8_path)


def _parity_data(
    path: str | Path, labels: list[str], description_chars: int, limit: int | None
) -> tuple[list[tuple[str, str]], list[str], list[str] | None]:
    pairs = read_pairs(path)[:limit] if limit else read_pairs(path)
    texts = [(p.query, render_ad(p.ad, description_chars=description_chars)) for p in pairs]
    groups = [query_group(p) for p in pairs]
    gold = [(p.meta or {}).get("label") for p in pairs]
    if all(isinstance(g, str) and g in labels for g in gold):
        return texts, groups, gold  # type: ignore[return-value]
    return texts, groups, None


def parity_report(
    torch_logits: np.ndarray,
    fp32_logits: np.ndarray,
    int8_logits: np.ndarray | None,
    *,
    bf16_logits: np.ndarray | None = None,
    temperature: float,
    schema: str,
    query_ids: list[str],
    gold: list[str] | None,
    tolerances: ExportTolerances,
) -> dict[str, Any]:
    """The measured numbers and whether each check passes."""
    sch = get_schema(schema)
    gains = np.array([sch.gain(n) for n in sch.names])
    p_torch = softmax(torch_logits, temperature)
    p_fp32 = softmax(fp32_logits, temperature)
    relevance = gold if gold is not None else [sch.names[i] for i in p_torch.argmax(axis=1)]
    report: dict[str, Any] = {
        "n": len(query_ids),
        "relevance": "gold labels" if gold is not None else "PyTorch predictions",
        "tolerances": asdict(tolerances),
        "fp32_max_abs_prob_diff": float(np.abs(p_fp32 - p_torch).max()),
        "fp32_argmax_agreement": float((p_fp32.argmax(1) == p_torch.argmax(1)).mean()),
    }
    report["fp32_ok"] = report["fp32_max_abs_prob_diff"] <= tolerances.fp32_atol
    ndcg_torch = ndcg_at_k(query_ids, relevance, (p_torch @ gains).tolist(), sch)
    report["ndcg@10_torch"] = ndcg_torch
    for variant, logits in (("int8", int8_logits), ("bf16", bf16_logits)):
        if logits is None:
            continue
        p_fast = softmax(logits, temperature)
        ndcg_fast = ndcg_at_k(query_ids, relevance, (p_fast @ gains).tolist(), sch)
        delta = abs(ndcg_fast - ndcg_torch) if np.isfinite(ndcg_fast) and np.isfinite(ndcg_torch) else 0.0
        report.update(
            {
                f"{variant}_max_abs_prob_diff": float(np.abs(p_fast - p_torch).max()),
                f"{variant}_argmax_agreement": float((p_fast.argmax(1) == p_torch.argmax(1)).mean()),
                f"ndcg@10_{variant}": ndcg_fast,
                f"{variant}_ndcg_delta": float(delta),
            }
        )
        # One gate for every reduced-precision variant: the int8 tolerances.
        report[f"{variant}_ok"] = (
            report[f"{variant}_argmax_agreement"] >= tolerances.int8_min_agreement
            and report[f"{variant}_ndcg_delta"] <= tolerances.int8_max_ndcg_delta
        )
    # bf16 has no file of its own (it computes the fp32 file in bfloat16): failing its gate only stops it being
    # served, while a failed int8 file is not shipped at all.
    report["ok"] = report["fp32_ok"] and report.get("int8_ok", True)
    return report


def servable_variants(report: dict[str, Any]) -> list[str]:
    """The variants that passed their parity gate (an int8 model that failed is never written)."""
    return ["fp32", *(v for v in ("int8", "bf16") if report.get(f"{v}_ok"))]


def _failure_message(report: dict[str, Any]) -> str:
    tol = report["tolerances"]
    parts = []
    if not report["fp32_ok"]:
        parts.append(f"fp32 max |p - p_torch| = {report['fp32_max_abs_prob_diff']:.2e} > {tol['fp32_atol']:.2e}")
    if report.get("int8_ok") is False:
        parts.append(
            f"int8 argmax agreement = {report['int8_argmax_agreement']:.4f} (need >= {tol['int8_min_agreement']}), "
            f"NDCG@10 change = {report['int8_ndcg_delta']:.4f} (need <= {tol['int8_max_ndcg_delta']})"
        )
    return f"export refused, parity check failed on {report['n']} pairs: " + "; ".join(parts)


def export(
    model_dir: str | Path,
    out_dir: str | Path,
    parity_pairs: str | Path,
    *,
    tolerances: ExportTolerances | None = None,
    int8: bool = True,
    drop_failed_int8: bool = False,
    overwrite: bool = False,
    max_parity_pairs: int | None = None,
    opset: int = OPSET,
    optimize: bool = True,
) -> dict[str, Any]:
    """Export ``model_dir`` to ``out_dir`` (ONNX files, tokenizer, student.json) if it passes parity.

    ``drop_failed_int8``: an int8 model that fails its gate is left out instead of refusing the whole export.
    """
    from student.modelio import TorchStudent

    tolerances = tolerances or ExportTolerances()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    meta = read_meta(model_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} exists and is not empty; pass overwrite to replace it")
    description_chars = int(meta.get("ad_rendering", {}).get("description_chars", MAX_DESCRIPTION_CHARS))
    texts, groups, gold = _parity_data(parity_pairs, meta["labels"], description_chars, max_parity_pairs)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        raw = export_onnx(model_dir, scratch / "raw.onnx", int(meta["max_length"]), opset)
        graph = optimize_for_cpu(raw, scratch / ONNX_FILES["fp32"]) if optimize else {"fused": False}
        if not optimize:
            raw.rename(scratch / ONNX_FILES["fp32"])
        raw.unlink(missing_ok=True)
        if int8:
            quantize_int8(scratch / ONNX_FILES["fp32"], scratch / ONNX_FILES["int8"])
        for name in TOKENIZER_FILES:
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, scratch / name)
        shutil.copy2(model_dir / STUDENT_JSON, scratch / STUDENT_JSON)

        torch_logits = TorchStudent(model_dir).logits(texts)
        fp32_logits = Scorer(scratch, "fp32").logits(texts)
        int8_logits = Scorer(scratch, "int8").logits(texts) if int8 else None
        bf16_logits = Scorer(scratch, "bf16").logits(texts) if openvino_available() else None
        report = parity_report(
            torch_logits,
            fp32_logits,
            int8_logits,
            bf16_logits=bf16_logits,
            temperature=float(meta.get("temperature", 1.0)),
            schema=meta["schema"],
            query_ids=groups,
            gold=gold,
            tolerances=tolerances,
        )
        report["parity_pairs"] = str(parity_pairs)
        if not report["ok"] and report["fp32_ok"] and drop_failed_int8:
            # Ship fp32 (and bf16, gated on its own) rather than nothing: the int8 file alone failed.
            (scratch / ONNX_FILES["int8"]).unlink()
            report["int8_dropped"] = True
            report["ok"] = True
        if not report["ok"]:
            raise ExportError(_failure_message(report), report)

        files = {
            variant: {"file": name, "bytes": (scratch / name).stat().st_size}
            for variant, name in ONNX_FILES.items()
            if (scratch / name).is_file()
        }
        meta["export"] = {
            "source_model_dir": str(model_dir.resolve()),
            "exporter": "torch.onnx.export (dynamo)",
            "opset": opset,
            "graph": graph,
            "quantization": "onnxruntime quantize_dynamic, QInt8 weights, per channel" if "int8" in files else None,
            "files": files,
            "servable": servable_variants(report),
            "parity": report,
        }
        write_meta(scratch, meta)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        scratch.rename(out_dir)
        (out_dir / "parity.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        return meta["export"]
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
