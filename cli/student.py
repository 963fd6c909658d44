"""``student`` commands: train, eval, export, score, bench, study (mounted as ``agpo student ...``).

Heavy libraries are imported inside the commands, so ``--help`` is instant. Bad input (a bad results file,
a missing model dir, a bad option value) exits with code 2 and a message naming the file and line; an export
that fails its parity check exits with code 1 and the measured numbers.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cli.common import console, err_console
from cli.common import fail as _fail
from student.modelio import BATCH_SIZE_DEFAULT

app = typer.Typer(
    help="Distilled students: train from teacher labels, evaluate on gold, export to ONNX, score, benchmark.",
    no_args_is_help=True,
)


class SourceKind(StrEnum):
    auto = "auto"
    teacher = "teacher"
    gold = "gold"


class TargetKind(StrEnum):
    hard = "hard"
    soft = "soft"


class EvalVariant(StrEnum):
    torch = "torch"
    fp32 = "fp32"
    int8 = "int8"
    bf16 = "bf16"


class ScoreVariant(StrEnum):
    auto = "auto"
    bf16 = "bf16"
    int8 = "int8"
    fp32 = "fp32"


USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, KeyError)


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="teacher results JSONL, or gold pairs JSONL (meta.label)")],
    out: Annotated[Path, typer.Option(help="model dir to write (HF model + student.json)")],
    pairs: Annotated[Path | None, typer.Option(help="pairs JSONL joined to results on custom_id")] = None,
    source: Annotated[SourceKind, typer.Option(help="what DATA holds; auto looks at its first line")] = SourceKind.auto,
    dev: Annotated[Path | None, typer.Option(help="labelled dev file; default: a query-disjoint split")] = None,
    targets: Annotated[TargetKind, typer.Option(help="hard labels (CE) or vote distributions (KL)")] = TargetKind.hard,
    epochs: Annotated[
        float | None, typer.Option(min=0, help="default: as many as --min-steps steps need (1 to 10)")
    ] = None,
    min_steps: Annotated[int, typer.Option(min=1, help="optimizer steps the default epochs reach")] = 500,
    max_steps: Annotated[int, typer.Option(help="stop after this many steps (overrides epochs); -1: off")] = -1,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    lr: Annotated[float, typer.Option(min=0)] = 1e-4,
    label_smoothing: Annotated[float, typer.Option(min=0, max=0.99)] = 0.0,
    kd_temperature: Annotated[float, typer.Option(help="temperature of the soft-target KL")] = 1.0,
    alpha: Annotated[float, typer.Option(min=0, max=1, help="weight of hard CE mixed into the soft loss")] = 0.0,
    confidence_weighting: Annotated[bool, typer.Option(help="weight each pair by teacher confidence")] = False,
    min_confidence: Annotated[float, typer.Option(min=0, max=1, help="drop pairs below this confidence")] = 0.0,
    class_balance: Annotated[bool, typer.Option(help="weight classes equally in the loss (macro-F1's view)")] = True,
    select_best: Annotated[bool, typer.Option(help="keep the checkpoint with the best dev macro-F1")] = True,
    bf16: Annotated[bool, typer.Option(help="bf16 autocast (fast on CPUs with AMX)")] = False,
    max_length: Annotated[int, typer.Option(min=8)] = 128,
    dev_fraction: Annotated[float, typer.Option(min=0.001, max=0.999)] = 0.1,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[int, typer.Option(min=1, help="torch threads")] = 1,
    save_steps: Annotated[int, typer.Option(min=1)] = 500,
    keep_checkpoints: Annotated[bool, typer.Option(help="keep out/checkpoints after training")] = False,
    resume: Annotated[bool, typer.Option(help="resume from the last checkpoint in out/checkpoints")] = False,
    schema: Annotated[str, typer.Option(help="label schema")] = "esci",
    base_model: Annotated[
        str | None,
        typer.Option(
            help="base to fine-tune: a HF model dir or hub id (a Chinese BERT for zh), or a student trained before "
            "(two stages: the teacher's labels, then gold); default MiniLM"
        ),
    ] = None,
) -> None:
    """Distil a cross-encoder student (all-MiniLM-L6-v2 unless --base-model) from teacher or gold labels."""
    from experiments.kit import format_ndcg
    from student.data import DataError
    from student.train import TrainConfig, prepare_data
    from student.train import train as run_train

    config = TrainConfig(
        targets=targets.value,
        epochs=epochs,
        min_steps=min_steps,
        max_steps=max_steps,
        batch_size=batch_size,
        lr=lr,
        label_smoothing=label_smoothing,
        kd_temperature=kd_temperature,
        alpha=alpha,
        confidence_weighting=confidence_weighting,
        min_confidence=min_confidence,
        class_balance=class_balance,
        select_best=select_best,
        bf16=bf16,
        max_length=max_length,
        dev_fraction=dev_fraction,
        seed=seed,
        threads=threads,
        save_steps=save_steps,
        keep_checkpoints=keep_checkpoints,
        resume=resume,
        base_model=base_model,
    )
    try:
        config.validate()
        # Validate the data first: a bad line should cost seconds, not a model load.
        prepared = prepare_data(data, config, pairs=pairs, source=source.value, dev_path=dev, schema=schema)
    except (DataError, *USER_ERRORS) as exc:
        raise _fail(str(exc)) from None
    console.print(
        f"{len(prepared.train):,} train / {len(prepared.dev):,} dev pairs from {data} "
        f"({prepared.labelled.source}; skipped {prepared.dropped})"
    )
    result = run_train(data, out, config, schema=schema, prepared=prepared)
    metrics = result.meta["dev_metrics"]
    console.print(
        f"wrote {out}: dev macro-F1 {metrics['macro_f1']:.4f}, accuracy {metrics['accuracy']:.4f}, "
        f"NDCG@10 {format_ndcg(metrics['ndcg@10'], 4)}, temperature {result.meta['temperature']:.3f}, "
        f"{result.meta['training']['train_pairs_per_s']} train pairs/s"
    )


@app.command("eval")
def evaluate(
    model: Annotated[Path, typer.Argument(help="student model dir, or an export dir with --variant fp32/int8/bf16")],
    gold: Annotated[Path, typer.Option(help="gold pairs JSONL (meta.label), e.g. gold_test.jsonl")],
    dev: Annotated[Path | None, typer.Option(help="labelled dev file: fits the bi-encoder's label cut points")] = None,
    variant: Annotated[EvalVariant, typer.Option()] = EvalVariant.torch,
    out: Annotated[Path | None, typer.Option(help="report JSON (default: MODEL/eval.json)")] = None,
    png: Annotated[Path | None, typer.Option(help="confusion matrix PNG (default: next to the JSON)")] = None,
    baselines: Annotated[bool, typer.Option(help="majority class and zero-shot bi-encoder beside the student")] = True,
    batch_size: Annotated[int, typer.Option(min=1, help="pairs per forward pass")] = BATCH_SIZE_DEFAULT,
    threads: Annotated[int, typer.Option(min=1, help="torch threads")] = 1,
) -> None:
    """Evaluate a student on gold labels: macro-F1 (primary), accuracy, kappa, NDCG@10, AUC, ECE, baselines."""
    from student.data import DataError
    from student.evaluate import evaluate as run_eval
    from student.evaluate import render_table, save_confusion_png, write_report
    from student.modelio import set_threads

    set_threads(threads)
    try:
        report = run_eval(model, gold, variant=variant.value, dev_path=dev, baselines=baselines, batch_size=batch_size)
    except (DataError, *USER_ERRORS) as exc:
        raise _fail(str(exc)) from None
    out = out or model / "eval.json"
    png = png or out.with_suffix(".png")
    write_report(report, out)
    save_confusion_png(report["student"], png, f"student ({variant.value}) on {gold.name}")
    console.print(render_table(report))
    console.print(f"wrote {out} and {png}")


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="student model dir (from student train)")],
    out: Annotated[Path, typer.Option(help="export dir to write")],
    parity: Annotated[Path, typer.Option(help="pairs JSONL for the parity check (gold-test)")],
    fp32_atol: Annotated[float, typer.Option(help="max |p_onnx - p_torch| for fp32")] = 1e-3,
    int8_min_agreement: Annotated[float, typer.Option(help="min argmax agreement of int8 with torch")] = 0.99,
    int8_max_ndcg_delta: Annotated[float, typer.Option(help="max NDCG@10 change of int8 vs torch")] = 0.005,
    int8: Annotated[bool, typer.Option(help="also write the dynamic int8 model")] = True,
    drop_failed_int8: Annotated[
        bool, typer.Option(help="leave out an int8 model that fails its gate instead of refusing the export")
    ] = False,
    optimize: Annotated[bool, typer.Option(help="fuse attention, LayerNorm and GELU for onnxruntime")] = True,
    overwrite: Annotated[bool, typer.Option(help="replace an existing export dir")] = False,
    max_parity_pairs: Annotated[int | None, typer.Option(min=1)] = None,
    threads: Annotated[int, typer.Option(min=1, help="torch threads")] = 1,
) -> None:
    """Export to ONNX (fp32 + dynamic int8), refusing an export that fails its parity check against PyTorch."""
    from student.data import DataError
    from student.export import ExportError, ExportTolerances
    from student.export import export as run_export
    from student.modelio import set_threads

    set_threads(threads)
    tolerances = ExportTolerances(fp32_atol, int8_min_agreement, int8_max_ndcg_delta)
    try:
        result = run_export(
            model,
            out,
            parity,
            tolerances=tolerances,
            int8=int8,
            drop_failed_int8=drop_failed_int8,
            optimize=optimize,
            overwrite=overwrite,
            max_parity_pairs=max_parity_pairs,
        )
    except ExportError as exc:
        err_console.print_json(json.dumps(exc.report))
        raise _fail(str(exc), code=1) from None
    except (DataError, *USER_ERRORS) as exc:
        raise _fail(str(exc)) from None
    p = result["parity"]
    line = f"fp32 max |dp| {p['fp32_max_abs_prob_diff']:.2e}"
    if "int8_argmax_agreement" in p:
        line += f", int8 agreement {p['int8_argmax_agreement']:.4f}, int8 NDCG@10 change {p['int8_ndcg_delta']:.4f}"
    sizes = ", ".join(f"{v['file']} {v['bytes'] / 1e6:.1f} MB" for v in result["files"].values())
    console.print(f"wrote {out} ({sizes}); parity on {p['n']} pairs: {line}")


@app.command()
def score(
    file: Annotated[Path, typer.Argument(help="pairs JSONL")],
    model: Annotated[Path, typer.Option(help="export dir (from student export)")],
    out: Annotated[Path, typer.Option(help="scores JSONL to write")],
    variant: Annotated[
        ScoreVariant, typer.Option(help="auto: the fastest variant that passed its parity gate (what the API serves)")
    ] = ScoreVariant.auto,
    batch_size: Annotated[int, typer.Option(min=1, help="pairs per forward pass")] = BATCH_SIZE_DEFAULT,
) -> None:
    """Score pairs with an exported student: per-class probabilities, label, expected gain, model version."""
    import time

    from student.data import DataError, read_pairs
    from student.scorer import Scorer, pick_variant

    try:
        pairs = read_pairs(file)
        scorer = Scorer(model, pick_variant(model, variant.value), batch_size=batch_size)
    except (DataError, *USER_ERRORS) as exc:
        raise _fail(str(exc)) from None
    start = time.perf_counter()
    scores = scorer.score(pairs)
    seconds = time.perf_counter() - start
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for pair, s in zip(pairs, scores, strict=True):
            fh.write(json.dumps({"custom_id": pair.custom_id, **s.to_dict()}, separators=(",", ":")) + "\n")
    console.print(f"scored {len(pairs):,} pairs in {seconds:.2f}s ({len(pairs) / seconds:,.0f}/s) -> {out}")


@app.command()
def bench(
    export_dir: Annotated[Path, typer.Argument(help="export dir (from student export)")],
    pairs: Annotated[Path, typer.Option(help="pairs JSONL to score")],
    model: Annotated[Path | None, typer.Option(help="student model dir (default: the export's source)")] = None,
    n: Annotated[int, typer.Option(min=1, help="pairs to score")] = 512,
    batch_size: Annotated[int, typer.Option(min=1, help="pairs per forward pass")] = BATCH_SIZE_DEFAULT,
    repeats: Annotated[int, typer.Option(min=1)] = 3,
    threads: Annotated[int, typer.Option(min=1)] = 1,
    train_steps: Annotated[int, typer.Option(min=0, help="optimiser steps for training throughput; 0: skip")] = 5,
    out: Annotated[Path | None, typer.Option(help="result JSON (default: EXPORT_DIR/bench.json)")] = None,
) -> None:
    """Scoring pairs/s: ONNX int8 vs ONNX fp32 vs PyTorch eager vs CrossEncoder.predict; training pairs/s."""
    from experiments.bench.student import bench as run_bench
    from experiments.bench.student import render_table, write_result
    from student.data import DataError

    try:
        result = run_bench(
            export_dir,
            pairs,
            model_dir=model,
            n=n,
            batch_size=batch_size,
            repeats=repeats,
            threads=threads,
            train_steps=train_steps,
        )
    except (DataError, *USER_ERRORS) as exc:
        raise _fail(str(exc)) from None
    out = out or export_dir / "bench.json"
    write_result(result, out)
    console.print(render_table(result))
    served = result["served"]
    verdict = "met" if served["target_met"] else "NOT met"
    console.print(
        f"auto serves {served['variant']} here: {served['ratio_vs_onnx_fp32']:.2f}x ONNX fp32 "
        f"(target {served['target_vs_onnx_fp32']}x: {verdict})"
    )
    console.print(f"wrote {out}")


@app.command()
def study(
    config: Annotated[Path, typer.Option("--config", "-c", help="study YAML")] = Path("configs/student_study.yaml"),
    out: Annotated[Path, typer.Option(help="work dir (data, labels, students); present steps are reused")] = Path(
        "runs/student-study"
    ),
    report: Annotated[Path, typer.Option(help="markdown report (a .json beside it)")] = Path(
        "docs/results/student_quality.md"
    ),
) -> None:
    """Students from the SFT, GRPO and AGPO teachers' labels and from gold labels, several seeds, on gold-test."""
    from experiments.student_study import load_study_config, run_study, write_report
    from student.data import DataError

    try:
        settings = load_study_config(config)
        summary = run_study(settings, out, console.print)
    except (DataError, *USER_ERRORS) as exc:
        raise _fail(str(exc)) from None
    write_report(summary, report, _command_line())
    for name, row in summary["table"].items():
        f1 = row["macro_f1"]
        console.print(f"{name}: macro-F1 {f1['mean']:.3f} ± {f1['std']:.3f} (labels {row['label_macro_f1']:.3f})")
    console.print(f"wrote {report}")


