"""Review commands against a running API: ``agpo review export|queue|import|agreement``. Reviewing itself happens
on the API's page, ``/review?job=ID``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import call_api, console
from cli.common import fail as _fail
from cli.jobs import DEFAULT_URL, Key, Url

review_app = typer.Typer(help="Human review of a job's labels (the page: /review on the API).", no_args_is_help=True)
Job = Annotated[str, typer.Argument(help="job id")]
Format = Annotated[str, typer.Option("--format", help="argilla or label-studio")]


@review_app.command("export")
def export_gold(
    job: Job,
    out: Annotated[Path, typer.Option("--out", help="file to write (.jsonl or .parquet)")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl (pairs with meta.label) or parquet")] = "jsonl",
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """The job's reviewed pairs as gold: the reviewers' consensus in meta.label (for `agpo student train`)."""
    if fmt not in ("jsonl", "parquet"):
        raise _fail(f"--format {fmt!r}: use jsonl or parquet")
    r = call_api("GET", url, f"/v1/jobs/{job}/gold", key, params={"format": fmt})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(r.content)
    rows = len(r.text.splitlines()) if fmt == "jsonl" else None
    console.print(f"wrote {out}" + (f" ({rows} reviewed pairs)" if rows is not None else ""))


@review_app.command("queue")
def export_queue(
    job: Job,
    fmt: Format,
    out: Annotated[Path, typer.Option("--out", help="JSON file of records (Argilla) or tasks (Label Studio)")],
    limit: Annotated[int, typer.Option(help="most uncertain pairs to export")] = 1000,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """The review queue, most uncertain first, for Argilla or Label Studio; its settings / labelling config beside."""
    if fmt not in ("argilla", "label-studio"):
        raise _fail(f"--format {fmt!r}: use argilla or label-studio")
    body = call_api("GET", url, f"/v1/jobs/{job}/review-export", key, params={"format": fmt, "limit": limit}).json()
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "argilla":
        out.write_text(json.dumps(body["records"], ensure_ascii=False, indent=1), encoding="utf-8")
        extra = out.with_suffix(".settings.json")
        extra.write_text(json.dumps(body["settings"], indent=1), encoding="utf-8")
    else:
        out.write_text(json.dumps(body["tasks"], ensure_ascii=False, indent=1), encoding="utf-8")
        extra = out.with_suffix(".config.xml")
        extra.write_text(body["label_config"], encoding="utf-8")
    console.print(f"wrote {out} and {extra}")


@review_app.command("import")
def import_annotations(
    job: Job,
    file: Annotated[Path, typer.Argument(help="Argilla records or a Label Studio JSON export", exists=True)],
    fmt: Format,
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Annotations made in Argilla or Label Studio, stored as reviews (reviewer argilla:<user> / label-studio:<id>)."""
    if fmt not in ("argilla", "label-studio"):
        raise _fail(f"--format {fmt!r}: use argilla or label-studio")
    r = call_api("POST", url, f"/v1/jobs/{job}/review-import", key, params={"format": fmt}, content=file.read_bytes())
    body = r.json()
    console.print(f"{body['created']} new reviews, {body['updated']} updated")


@review_app.command("agreement")
def agreement(job: Job, url: Url = DEFAULT_URL, key: Key = None) -> None:
    """Teacher-vs-human and human-vs-human kappa, and the teacher's accuracy by confidence band."""
    a = call_api("GET", url, f"/v1/jobs/{job}/agreement", key).json()
    tvh, hvh = a["teacher_vs_human"], a["human_vs_human"]
    console.print(
        f"{a['pairs_reviewed']} pairs reviewed by {len(a['reviewers'])} reviewers; "
        f"teacher vs human: kappa {tvh['kappa']}, agreement {tvh['agreement']} (n={tvh['n']}); "
        f"human vs human: kappa {hvh['kappa']} (n={hvh['n']})"
    )
    table = Table("teacher confidence", "pairs", "teacher accuracy", "mean confidence")
    for band in a["reliability"]:
        table.add_row(band["band"], str(band["n"]), str(band["accuracy"]), str(band["mean_confidence"]))
    console.print(table)
