"""Distil a cross-encoder student from teacher labels (or gold labels, the ceiling) with CrossEncoderTrainer.

The student is all-MiniLM-L6-v2 with a classification head of one logit per schema label. Targets are the
teacher's hard labels (cross-entropy, optional label smoothing) or its vote distributions (temperature-scaled
KL, optionally mixed with hard CE), optionally weighted by the teacher's confidence or filtered by it. After
training a temperature is fitted on dev, and the model dir gets a ``student.json`` that says what it was
distilled from, how, and how it did on dev.
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm.hardware import cpu_has_bf16
from relevance.schemas import DEFAULT_SCHEMA, get_schema
from student.data import (
    MAX_DESCRIPTION_CHARS,
    DataError,
    Example,
    LabelledSet,
    Source,
    detect_source,
    filter_confidence,
    load_labelled,
    split_by_query,
)
from student.modelio import (
    FORMAT_VERSION,
    MAX_LENGTH_DEFAULT,
    base_model_path,
    set_threads,
    write_meta,
)

if TYPE_CHECKING:
    from student.losses import Targets

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
MAX_AUTO_EPOCHS = 10
TRAINING_IDS = "training_ids.txt"
DEV_EVALUATOR = "dev"
# Enough dev pairs to rank checkpoints by macro-F1 without evaluation dominating a short run.
MAX_SELECTION_PAIRS = 1_000


@dataclass
class TrainConfig:
    """How to train; every field lands in ``student.json`` under ``training``."""

    targets: Targets = "hard"
    epochs: float | None = None  # None: enough for min_steps optimizer steps, at most MAX_AUTO_EPOCHS
    min_steps: int = 500
    max_steps: int = -1
    batch_size: int = 32
    lr: float = 1e-4
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    label_smoothing: float = 0.0
    kd_temperature: float = 1.0
    alpha: float = 0.0
    confidence_weighting: bool = False
    class_balance: bool = True
    min_confidence: float = 0.0
    max_length: int = MAX_LENGTH_DEFAULT
    dev_fraction: float = 0.1
    seed: int = 0
    threads: int = 1
    save_steps: int = 500
    select_best: bool = True
    evaluations: int = 8
    bf16: bool = False  # bf16 autocast where the CPU computes bf16 in hardware (AMX, AVX-512 BF16); fp32 elsewhere
    logging_steps: int = 50
    keep_checkpoints: bool = False
    resume: bool = False
    progress: bool = True
    base_model: str | None = None

    def validate(self) -> None:
        problems = []
        if self.targets not in ("hard", "soft"):
            problems.append(f"targets must be 'hard' or 'soft', got {self.targets!r}")
        if self.epochs is not None and self.epochs <= 0 and self.max_steps <= 0:
            problems.append("give epochs > 0 (or leave it to min_steps) or max_steps > 0")
        if self.min_steps < 1:
            problems.append("min_steps must be at least 1")
        if self.batch_size < 1:
            problems.append("batch_size must be at least 1")
        if self.lr <= 0:
            problems.append("lr must be positive")
        if not 0 <= self.label_smoothing < 1:
            problems.append("label_smoothing must lie in [0, 1)")
        if self.kd_temperature <= 0:
            problems.append("kd_temperature must be positive")
        if not 0 <= self.alpha <= 1:
            problems.append("alpha must lie in [0, 1]")
        if not 0 <= self.min_confidence <= 1:
            problems.append("min_confidence must lie in [0, 1]")
        if self.max_length < 8:
            problems.append("max_length must be at least 8")
        if self.evaluations < 1:
            problems.append("evaluations must be at least 1")
        if problems:
            raise ValueError("; ".join(problems))


def epochs_for(config: TrainConfig, n_train: int) -> float:
    """The epochs to run: ``config.epochs`` when given, else as many as ``min_steps`` optimizer steps need.

    A fresh classification head on a few thousand pairs needs hundreds of steps: one epoch of 2,000 pairs at
    batch 32 (63 steps) left the student predicting one class for every pair.
    """
    if config.epochs is not None:
        return config.epochs
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    return float(min(MAX_AUTO_EPOCHS, max(1, math.ceil(config.min_steps / steps_per_epoch))))


@dataclass
class TrainResult:
    model_dir: Path
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class PreparedData:
    train: list[Example]
    dev: list[Example]
    labelled: LabelledSet
    dev_source: dict[str, Any]
    dropped: dict[str, int]


def prepare_data(
    train_path: str | Path,
    config: TrainConfig,
    *,
    pairs: str | Path | None = None,
    source: Source = "auto",
    dev_path: str | Path | None = None,
    schema: str = DEFAULT_SCHEMA,
) -> PreparedData:
    """Read, validate, filter and split; every data error surfaces here, before the model is loaded."""
    labelled = load_labelled(train_path, pairs=pairs, source=source, schema=schema)
    dropped = {"failed": labelled.n_failed, "low_confidence": 0, "dev_query_overlap": 0}
    examples = labelled.examples
    if config.min_confidence > 0:
        kept = filter_confidence(examples, config.min_confidence)
        dropped["low_confidence"] = len(examples) - len(kept)
        if len({e.label for e in kept}) < 2:
            raise DataError(
                train_path,
                f"after dropping pairs with confidence below {config.min_confidence}, "
                f"{len(kept)} pairs and fewer than two classes are left",
            )
        examples = kept
    if dev_path is not None:
        # Teacher results for dev, like those for training, may leave their pairs in the pairs file.
        dev_kind = detect_source(dev_path)
        dev_set = load_labelled(
            dev_path, pairs=pairs if dev_kind == "teacher" else None, source=dev_kind, schema=schema
        )
        dev = dev_set.examples
        dev_groups = {e.group for e in dev}
        train = [e for e in examples if e.group not in dev_groups]
        dropped["dev_query_overlap"] = len(examples) - len(train)
        dev_source = {"path": str(dev_path), "source": dev_set.source}
    else:
        try:
            train, dev = split_by_query(examples, config.dev_fraction, config.seed)
        except ValueError as exc:
            raise DataError(train_path, str(exc)) from None
        dev_source = {"split_of": str(train_path), "dev_fraction": config.dev_fraction, "seed": config.seed}
    if len({e.label for e in train}) < 2:
        raise DataError(train_path, "the training split has fewer than two classes")
    return PreparedData(train, dev, labelled, dev_source, dropped)


def class_weights(examples: list[Example]) -> dict[str, float]:
    """``n / (K * n_c)`` per label: every class carries the same total weight, as macro-F1 counts them."""
    counts = Counter(e.label for e in examples)
    return {label: len(examples) / (len(counts) * n) for label, n in counts.items()}


def _weights(examples: list[Example], config: TrainConfig) -> list[float]:
    per_class = class_weights(examples) if config.class_balance else {}
    return [(e.confidence if config.confidence_weighting else 1.0) * per_class.get(e.label, 1.0) for e in examples]


def _dataset(examples: list[Example], schema: str, config: TrainConfig) -> Any:
    from datasets import Dataset

    from student.losses import pack_labels

    sch = get_schema(schema)
    weights = _weights(examples, config)
    return Dataset.from_dict(
        {
            "query": [e.query for e in examples],
            "ad": [e.ad_text for e in examples],
            "label": [pack_labels(e.target, sch.index(e.label), w) for e, w in zip(examples, weights, strict=True)],
        }
    )


def _dev_evaluator(dev: list[Example], schema: str, config: TrainConfig) -> Any:
    """Macro-F1 on (a seeded sample of) dev, the metric the best checkpoint is chosen by."""
    import random

    from sentence_transformers.cross_encoder.evaluation import CrossEncoderClassificationEvaluator

    sch = get_schema(schema)
    sample = dev if len(dev) <= MAX_SELECTION_PAIRS else random.Random(config.seed).sample(dev, MAX_SELECTION_PAIRS)
    return CrossEncoderClassificationEvaluator(
        sentence_pairs=[(e.query, e.ad_text) for e in sample],
        labels=[sch.index(e.label) for e in sample],
        name=DEV_EVALUATOR,
        batch_size=64,
        show_progress_bar=False,
    )


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_version(model_dir: Path) -> str:
    """``student-<12 hex>`` from the weights, so a scorer's answers name the exact model behind them."""
    weights = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    if not weights:
        raise FileNotFoundError(f"no weights in {model_dir}")
    h = hashlib.sha256("".join(_file_digest(p) for p in weights).encode()).hexdigest()
    return f"student-{h[:12]}"