@app.command("keep-labels")
def keep_labels_cmd(
    results: Annotated[Path, typer.Argument(help="teacher result lines (agpo annotate --out, agpo jobs results)")],
    out: Annotated[Path, typer.Option("--out", help="label file to write")],
    pairs: Annotated[Path | None, typer.Option(help="keep only the pairs of this pairs JSONL")] = None,
) -> None:
    """A label file from teacher results: labels, confidences and distributions, without the reasoning."""
    from student.data import DataError, keep_labels

    try:
        n = keep_labels(results, out, pairs)
    except (DataError, *USER_ERRORS) as exc:
        raise _fail(str(exc)) from None
    console.print(f"wrote {n:,} label lines to {out}")


def _command_line() -> str:
    """This invocation as a shell command (``agpo student ...``), for the report it writes."""
    import shlex
    import sys

    args = sys.argv[1:]
    if args[:1] != ["student"]:  # run as python -m cli.student
        args = ["student", *args]
    return shlex.join(["agpo", *args])


@app.command()
def curve(
    config: Annotated[Path, typer.Option("--config", "-c", help="curve YAML")] = Path("configs/student_curve.yaml"),
    out: Annotated[Path, typer.Option(help="work dir; finished points are reused")] = Path("runs/student-curve"),
    report: Annotated[Path, typer.Option(help="markdown report (a .json and a .png beside it)")] = Path(
        "docs/results/student_curve.md"
    ),
    dataset: Annotated[list[str] | None, typer.Option(help="run only these datasets of the config")] = None,
) -> None:
    """Learning curves: student macro-F1 on a test set against training pairs, beside zero-shot and majority."""
    from experiments.student_curve import check_files, load_curve_config, run_curve, select_datasets, write_report
    from student.data import DataError

    try:
        settings = select_datasets(load_curve_config(config), dataset)
        check_files(settings)
        summary = run_curve(settings, out, console.print)
    except (DataError, *USER_ERRORS) as exc:
        raise _fail(str(exc)) from None
    write_report(summary, report, _command_line())
    console.print(f"wrote {report}")


