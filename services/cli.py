"""The ``agpo`` command: the algorithm's commands (``agpo.cli``) plus the service, teacher and student ones.

Every long-running service starts as a plain process here (the same commands docker-compose runs):
``agpo serve api``, ``agpo serve teacher``, ``agpo worker``, ``agpo beat``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from agpo.cli import app

console = Console()

serve_app = typer.Typer(help="Run the HTTP services.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (one tenant each; stored hashed).", no_args_is_help=True)
jobs_app = typer.Typer(help="Annotation jobs on a running API.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema (alembic).", no_args_is_help=True)
app.add_typer(serve_app, name="serve")
app.add_typer(keys_app, name="keys")
app.add_typer(jobs_app, name="jobs")
app.add_typer(db_app, name="db")

Url = Annotated[str, typer.Option("--url", envvar="AGPO_API_URL", help="annotation API base URL")]
Key = Annotated[str | None, typer.Option("--key", envvar="AGPO_API_KEY", help="API key (Bearer)")]
DEFAULT_URL = "http://127.0.0.1:8000"


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


@serve_app.command("api")
def serve_api(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """The annotation API (settings from AGPO_* environment variables)."""
    import uvicorn

    uvicorn.run("services.api:create_app", factory=True, host=host, port=port, workers=workers, log_level="info")


@serve_app.command("teacher")
def serve_teacher(
    model: Annotated[str | None, typer.Option(help="model dir (default: AGPO_TEACHER_MODEL)")] = None,
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8001,
) -> None:
    """An OpenAI-compatible server over the transformers backend (what `vllm serve` is on GPU)."""
    import uvicorn

    if model:
        os.environ["AGPO_TEACHER_MODEL"] = model
    uvicorn.run("services.teacher_server:app_from_env", factory=True, host=host, port=port, log_level="info")


@app.command("worker")
def worker(
    beat: Annotated[bool, typer.Option("--beat", help="also run the stale-chunk sweep in this process")] = False,
    loglevel: Annotated[str, typer.Option(help="celery log level")] = "info",
    name: Annotated[str | None, typer.Option(help="node name (NAME@host); default: a random one")] = None,
) -> None:
    """A Celery worker: one chunk at a time, the teacher loaded once per process."""
    from pipelines.db.session import migrate
    from pipelines.settings import get_settings
    from pipelines.worker import QUEUE
    from pipelines.worker import app as celery_app

    migrate(get_settings().database_url)
    argv = [
        "worker",
        "--pool",
        "solo",
        "--concurrency",
        "1",
        "-Q",
        QUEUE,
        f"--loglevel={loglevel}",
        "--hostname",
        f"{name or 'agpo-' + uuid.uuid4().hex[:8]}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    if beat:
        argv += ["--beat", "--schedule", str(_beat_schedule())]
    celery_app.worker_main(argv)


def _beat_schedule() -> Path:
    # Beat's state file goes out of the working directory (a checkout, a container's read-only /app).
    return Path(os.environ.get("AGPO_BEAT_SCHEDULE", "/tmp/agpo-beat-schedule"))


@app.command("beat")
def beat(loglevel: Annotated[str, typer.Option(help="celery log level")] = "info") -> None:
    """The periodic sweep that re-sends chunks whose lease expired or whose message was lost."""
    from pipelines.worker import app as celery_app

    celery_app.start(["beat", f"--loglevel={loglevel}", "--schedule", str(_beat_schedule())])


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Apply migrations to AGPO_DATABASE_URL."""
    from pipelines.db.session import migrate
    from pipelines.settings import get_settings

    url = get_settings().database_url
    migrate(url, revision)
    console.print(f"database at {url.split('@')[-1]} is at {revision}")


