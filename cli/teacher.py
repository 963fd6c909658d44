"""``agpo teacher ...``: build, evaluate and compare the embedded relevance teacher.

Mounted on the ``agpo`` command line as ``teacher``; every command also runs as
``python -m cli.teacher ...``.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from cli.common import console
from cli.common import fail as _fail

DEFAULT_MODEL = Path("models/relevance-teacher")
DEFAULT_COMPARE_CONFIG = Path("configs/teacher_compare.yaml")
DEFAULT_COMPARE_RUNS = Path("runs/teacher-compare")
DEFAULT_REPORT = Path("docs/results/teacher_quality.md")
app = typer.Typer(help="The relevance teacher: build it, evaluate it, compare RL methods.", no_args_is_help=True)


def _command_line() -> str:
    """The command as the user typed it, for model cards and reports."""
    args = sys.argv[1:]
    if args[:1] != ["teacher"]:  # run as python -m cli.teacher
        args = ["teacher", *args]
    return " ".join(["agpo", *map(shlex.quote, args)])


@app.command()
def build(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="recipe YAML (configs/teacher.yaml)")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="model directory to write")] = DEFAULT_MODEL,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="section.key=value, e.g. rl.steps=20 (repeatable)")
    ] = None,
    sft_out: Annotated[Path | None, typer.Option(help="also keep the SFT-only model here")] = None,
    work_dir: Annotated[Path | None, typer.Option(help="intermediate files (default: <out>.work)")] = None,
    skip_eval: Annotated[bool, typer.Option(help="skip the quick gold-test check")] = False,
    base: Annotated[
        str | None,
        typer.Option(help="a pretrained base to train a LoRA adapter on: smollm2-135m-instruct, a model dir or hub id"),
    ] = None,
) -> None:
    """Build the teacher: a LoRA adapter on a pretrained base (``--base``, configs/teacher_smollm2.yaml), or a
    small Qwen2 from nothing (configs/teacher.yaml): SFT on reasoning traces, then AGPO on the label reward."""
    from teacher.config import load_teacher_config

    recipe = load_teacher_config(config, [*(overrides or []), *([f"base={base}"] if base else [])])
    if recipe.base:
        _build_adapter(recipe, out, work_dir, skip_eval)
        return
    from teacher.build import build_teacher

    card = build_teacher(
        recipe,
        out,
        work_dir=work_dir,
        sft_out=sft_out,
        command=_command_line(),
        log=console.print,
        skip_eval=skip_eval,
    )
    table = Table(title=f"relevance teacher -> {out}")
    table.add_column("item")
    table.add_column("value", justify="right")
    table.add_row("parameters", f"{card['parameters']:,}")
    table.add_row("size on disk", f"{card['size_bytes'] / 2**20:.1f} MiB")
    table.add_row("tokens per prompt (mean)", str(card["tokens"]["prompt_mean"]))
    table.add_row("build time", f"{card['build_seconds'] / 60:.1f} min")
    quick = card["metrics"].get("gold_quick")
    if quick:
        head = quick["headline"]
        label = f"{quick['split']} ({quick['pairs']} pairs), majority of {quick['n']}"
        table.add_row(f"macro-F1, {label}", f"{head['macro_f1']:.3f}")
        table.add_row("unparseable rate", f"{head['unparseable_rate']:.2%}")
    console.print(table)


def _build_adapter(recipe: Any, out: Path, work_dir: Path | None, skip_eval: bool) -> None:
    from llm.bases import BaseNotFoundError
    from teacher.lora_build import build_lora_teacher

    try:
        card = build_lora_teacher(
            recipe, out, work_dir=work_dir, command=_command_line(), log=console.print, skip_eval=skip_eval
        )
    except (BaseNotFoundError, FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None
    table = Table(title=f"relevance teacher (LoRA on {recipe.base}) -> {out}")
    table.add_column("item")
    table.add_column("value", justify="right")
    table.add_row("adapter size", f"{card['adapter_size_bytes'] / 2**20:.1f} MiB")
    table.add_row(
        "SFT examples (real)", f"{card['metrics']['sft']['examples']} ({card['data'].get('real', {}).get('rows', 0)})"
    )
    table.add_row("build time", f"{card['build_seconds'] / 60:.1f} min")
    for name, check in card["metrics"].get("quick", {}).items():
        head = check["headline"]
        table.add_row(f"{name}: macro-F1 / kappa", f"{head['macro_f1']:.3f} / {head.get('cohen_kappa', 0):.3f}")
        table.add_row(f"{name}: unparseable", f"{head['unparseable_rate']:.2%}")
    console.print(table)


def _progress_bar(total: int, what: str) -> tuple[Progress | None, Any]:
    from teacher.evaluate import progress_enabled

    if not progress_enabled():
        return None, None
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    task = bar.add_task(what, total=total)
    return bar, lambda k: bar.advance(task, k)


def print_report(report: dict[str, Any], title: str) -> None:
    if "scored" in report:
        _print_scored(report, title)
        return
    table = Table(title=title)
    table.add_column("view")
    for column in ("accuracy", "macro-F1", "kappa", "ECE"):
        table.add_column(column, justify="right")
    one = report["single"]
    table.add_row("single sample", f"{one['accuracy']:.3f}", f"{one['macro_f1']:.3f}", f"{one['cohen_kappa']:.3f}", "")
    for key in sorted((k for k in report if k.startswith("majority@")), key=lambda k: int(k.split("@")[1])):
        m = report[key]
        row = (f"{m['accuracy']:.3f}", f"{m['macro_f1']:.3f}", f"{m['cohen_kappa']:.3f}", f"{m['ece']:.3f}")
        table.add_row(key.replace("majority@", "majority of "), *row)
    console.print(table)
    top = report[f"majority@{report['n']}"]
    tiers = ", ".join(f"{t} {a:.3f}" for t, a in top["per_difficulty_accuracy"].items())
    passk = ", ".join(f"pass@{k} {v:.3f}" for k, v in report["pass@k"].items())
    console.print(f"accuracy by difficulty (majority of {report['n']}): {tiers}")
    console.print(f"unparseable samples: {report['unparseable_rate']:.2%}; {passk}")


def _print_scored(report: dict[str, Any], title: str) -> None:
    table = Table(title=title)
    for column in ("accuracy", "macro-F1", "kappa", "ECE", "label mass"):
        table.add_column(column, justify="right")
    s = report["scored"]
    table.add_row(*(f"{s[k]:.3f}" for k in ("accuracy", "macro_f1", "cohen_kappa", "ece", "mean_label_mass")))
    console.print(table)
    if "agrees_with_answer" in report:
        console.print(
            f"written answers: {report['answer_unparseable_rate']:.2%} without a label; the scored label is the "
            f"written one for {report['agrees_with_answer']:.1%}"
        )


def _card_of(model: Path) -> dict[str, Any]:
    path = model / "model_card.json"
    return json.loads(path.read_text()) if path.is_file() else {}


@app.command("eval")
def eval_cmd(
    model: Annotated[Path, typer.Option("--model", "-m", help="HF model directory")],
    split: Annotated[str, typer.Option(help="teacher_train, dev or gold_test")] = "gold_test",
    pairs_file: Annotated[
        Path | None, typer.Option(help="gold pairs JSONL (meta.label) to evaluate on instead of a split")
    ] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="samples per pair")] = 8,
    pairs: Annotated[int | None, typer.Option(help="evaluate a seeded subset of this many pairs")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="read <split>.jsonl here (default: model card's data)")] = None,
    out: Annotated[Path | None, typer.Option(help="JSON report (runs/teacher-eval/<model>-<split>.json)")] = None,
    plot: Annotated[Path | None, typer.Option(help="confusion-matrix PNG (default: next to the JSON)")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="default: the model's generation config")] = None,
    temperature: Annotated[float, typer.Option()] = 1.0,
    batch_size: Annotated[int, typer.Option(help="sequences per generate call")] = 128,
    seed: Annotated[int, typer.Option()] = 0,
    template: Annotated[str | None, typer.Option(help="prompt template (default: the model card's)")] = None,
    dtype: Annotated[str | None, typer.Option(help="e.g. bfloat16 (default: the stored dtype)")] = None,
    method: Annotated[
        str,
        typer.Option(
            help="sample: --n answers, voted; score: one greedy answer, the labels' probabilities at its label line; "
            "overlap: rule-written overlap reasoning, the labels' probabilities after it (no generation)"
        ),
    ] = "sample",
    baselines_dev: Annotated[
        Path | None,
        typer.Option(help="labelled dev JSONL: also report the majority class and the zero-shot bi-encoder"),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(help="a labelling task (file, or a shipped one: esci-zh): its labels and prompt, not --template"),
    ] = None,
) -> None:
    """Accuracy, macro-F1, kappa, per-difficulty accuracy, unparseable rate, ECE at n = 1, 4, 8, pass@k.

    Temperature 0 is greedy decoding (one answer per pair, so use --n 1). --method score or overlap reads the
    label as probabilities (one answer per pair; --n and --temperature do not apply)."""
    from relevance.label_scores import LABEL_METHODS
    from teacher.build import quiet_libraries
    from teacher.data import labelled_records, split_records
    from teacher.evaluate import EvalSettings, evaluate_teacher, plot_confusion, write_report

    quiet_libraries()
    from llm.bases import is_model_dir

    if not is_model_dir(model):
        raise _fail(f"--model {model}: not a model directory (no config.json or adapter_config.json)")
    card = _card_of(model)
    if method not in LABEL_METHODS:
        raise _fail(f"--method {method}: not one of {', '.join(LABEL_METHODS)}")
    if method != "sample":
        n, temperature = 1, 0.0
    try:
        if pairs_file is not None:
            records = labelled_records(pairs_file, pairs=pairs, seed=seed)
            split = pairs_file.stem
        else:
            records = split_records(model, split, data_dir=data_dir, pairs=pairs, seed=seed)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    from cli.tasks import task_option

    chosen = task_option(task) if task else None
    settings = EvalSettings(
        n=n,
        max_new_tokens=max_new_tokens or _model_max_new_tokens(model),
        temperature=temperature,
        batch_size=batch_size,
        seed=seed,
        schema=chosen.schema if chosen else card.get("label_schema", "esci"),
        template=template or card.get("prompt_template", "compact"),
        task=chosen,
        dtype=dtype,
        method=method,
    )
    what = f"sampling {n} answers x" if method == "sample" else f"{method}: labelling"
    bar, advance = _progress_bar(len(records) * n, f"{what} {len(records)} pairs")
    if bar:
        with bar:
            report, _ = evaluate_teacher(model, records, settings, progress=advance)
    else:
        report, _ = evaluate_teacher(model, records, settings)
    report["split"] = split
    report["command"] = _command_line()
    if baselines_dev is not None:
        from experiments.real_baselines import real_baselines

        report["baselines"] = real_baselines(records, baselines_dev, settings.schema)
    json_path = out or Path("runs/teacher-eval") / f"{model.name}-{split}.json"
    write_report(report, json_path)
    png = plot or json_path.with_suffix(".png")
    view = f"majority of {n}" if method == "sample" else f"{method} method"
    plot_confusion(
        report,
        png,
        f"{model.name} on {split}: {view} ({len(records)} pairs)",
        key="scored" if "scored" in report else None,
    )
    print_report(
        report, f"{model} on {split} ({len(records)} pairs, {'n = ' + str(n) if method == 'sample' else method})"
    )
    for name, row in report.get("baselines", {}).items():
        if isinstance(row, dict):
            console.print(
                f"baseline {name}: macro-F1 {row['macro_f1']:.3f}, accuracy {row['accuracy']:.3f}, "
                f"kappa {row['cohen_kappa']:.3f}"
            )
    console.print(f"report: {json_path}; confusion matrix: {png}")


@app.command("label")
def label_cmd(
    pairs_file: Annotated[Path, typer.Argument(help="pairs JSONL (the job contract's pairs)", exists=True)],
    out: Annotated[Path, typer.Option("--out", help="result lines JSONL to write")],
    model: Annotated[Path, typer.Option("--model", "-m", help="teacher model dir")] = DEFAULT_MODEL,
    samples: Annotated[int, typer.Option(min=1, help="samples per pair (label method sample)")] = 2,
    temperature: Annotated[float, typer.Option(help="sampling temperature")] = 1.0,
    max_tokens: Annotated[int, typer.Option(help="answer length limit")] = 160,
    method: Annotated[str | None, typer.Option(help="sample, score or overlap (default: the model card's)")] = None,
    dtype: Annotated[str | None, typer.Option(help="e.g. bfloat16 (default: the stored dtype)")] = None,
) -> None:
    """Label a pairs file here, by the workers' code, without the service: result lines of the job contract."""
    from pipelines.label_file import label_file

    if method not in (None, "sample", "score", "overlap"):
        raise _fail(f"--method {method!r}: use sample, score or overlap")
    total = sum(1 for line in pairs_file.read_text(encoding="utf-8").splitlines() if line.strip())
    bar, advance = _progress_bar(total, f"labelling {pairs_file.name}")
    with bar or contextlib.nullcontext():
        try:
            done = label_file(
                pairs_file, str(model), out, samples=samples, temperature=temperature, max_tokens=max_tokens,
                method=method, dtype=dtype, on_batch=(lambda: advance(32)) if advance else None,  # type: ignore[arg-type]
            )  # fmt: skip
        except (OSError, ValueError) as exc:
            raise _fail(str(exc)) from None
    console.print(
        f"{done['labelled']:,} of {done['pairs']:,} pairs labelled ({done['method']}) in {done['seconds']} s: {out}"
    )