@app.command("zh-quality")
def zh_quality(
    config: Annotated[Path, typer.Option("--config", "-c", help="zh-quality YAML")] = Path("configs/zh_quality.yaml"),
    out: Annotated[Path, typer.Option(help="work dir; finished runs are reused")] = Path("runs/zh-quality"),
    report: Annotated[Path, typer.Option(help="markdown report (a .json and a .png beside it)")] = Path(
        "docs/results/zh_quality.md"
    ),
) -> None:
    """Chinese beside English on the same synthetic world: the teacher under esci-zh, MiniLM students, baselines."""
    from experiments.zh_quality import load_config, run, write_report
    from student.data import DataError

    try:
        results = run(load_config(config), out, console.print)
    except (DataError, *USER_ERRORS) as exc:
        raise _fail(str(exc)) from None
    write_report(results, report, _command_line())
    console.print(f"wrote {report}")


@app.command("value-chain")
def value_chain(
    config: Annotated[Path, typer.Option("--config", "-c", help="value-chain YAML")] = Path("configs/value_chain.yaml"),
    out: Annotated[Path, typer.Option(help="work dir; finished runs are reused")] = Path("runs/value-chain"),
    report: Annotated[Path, typer.Option(help="markdown report (a .json and a .png beside it)")] = Path(
        "docs/results/value_chain.md"
    ),
    seeds: Annotated[
        str | None, typer.Option(help="comma-separated seeds in place of the config's (e.g. 0 for a first look)")
    ] = None,
) -> None:
    """Students on scarce gold, on the teacher's labels of a pool, and on both, against zero-shot and the teacher."""
    from dataclasses import replace

    from experiments.value_chain import load_chain_config, run_chain, write_report
    from student.data import DataError

    try:
        cfg = load_chain_config(config)
        if seeds is not None:
            try:
                cfg = replace(cfg, seeds=tuple(int(x) for x in seeds.split(",") if x.strip()))
            except ValueError:
                raise _fail(f"--seeds {seeds!r}: expected comma-separated integers, e.g. 0,1,2") from None
            cfg.validate()
        summary = run_chain(cfg, out, console.print)
    except (DataError, *USER_ERRORS) as exc:
        raise _fail(str(exc)) from None
    write_report(summary, report, _command_line())
    console.print(f"wrote {report}")