def train(
    train_path: str | Path,
    out_dir: str | Path,
    config: TrainConfig | None = None,
    *,
    pairs: str | Path | None = None,
    source: Source = "auto",
    dev_path: str | Path | None = None,
    schema: str = DEFAULT_SCHEMA,
    prepared: PreparedData | None = None,
) -> TrainResult:
    """Train a student on ``train_path`` and save it (HF model dir + ``student.json``) to ``out_dir``.

    ``prepared`` is the result of :func:`prepare_data` with the same arguments, when the caller already has it.
    """
    config = config or TrainConfig()
    config.validate()
    sch = get_schema(schema)
    data = prepared or prepare_data(train_path, config, pairs=pairs, source=source, dev_path=dev_path, schema=sch.name)

    import transformers
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )

    from student.losses import DistillationLoss

    set_threads(config.threads)
    transformers.set_seed(config.seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # A local dir or a hub id (CrossEncoder resolves either); the shipped MiniLM when none is named.
    base = config.base_model or str(base_model_path())

    model = CrossEncoder(base, num_labels=len(sch.names), max_length=config.max_length, device="cpu")
    hf_config = model.model.config
    hf_config.id2label = dict(enumerate(sch.names))
    hf_config.label2id = {name: i for i, name in enumerate(sch.names)}

    epochs = epochs_for(config, len(data.train))
    steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
    total_steps = config.max_steps if config.max_steps > 0 else math.ceil(steps_per_epoch * epochs)
    # Checkpoints are where selection can land, so with selection they follow the evaluations.
    eval_steps = max(1, math.ceil(total_steps / config.evaluations))
    select = config.select_best and total_steps > 1
    bf16 = config.bf16 and cpu_has_bf16()
    if config.bf16 and not bf16:
        log.warning("bf16 asked, but this CPU has no bf16 units (amx_bf16 or avx512_bf16): training in fp32")
    args = CrossEncoderTrainingArguments(
        output_dir=str(out / CHECKPOINTS),
        num_train_epochs=epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.lr,
        warmup_steps=int(config.warmup_ratio * total_steps),
        weight_decay=config.weight_decay,
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=eval_steps if select else config.save_steps,
        save_total_limit=1,
        eval_strategy="steps" if select else "no",
        eval_steps=eval_steps if select else None,
        load_best_model_at_end=select,
        metric_for_best_model=f"eval_{DEV_EVALUATOR}_f1_macro" if select else None,
        greater_is_better=True,
        bf16=bf16,
        report_to="none",
        disable_tqdm=not config.progress,
        use_cpu=True,
        dataloader_num_workers=0,
    )
    loss = DistillationLoss(
        model,
        targets=config.targets,
        temperature=config.kd_temperature,
        alpha=config.alpha if config.targets == "soft" else 1.0,
        label_smoothing=config.label_smoothing,
    )
    trainer = CrossEncoderTrainer(
        model=model,
        args=args,
        train_dataset=_dataset(data.train, sch.name, config),
        loss=loss,
        evaluator=_dev_evaluator(data.dev, sch.name, config) if select else None,
    )
    resume = config.resume and any((out / CHECKPOINTS).glob("checkpoint-*"))
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=True if resume else None)
    runtime = time.perf_counter() - started
    steps = trainer.state.global_step
    selection = _selection(trainer.state) if select else None
    model.save_pretrained(str(out))
    if not config.keep_checkpoints:
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)

    run = {
        "epochs": epochs,
        "steps": steps,
        "runtime_s": runtime,
        "final_loss": output.training_loss,
        "precision": "bf16" if bf16 else "fp32",
    }
    meta = _metadata(out, config, data, sch.name, base, run, selection)
    write_meta(out, meta)
    return TrainResult(out, meta)


