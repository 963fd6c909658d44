"""``agpo journey``: the whole product on the embedded default, with a report."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import console
from cli.common import fail as _fail

if TYPE_CHECKING:
    from experiments.journey_data import DataSource

app = typer.Typer()


@app.command("journey")
def journey(
    out: Annotated[Path | None, typer.Option(help="report folder (default: runs/journey-<time>)")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="a small run (about 3 minutes on 2 cores)")] = False,
    data: Annotated[
        str,
        typer.Option(
            help="real: Home Depot pairs rated by people, labelled by the SmolLM2 teacher; synthetic: the "
            "synthetic benchmark, labelled by the tiny teacher"
        ),
    ] = "real",
    teacher: Annotated[
        Path | None, typer.Option(help="teacher model or adapter dir (default: the data's teacher)")
    ] = None,
    pool: Annotated[int | None, typer.Option(min=1, help="pairs the teacher labels through the service")] = None,
    seed: Annotated[int, typer.Option(help="data and training seed")] = 0,
    samples: Annotated[
        int | None, typer.Option(min=1, max=32, help="samples per pair for a sampling teacher (default: 2)")
    ] = None,
) -> None:
    """The whole product on the embedded default: the teacher labels pairs through the real service, a student
    learns from them, is judged on held-out human labels beside a zero-shot bi-encoder, exported and served; a
    report with plots lands in a folder named at the end."""
    from experiments.journey import DATA_SOURCES, JourneyConfig, run
    from experiments.kit import format_ndcg

    if data not in DATA_SOURCES:
        raise _fail(f"--data: {data!r} is not a data source; use one of {', '.join(DATA_SOURCES)}")
    out = out or Path("runs") / f"journey-{time.strftime('%Y%m%d-%H%M%S')}"
    options: dict[str, Any] = {"teacher": teacher, "seed": seed, "pool": pool}
    if samples is not None:
        options["samples"] = samples
    source = cast("DataSource", data)
    cfg = JourneyConfig.quick_run(out, source, **options) if quick else JourneyConfig(out, source, **options)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[extra]}"),
        TimeElapsedColumn(),
    )
    t0 = time.perf_counter()
    with Progress(*columns, console=console, disable=os.environ.get("AGPO_NO_PROGRESS") == "1") as progress:
        task = progress.add_task("teacher labelling", total=cfg.pool or 0, extra="")

        def on_progress(done: int, total: int, status: str) -> None:
            progress.update(task, completed=done, total=total, extra=status)

        try:
            summary = run(cfg, log=progress.console.print, progress=on_progress)
        except FileNotFoundError as exc:
            raise _fail(str(exc)) from None
    t, s = summary["teacher"], summary["student"]
    table = Table("", "macro-F1", "accuracy", "other", title=f"journey ({time.perf_counter() - t0:.0f} s)")
    table.add_row(
        "teacher (pool, via the service)",
        f"{t['macro_f1']:.3f}",
        f"{t['accuracy']:.3f}",
        f"unparseable {t['unparseable_rate']:.1%}, ECE {t['ece']:.3f}",
    )
    test = "Home Depot test" if summary["data"]["source"] == "real" else "gold-test"
    table.add_row(
        f"student ({test})",
        f"{s['macro_f1']:.3f}",
        f"{s['accuracy']:.3f}",
        f"kappa {s['cohen_kappa']:.3f}, NDCG@10 {format_ndcg(s['ndcg@10'])}",
    )
    if (tt := summary.get("teacher_test")) is not None:
        table.add_row(
            f"  teacher ({test})", f"{tt['macro_f1']:.3f}", f"{tt['accuracy']:.3f}", f"kappa {tt['cohen_kappa']:.3f}"
        )
    for name, b in summary["baselines"].items():
        table.add_row(
            f"  baseline: {name}",
            f"{b['macro_f1']:.3f}" if b["macro_f1"] is not None else "-",
            f"{b['accuracy']:.3f}" if b.get("accuracy") is not None else "",
            f"kappa {b['cohen_kappa']:.3f}" if b.get("cohen_kappa") is not None else "",
        )
    if (cascade := summary.get("cascade")) is not None:
        c = cascade["chosen_on_dev"][0]
        table.add_row(
            "  student-first (cascade)",
            f"{c['macro_f1']:.3f}",
            f"{c['accuracy']:.3f}",
            f"student labels {c['student_share']:.0%} at {c['target']:.0%} dev agreement with the teacher",
        )
    tp = summary["throughput"]
    table.add_row(
        "throughput",
        "",
        "",
        f"teacher {tp['teacher_pairs_per_s']:.1f} pairs/s; student "
        f"{tp['student_pairs_per_s']:.0f} pairs/s; /v1/score 1 pair p50 {summary['scoring']['p50_ms_1_pair']} ms",
    )
    console.print(table)
    console.print(f"report: [bold]{out / 'report.md'}[/bold]")
    if review := summary.get("review"):
        console.print(
            f"review the teacher's labels: [bold]{review['serve']}[/bold], then open [bold]{review['url']}[/bold] "
            f"(sign in with the key in {review['key_file']})"
        )