@app.command()
def cascade(
    student: Annotated[Path, typer.Option(help="student model dir (agpo student train)", exists=True)],
    teacher_dev: Annotated[Path, typer.Option(help="the teacher's result lines for the dev pairs", exists=True)],
    dev: Annotated[Path, typer.Option(help="gold dev pairs (meta.label)", exists=True)] = Path(
        "runs/relevance/real/homedepot_dev.jsonl"
    ),
    test: Annotated[Path, typer.Option(help="gold test pairs (meta.label)", exists=True)] = Path(
        "runs/relevance/real/homedepot_test.jsonl"
    ),
    teacher_test: Annotated[Path, typer.Option(help="the teacher's result lines for the test pairs", exists=True)] = (
        Path("relevance/real_data/teacher_labels/homedepot_test.jsonl")
    ),
    targets: Annotated[str, typer.Option(help="agreements with the teacher to choose thresholds for, on dev")] = (
        "0.99,0.95,0.9,0.85,0.8"
    ),
    report: Annotated[Path, typer.Option(help="markdown report (a .json and a .png beside it)")] = Path(
        "docs/results/cascade_real.md"
    ),
) -> None:
    """Student-first labelling: how many teacher calls a student saves, and what it costs, on human labels."""
    from experiments.cascade import run_cascade, write_report
    from student.data import DataError

    try:
        goals = [float(x) for x in targets.split(",") if x.strip()]
    except ValueError:
        raise _fail(f"--targets {targets!r}: expected comma-separated shares, e.g. 0.95,0.9") from None
    if not goals or not all(0.0 <= g <= 1.0 for g in goals):
        raise _fail(f"--targets {targets!r}: each agreement target must be in [0, 1]")
    try:
        summary = run_cascade(student, dev, teacher_dev, test, teacher_test, goals, console.print)
    except (DataError, *USER_ERRORS) as exc:
        raise _fail(str(exc)) from None
    write_report(summary, report, _command_line())
    console.print(f"wrote {report}")