def _selection(state: Any) -> dict[str, Any]:
    """Which checkpoint was kept, and the dev macro-F1 of every evaluation (the curve behind the choice)."""
    key = f"eval_{DEV_EVALUATOR}_f1_macro"
    curve = [{"step": e["step"], "dev_macro_f1": round(e[key], 4)} for e in state.log_history if key in e]
    best = state.best_model_checkpoint
    return {
        "metric": "dev macro-F1",
        "best_step": int(best.rsplit("-", 1)[-1]) if best else None,
        "best_dev_macro_f1": state.best_metric,
        "curve": curve,
    }


def _write_training_ids(out: Path, train: list[Example]) -> dict[str, Any]:
    """Every training pair's ``custom_id`` in ``TRAINING_IDS``, so any evaluation set can be checked for overlap
    (real rows keep their source's id: ``homedepot-<Kaggle id>``, ``esci-...``); the card names the file."""
    ids = sorted(e.custom_id for e in train)
    text = "\n".join(ids) + "\n"
    (out / TRAINING_IDS).write_text(text, encoding="utf-8")
    prefixes = Counter(i.split("-", 1)[0] if "-" in i else "" for i in ids)
    return {
        "file": TRAINING_IDS,
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "by_prefix": dict(prefixes.most_common(10)),
    }