def _session():  # type: ignore[no-untyped-def]
    from pipelines.db.session import migrate, session_scope
    from pipelines.settings import get_settings

    url = get_settings().database_url
    migrate(url)
    return session_scope(url)


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="the tenant this key acts for")],
    name: Annotated[str, typer.Option(help="a note to recognise the key by")] = "",
) -> None:
    """Create a key; it is shown once."""
    from pipelines.keys import create_key

    try:
        with _session() as s:
            key, info = create_key(s, tenant, name)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(f"key id {info.id} for tenant {info.tenant!r} (store it now; it is not shown again):")
    print(key)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="id from `agpo keys list`")]) -> None:
    from pipelines.keys import revoke_key

    with _session() as s:
        if not revoke_key(s, key_id):
            raise _fail(f"no active key with id {key_id}")
    console.print(f"revoked key {key_id}")


@keys_app.command("list")
def keys_list(tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None) -> None:
    from pipelines.keys import list_keys

    with _session() as s:
        rows = list_keys(s, tenant)
    table = Table("id", "tenant", "name", "prefix", "created", "revoked")
    for k in rows:
        table.add_row(
            str(k.id),
            k.tenant,
            k.name,
            k.prefix + "...",
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
        )
    console.print(table)


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
) -> None:
    """Submit FILE as a job, follow it with a progress bar, and write its results to --out."""
    from services.client import AnnotationClient, APIError

    with AnnotationClient(url, key) as client:
        try:
            job = client.create_job_jsonl(file, idempotency_key=f"cli-{uuid.uuid4().hex}", samples=samples, seed=seed)
        except APIError as exc:
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

    from services.client import AnnotationClient, APIError

    with AnnotationClient(url, key) as client:
        try:
            return action(client)
        except APIError as exc:
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


@jobs_app.command("errors")
def jobs_errors(
    job_id: str, out: Annotated[Path, typer.Option("--out")], url: Url = DEFAULT_URL, key: Key = None
) -> None:
    n = _on_job(url, key, lambda c: c.download_errors(job_id, out))
    console.print(f"{n} error lines written to {out}")


def _mount_optional() -> None:
    """The teacher and student command groups, when their packages are present."""
    import importlib

    for name, module in (("teacher", "pipelines.teacher_cli"), ("student", "student.cli")):
        try:
            sub = importlib.import_module(module).app
        except ModuleNotFoundError:
            continue
        app.add_typer(sub, name=name)


_mount_optional()