@app.command("prefix-effect")
def prefix_effect(
    base: Annotated[Path, typer.Option(help="the SFT base the models were trained from")],
    model: Annotated[list[str], typer.Option(help="LABEL=DIR of a trained model (repeatable)")],
    reference: Annotated[
        list[str] | None,
        typer.Option(help="a --model label: also give every shift minus this model's (repeatable; default: the first)"),
    ] = None,
    split: Annotated[str, typer.Option(help="teacher_train, dev or gold_test")] = "gold_test",
    pairs: Annotated[int, typer.Option(min=1, help="a seeded subset of this many pairs")] = 200,
    n: Annotated[int, typer.Option("--n", min=2, help="samples per pair from the base")] = 8,
    seed: Annotated[int, typer.Option()] = 0,
    out: Annotated[Path, typer.Option(help="JSON result; the bar plot goes beside it as .png")] = Path(
        "runs/teacher-prefix-effect.json"
    ),
) -> None:
    """How RL moved the log-probability of tokens a wrong answer shares with a right one (experiments.prefix_effect)."""
    from transformers import AutoTokenizer

    from experiments.prefix_effect import measure_and_report, models_to_compare
    from relevance.reward import RelevanceReward
    from rlvr.sampling import SamplingParams
    from teacher.build import quiet_libraries
    from teacher.data import label_of, split_records
    from teacher.evaluate import EvalSettings, chat_prompts

    quiet_libraries()
    try:
        models = models_to_compare(model, reference or ())
    except ValueError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e
    records = split_records(base, split, pairs=pairs, seed=seed)
    settings = EvalSettings()
    prompts = chat_prompts(AutoTokenizer.from_pretrained(base), records, settings.schema, settings.template)
    params = SamplingParams(n=n, max_new_tokens=_model_max_new_tokens(base), seed=seed)
    bar, advance = _progress_bar(len(records) * n, f"sampling {n} answers x {len(records)} pairs from the base")
    with bar or contextlib.nullcontext():
        measure_and_report(
            base,
            models,
            prompts,
            [label_of(r) for r in records],
            RelevanceReward(settings.schema),
            params,
            differences_from=reference or (),
            split=split,
            command=_command_line(),
            out=out,
            title=f"relevance teacher, {split}: {len(records)} pairs x {n} base samples",
            console=console,
            progress=advance,
        )


