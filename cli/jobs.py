"""Job commands against a running API: ``agpo annotate FILE`` and ``agpo jobs list|get|cancel|results|errors|
export``."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from cli.common import console
from cli.common import fail as _fail

app = typer.Typer()
jobs_app = typer.Typer(help="Annotation jobs on a running API.", no_args_is_help=True)

Url = Annotated[str, typer.Option("--url", envvar="AGPO_API_URL", help="annotation API base URL")]
Key = Annotated[str | None, typer.Option("--key", envvar="AGPO_API_KEY", help="API key (Bearer)")]
DEFAULT_URL = "http://127.0.0.1:8000"


def follow(client, job_id: str, total: int, poll: float = 1.0) -> dict:  # type: ignore[no-untyped-def]
    """Poll a job until it ends, with a progress bar; returns the final job."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[extra]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=os.environ.get("AGPO_NO_PROGRESS") == "1") as progress:
        task = progress.add_task(job_id, total=total, extra="")
        while True:
            job = client.get_job(job_id)
            c = job["request_counts"]
            progress.update(
                task,
                completed=c["completed"] + c["failed"] + c["cancelled"],
                extra=f"{job['status']} failed={c['failed']} cached={c['cached']}",
            )
            if job["status"] in ("completed", "failed", "cancelled"):
                return job
            time.sleep(poll)


@app.command("annotate")
def annotate(
    file: Annotated[Path, typer.Argument(help="pairs JSONL", exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", help="results JSONL to write")],
    url: Url = DEFAULT_URL,
    key: Key = None,
    samples: Annotated[int | None, typer.Option(help="samples per pair")] = None,
    seed: Annotated[int | None, typer.Option(help="sampling seed")] = None,
    label_method: Annotated[
        str | None, typer.Option(help="sample, score or overlap (default: the server's AGPO_LABEL_METHOD)")
    ] = None,
    task: Annotated[str | None, typer.Option(help="a labelling task, name or name@version (`agpo tasks list`)")] = None,
) -> None:
    """Submit FILE as a job, follow it with a progress bar, and write its results to --out."""
    from services.client import AnnotationAPIError, AnnotationClient

    with AnnotationClient(url, key) as client:
        try:
            job = client.create_job_jsonl(
                file,
                idempotency_key=f"cli-{uuid.uuid4().hex}",
                samples=samples,
                seed=seed,
                label_method=label_method,
                task=task,
            )
        except AnnotationAPIError as exc:
            raise _fail(str(exc)) from None
        except OSError as exc:
            raise _fail(f"cannot reach the API at {url}: {exc} (start it with `agpo serve api`)") from None
        c = job["request_counts"]
        if c["rejected_lines"]:
            console.print(f"[yellow]{c['rejected_lines']} lines rejected[/yellow] (see `agpo jobs errors {job['id']}`)")
        job = follow(client, job["id"], c["total"])
        n = client.download_results(job["id"], out)
    c = job["request_counts"]
    console.print(
        f"job {job['id']} {job['status']}: {c['completed']} labelled ({c['cached']} from cache), "
        f"{c['failed']} failed; {n} lines written to {out}"
    )


@jobs_app.command("list")
def jobs_list(url: Url = DEFAULT_URL, key: Key = None, limit: int = 20) -> None:
    from services.client import AnnotationClient

    with AnnotationClient(url, key) as client:
        rows = client.list_jobs(limit)
    table = Table("id", "status", "total", "completed", "failed", "cached", "created")
    for j in rows:
        c = j["request_counts"]
        table.add_row(
            j["id"],
            j["status"],
            str(c["total"]),
            str(c["completed"]),
            str(c["failed"]),
            str(c["cached"]),
            j["created_at"][:19],
        )
    console.print(table)


def _on_job(url: str, key: str | None, action):  # type: ignore[no-untyped-def]
    """Run ``action(client)`` against the API; an API error becomes a CLI error with its message."""
    import httpx

    from services.client import AnnotationAPIError, AnnotationClient

    with AnnotationClient(url, key) as client:
        try:
            return action(client)
        except AnnotationAPIError as exc:
            raise _fail(str(exc)) from None
        except httpx.TransportError as exc:
            raise _fail(f"cannot reach the API at {url}: {exc} (start it with `agpo serve api`)") from None


@jobs_app.command("get")
def jobs_get(job_id: str, url: Url = DEFAULT_URL, key: Key = None) -> None:
    console.print_json(json.dumps(_on_job(url, key, lambda c: c.get_job(job_id))))


@jobs_app.command("cancel")
def jobs_cancel(job_id: str, url: Url = DEFAULT_URL, key: Key = None) -> None:
    job = _on_job(url, key, lambda c: c.cancel(job_id))
    console.print(f"job {job_id}: {job['status']}")


@jobs_app.command("results")
def jobs_results(
    job_id: str, out: Annotated[Path, typer.Option("--out")], url: Url = DEFAULT_URL, key: Key = None
) -> None:
    n = _on_job(url, key, lambda c: c.download_results(job_id, out))
    console.print(f"{n} result lines written to {out}")


@jobs_app.command("export")
def jobs_export(
    job_id: str,
    out: Annotated[Path, typer.Option("--out", help="a .parquet file, or a directory for --format hf")],
    fmt: Annotated[str, typer.Option("--format", help="parquet, or hf (a datasets directory: load_from_disk)")] = (
        "parquet"
    ),
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Results joined with their pairs, one row per pair; the teacher and prompt version in the metadata."""
    from cli.export import FORMATS, write_export

    if fmt not in FORMATS:
        raise _fail(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")

    def run(client) -> int:  # type: ignore[no-untyped-def]
        job = client.get_job(job_id)
        return write_export(client.iter_results(job_id, include_pair=True), job, out, fmt)  # type: ignore[arg-type]

    try:
        n = _on_job(url, key, run)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(f"{n} rows written to {out} ({fmt})")


@jobs_app.command("errors")
def jobs_errors(
    job_id: str, out: Annotated[Path, typer.Option("--out")], url: Url = DEFAULT_URL, key: Key = None
) -> None:
    n = _on_job(url, key, lambda c: c.download_errors(job_id, out))
    console.print(f"{n} error lines written to {out}")