@app.command("bench-service")
def bench_service(
    teacher: Annotated[Path, typer.Option(help="teacher model dir")] = Path("models/relevance-teacher"),
    pg: Annotated[str, typer.Option(help="PostgreSQL admin URL (a temporary database is created)")] = (
        "postgresql://postgres@127.0.0.1:5432/test"
    ),
    broker: Annotated[str, typer.Option(help="Redis URL for the Celery run")] = "redis://127.0.0.1:6379/15",
    pipeline_pairs: Annotated[int, typer.Option(help="pairs in the pipeline run")] = 600,
    ingest_pairs: Annotated[int, typer.Option(help="pairs in the ingestion run")] = 100_000,
    samples: Annotated[int, typer.Option(help="teacher samples per pair")] = 1,
    max_tokens: Annotated[int, typer.Option(help="teacher max tokens")] = 96,
    clients: Annotated[int, typer.Option(help="concurrent status readers")] = 50,
    out: Annotated[Path | None, typer.Option(help="write the figures as JSON here")] = None,
    only: Annotated[str, typer.Option(help="comma list of pipeline,ingestion,status,score")] = (
        "pipeline,ingestion,status,score"
    ),
    student: Annotated[
        Path | None, typer.Option(help="student export dir (agpo student export) for the /v1/score part")
    ] = None,
    score_clients: Annotated[int, typer.Option(help="concurrent /v1/score clients")] = 8,
) -> None:
    """Service benchmarks: pipeline overhead, ingestion vs COPY, status-read latency (see services/bench.py)."""
    import tempfile

    from relevance.synthetic.generator import generate_benchmark
    from services import bench

    parts = set(only.split(","))
    work = Path(tempfile.mkdtemp(prefix="agpo-bench-"))
    generate_benchmark(
        work / "data", seed=11, teacher_train=0, dev=0, gold_test=0, pool=max(ingest_pairs, pipeline_pairs)
    )
    pool = [json.loads(x) for x in (work / "data" / "pool.jsonl").read_text().splitlines()]
    report: dict[str, object] = {}
    if not (teacher / "config.json").exists():
        raise _fail(f"--teacher {teacher}: no model there (agpo teacher build)")
    idle = broker.rsplit("/", 1)[0] + "/14"  # a queue no worker reads
    if "pipeline" in parts:
        with console.status("pipeline: direct backend vs API + Celery + DB..."), bench.temp_database(pg) as db:
            report["pipeline"] = bench.bench_pipeline(
                pool[:pipeline_pairs],
                str(teacher),
                db,
                broker,
                samples=samples,
                max_tokens=max_tokens,
                chunk_size=128,
                batch_size=32,
                logdir=work,
            )
        console.print(report["pipeline"])
    if "ingestion" in parts:
        with console.status("ingestion: JSONL upload vs COPY..."), bench.temp_database(pg) as db:
            report["ingestion"] = bench.bench_ingestion(pool[:ingest_pairs], db, str(teacher), idle, logdir=work)
        console.print(report["ingestion"])
    if "status" in parts:
        with console.status(f"status reads: {clients} clients..."), bench.temp_database(pg) as db:
            report["status_reads"] = bench.bench_status_reads(
                db, pool, str(teacher), idle, clients=clients, seconds=10, logdir=work
            )
        console.print(report["status_reads"])
    if "score" in parts and student is None:
        console.print("score: not run (give --student with an `agpo student export` dir)")
    elif "score" in parts:
        with console.status(f"/v1/score: {score_clients} clients..."), bench.temp_database(pg) as db:
            report["score"] = bench.bench_score(
                str(student), pool, db, str(teacher), idle, clients=score_clients, seconds=10, logdir=work
            )
        console.print(report["score"])
    report["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
        console.print(f"wrote {out}")


@app.command("journey")
def journey(
    out: Annotated[Path | None, typer.Option(help="report folder (default: runs/journey-<time>)")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="a small run (about 3 minutes on 2 cores)")] = False,
    teacher: Annotated[Path, typer.Option(help="teacher model dir")] = Path("models/relevance-teacher"),
    seed: Annotated[int, typer.Option(help="benchmark and training seed")] = 0,
) -> None:
    """The whole product on the embedded default: the AGPO teacher labels pairs through the real service, a
    student learns from them, is exported and served; a report with plots lands in a folder named at the end."""
    from services.journey import JourneyConfig, run

    out = out or Path("runs") / f"journey-{time.strftime('%Y%m%d-%H%M%S')}"
    cfg = (
        JourneyConfig.quick(out, teacher=teacher, seed=seed)
        if quick
        else JourneyConfig(out, teacher=teacher, seed=seed)
    )
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[extra]}"),
        TimeElapsedColumn(),
    )
    t0 = time.perf_counter()
    with Progress(*columns, console=console, disable=os.environ.get("AGPO_NO_PROGRESS") == "1") as progress:
        task = progress.add_task("teacher labelling", total=cfg.pool, extra="")

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
    table.add_row("student (gold-test)", f"{s['macro_f1']:.3f}", f"{s['accuracy']:.3f}", f"NDCG@10 {s['ndcg@10']:.3f}")
    for name, b in summary["baselines"].items():
        table.add_row(
            f"  baseline: {name}",
            f"{b['macro_f1']:.3f}" if b["macro_f1"] is not None else "-",
            "",
            f"NDCG@10 {b['ndcg@10']:.3f}" if b["ndcg@10"] is not None else "",
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