def _model_max_new_tokens(model: Path) -> int:
    path = model / "generation_config.json"
    if path.exists():
        value = json.loads(path.read_text()).get("max_new_tokens")
        if value:
            return int(value)
    return 128


@app.command()
def compare(
    config: Annotated[Path, typer.Option("--config", "-c", help="comparison YAML")] = DEFAULT_COMPARE_CONFIG,
    runs_dir: Annotated[Path, typer.Option(help="a directory per method/lr/seed; present runs are reused")] = (
        DEFAULT_COMPARE_RUNS
    ),
    report: Annotated[Path, typer.Option(help="markdown report")] = DEFAULT_REPORT,
    max_runs: Annotated[int | None, typer.Option(help="stop after this many new trainings (resume later)")] = None,
    seeds: Annotated[int | None, typer.Option(help="seeds per method (default: the config's)")] = None,
) -> None:
    """GRPO vs AGPO teachers from the same SFT base: lr picked on dev, then seeds evaluated on gold-test."""
    from experiments.teacher_compare import load_compare_config, run_comparison

    settings = load_compare_config(config)
    if seeds is not None:
        settings = settings.with_seeds(seeds)
    summary = run_comparison(
        settings, runs_dir, report, command=_command_line(), max_new_runs=max_runs, log=console.print
    )
    console.print(f"report: {report} ({summary['status']})")