def _pairs_seen(steps: int, n: int, batch_size: int) -> int:
    per_epoch = math.ceil(n / batch_size)
    return (steps // per_epoch) * n + min(n, (steps % per_epoch) * batch_size)


def _metadata(
    out: Path,
    config: TrainConfig,
    data: PreparedData,
    schema: str,
    base: str,
    run: dict[str, Any],
    selection: dict[str, Any] | None,
) -> dict[str, Any]:
    """``student.json``; ``run`` holds what the trainer did (epochs, steps, runtime_s, final_loss)."""
    from student.evaluate import dev_report

    sch = get_schema(schema)
    steps, runtime = run["steps"], run["runtime_s"]
    dev = dev_report(out, data.dev, schema, max_length=config.max_length)
    labelled = data.labelled
    return {
        "format_version": FORMAT_VERSION,
        "kind": "cross-encoder",
        "model_version": model_version(out),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "schema": sch.name,
        "schema_version": sch.version(),
        "labels": sch.names,
        "gains": sch.gains,
        "temperature": dev["temperature"],
        "max_length": config.max_length,
        "ad_rendering": {"function": "student.data.render_ad", "description_chars": MAX_DESCRIPTION_CHARS},
        "base_model": {
            "name": str(config.base_model) if config.base_model else "sentence-transformers/all-MiniLM-L6-v2",
            "path": str(base),
        },
        "distilled_from": {
            "source": labelled.source,
            "path": labelled.path,
            "teachers": labelled.teachers,
            "prompt_versions": labelled.prompt_versions,
        },
        "data": {
            "train": {
                "n": len(data.train),
                "queries": len({e.group for e in data.train}),
                "ids": _write_training_ids(out, data.train),
            },
            "dev": {"n": len(data.dev), "queries": len({e.group for e in data.dev}), **data.dev_source},
            "skipped": data.dropped,
            "label_counts_train": {n: sum(e.label == n for e in data.train) for n in sch.names},
        },
        "seed": config.seed,
        "training": {
            **asdict(config),
            "precision": run["precision"],
            "epochs": run["epochs"],
            "steps": steps,
            "runtime_s": round(runtime, 2),
            "train_pairs_per_s": round(_pairs_seen(steps, len(data.train), config.batch_size) / runtime, 2)
            if runtime > 0
            else None,
            "final_loss": run["final_loss"],
            "selection": selection,
        },
        "dev_metrics": dev["metrics"],
    }