if __name__ == "__main__":
    app()


@app.command("bench")
def bench_cmd(
    model: Annotated[Path, typer.Option("--model", "-m", help="teacher directory (full model or LoRA adapter)")],
    pairs_file: Annotated[
        Path, typer.Option(help="pairs JSONL to label (e.g. runs/relevance/real/homedepot_test.jsonl)")
    ],
    pairs: Annotated[int, typer.Option(min=4, help="a seeded subset of this many pairs")] = 128,
    dtypes: Annotated[str, typer.Option(help="comma-separated torch dtypes")] = "bfloat16,float32",
    samples: Annotated[str, typer.Option(help="comma-separated samples per pair (1 is greedy)")] = "1,4",
    methods: Annotated[
        str, typer.Option(help="comma-separated label methods that score labels: score, overlap (or empty)")
    ] = "score,overlap",
    batch_size: Annotated[int, typer.Option(help="sequences per generate call")] = 64,
    max_tokens: Annotated[int, typer.Option(help="answer token limit")] = 48,
    template: Annotated[str | None, typer.Option(help="prompt template (default: the model card's)")] = None,
    out: Annotated[Path | None, typer.Option(help="markdown report; the JSON goes next to it")] = None,
) -> None:
    """Labelling throughput (pairs/s at each sample count and dtype) against this CPU's measured compute limit."""
    from experiments.bench.teacher import bench_teacher, markdown
    from teacher.build import quiet_libraries
    from teacher.data import labelled_records

    quiet_libraries()
    try:
        records = labelled_records(pairs_file, pairs=pairs, seed=0)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    card = _card_of(model)
    with console.status(f"labelling {len(records)} pairs per setting..."):
        report = bench_teacher(
            model,
            records,
            template=template or card.get("prompt_template", "compact"),
            schema=card.get("label_schema", "esci"),
            dtypes=[d.strip() for d in dtypes.split(",") if d.strip()],
            samples=[int(k) for k in samples.split(",")],
            methods=[m.strip() for m in methods.split(",") if m.strip()],
            batch_size=batch_size,
            max_tokens=max_tokens,
        )
    text = markdown(report, _command_line())
    console.print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        out.with_suffix(".json").write_text(json.dumps({**report, "command": _command_line()}, indent=1))
        console.print(f"wrote {out} and {out.with_suffix('.json')}")
