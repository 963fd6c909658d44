"""Service commands: run the API, the teacher server, Celery workers and beat; migrations; API keys; the bench.

Every long-running service starts as a plain process here (the same commands docker-compose runs):
``agpo serve api``, ``agpo serve teacher``, ``agpo worker``, ``agpo beat``.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import console
from cli.common import fail as _fail

app = typer.Typer()
serve_app = typer.Typer(help="Run the HTTP services.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (one tenant each; stored hashed).", no_args_is_help=True)
db_app = typer.Typer(help="The database schema (alembic).", no_args_is_help=True)


@serve_app.command("api")
def serve_api(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """The annotation API (settings from AGPO_* environment variables)."""
    import uvicorn

    from pipelines.logs import configure_logging
    from pipelines.settings import get_settings

    configure_logging(get_settings().log_format)
    # log_config=None: uvicorn's own lines go through the same handler, in the same format.
    uvicorn.run("services.api:create_app", factory=True, host=host, port=port, workers=workers, log_config=None)


@serve_app.command("teacher")
def serve_teacher(
    model: Annotated[str | None, typer.Option(help="model dir (default: AGPO_TEACHER_MODEL)")] = None,
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8001,
    api_key: Annotated[
        str | None, typer.Option(help="bearer key clients must send (default: AGPO_TEACHER_API_KEY; none: open)")
    ] = None,
) -> None:
    """An OpenAI-compatible server over the transformers backend (what `vllm serve` is on GPU)."""
    import uvicorn

    if model:
        os.environ["AGPO_TEACHER_MODEL"] = model
    if api_key:
        os.environ["AGPO_TEACHER_API_KEY"] = api_key
    uvicorn.run("services.teacher_server:app_from_env", factory=True, host=host, port=port, log_level="info")


@app.command("worker")
def worker(
    beat: Annotated[bool, typer.Option("--beat", help="also run the stale-chunk sweep in this process")] = False,
    loglevel: Annotated[str, typer.Option(help="celery log level")] = "info",
    name: Annotated[str | None, typer.Option(help="node name (NAME@host); default: a random one")] = None,
) -> None:
    """A Celery worker: one chunk at a time, the teacher loaded once per process."""
    from pipelines.celery_app import QUEUE, make_celery
    from pipelines.db.session import migrate
    from pipelines.logs import configure_logging
    from pipelines.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_format)
    # Before the teacher's threads exist: Linux keeps niceness per thread, and new threads inherit it.
    lower_priority(settings.worker_nice)
    migrate(settings.database_url)
    celery_app = make_celery(settings)
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


def lower_priority(nice: int) -> int:
    """Raise this process's niceness to at least ``nice`` (never lower it: that needs privileges); the result."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if nice > current:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    return os.getpriority(os.PRIO_PROCESS, 0)


def _beat_schedule() -> Path:
    # Beat's state file goes out of the working directory (a checkout, a container's read-only /app).
    return Path(os.environ.get("AGPO_BEAT_SCHEDULE", "/tmp/agpo-beat-schedule"))


@app.command("beat")
def beat(loglevel: Annotated[str, typer.Option(help="celery log level")] = "info") -> None:
    """The periodic sweep that re-sends chunks whose lease expired or whose message was lost."""
    from pipelines.celery_app import make_celery
    from pipelines.settings import get_settings

    make_celery(get_settings()).start(["beat", f"--loglevel={loglevel}", "--schedule", str(_beat_schedule())])


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
    name: Annotated[str, typer.Option(help="a note to recognise the key by; a reviewer's name for reviewer keys")] = "",
    role: Annotated[
        str, typer.Option(help="client (runs jobs and reviews) or reviewer (only reviews, at /review)")
    ] = "client",
) -> None:
    """Create a key; it is shown once."""
    from pipelines.keys import create_key

    try:
        with _session() as s:
            key, info = create_key(s, tenant, name, role)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(f"{info.role} key id {info.id} for tenant {info.tenant!r} (store it now; it is not shown again):")
    print(key)


@keys_app.command("webhook-secret")
def keys_webhook_secret(
    tenant: Annotated[str, typer.Option(help="the tenant whose job webhooks it signs")],
    rotate: Annotated[bool, typer.Option(help="replace the tenant's secret with a new one")] = False,
) -> None:
    """The tenant's Standard Webhooks secret (made on first use): its receivers verify job webhooks with it."""
    from pipelines.webhooks import tenant_secret

    with _session() as s:
        secret = tenant_secret(s, tenant, rotate=rotate)
    console.print(f"webhook secret of tenant {tenant!r} (verify with the standardwebhooks library):")
    print(secret)


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
    table = Table("id", "tenant", "name", "role", "prefix", "created", "revoked")
    for k in rows:
        table.add_row(
            str(k.id),
            k.tenant,
            k.name,
            k.role,
            k.prefix + "...",
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
        )
    console.print(table)


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
    clients: Annotated[int, typer.Option(help="status readers, each polling a job every --poll-interval s")] = 50,
    poll_interval: Annotated[float, typer.Option(help="seconds between one status reader's polls")] = 0.5,
    worker_nice: Annotated[
        int | None, typer.Option(help="the status part's worker niceness (default: AGPO_WORKER_NICE's default, 10)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="write the figures as JSON here")] = None,
    only: Annotated[str, typer.Option(help="comma list of pipeline,ingestion,status,score,fairness")] = (
        "pipeline,ingestion,status,score,fairness"
    ),
    student: Annotated[
        Path | None, typer.Option(help="student export dir (agpo student export) for the /v1/score part")
    ] = None,
    score_clients: Annotated[int, typer.Option(help="concurrent /v1/score clients")] = 8,
    score_threads: Annotated[int, typer.Option(help="the student engine's threads (AGPO_SCORE_THREADS)")] = 1,
    score_pairs: Annotated[
        Path | None,
        typer.Option(help="pairs JSONL the /v1/score part sends (default: the synthetic pool, long descriptions)"),
    ] = None,
) -> None:
    """Service benchmarks: pipeline overhead, ingestion vs COPY, status-read latency (experiments/bench/service.py)."""
    import tempfile

    from experiments.bench import service as bench
    from relevance.synthetic.generator import generate_benchmark

    parts = set(only.split(","))
    work = Path(tempfile.mkdtemp(prefix="agpo-bench-"))
    generate_benchmark(
        work / "data", seed=11, teacher_train=0, dev=0, gold_test=0, pool=max(ingest_pairs, pipeline_pairs)
    )
    pool = [json.loads(x) for x in (work / "data" / "pool.jsonl").read_text().splitlines()]
    report: dict[str, object] = {}
    from llm.bases import is_model_dir

    if not is_model_dir(teacher):
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
        with console.status(f"status reads: {clients} readers..."), bench.temp_database(pg) as db:
            report["status_reads"] = bench.bench_status_reads(
                db,
                pool,
                str(teacher),
                broker,
                readers=clients,
                interval=poll_interval,
                seconds=15,
                busy_pairs=3000,
                logdir=work,
                worker_nice=worker_nice,
            )
        console.print(report["status_reads"])
    if "score" in parts and student is None:
        console.print("score: not run (give --student with an `agpo student export` dir)")
    elif "score" in parts:
        with console.status(f"/v1/score: {score_clients} clients..."), bench.temp_database(pg) as db:
            scored = pool
            if score_pairs is not None:
                scored = [json.loads(x) for x in score_pairs.read_text(encoding="utf-8").splitlines() if x.strip()]
            report["score"] = bench.bench_score(
                str(student),
                scored,
                db,
                str(teacher),
                idle,
                clients=score_clients,
                seconds=10,
                threads=score_threads,
                logdir=work,
            )
        console.print(report["score"])
    if "fairness" in parts:
        with console.status("fairness: a small job behind another tenant's big one..."), bench.temp_database(pg) as db:
            report["fairness"] = bench.bench_fairness(
                pool, str(teacher), db, broker, big=1000, small=10, samples=samples, max_tokens=max_tokens, logdir=work
            )
        console.print(report["fairness"])
    report["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
        console.print(f"wrote {out}")


@app.command("soak")
def soak_command(
    teacher: Annotated[Path, typer.Option(help="teacher model dir")] = Path("models/relevance-teacher"),
    pg: Annotated[str, typer.Option(help="PostgreSQL admin URL (a temporary database is created)")] = (
        "postgresql://postgres@127.0.0.1:5432/test"
    ),
    broker: Annotated[str, typer.Option(help="Redis URL")] = "redis://127.0.0.1:6379/13",
    clients: Annotated[int, typer.Option(help="concurrent clients")] = 30,
    seconds: Annotated[float, typer.Option(help="how long they submit")] = 60.0,
    per_job: Annotated[int, typer.Option(help="pairs per job")] = 20,
    out: Annotated[Path | None, typer.Option(help="write the report as JSON here")] = None,
) -> None:
    """Clients submit jobs for a while, one worker is killed midway; then every pair is counted in PostgreSQL
    (experiments/bench/soak.py). Exits 1 when a pair is lost, duplicated or left pending, or a request got a 5xx."""
    import tempfile

    from experiments.bench.service import temp_database
    from experiments.bench.soak import soak
    from relevance.synthetic.generator import generate_benchmark

    work = Path(tempfile.mkdtemp(prefix="agpo-soak-"))
    generate_benchmark(work / "data", seed=13, teacher_train=0, dev=0, gold_test=0, pool=2000)
    pool = [json.loads(x) for x in (work / "data" / "pool.jsonl").read_text().splitlines()]
    what = f"soak: {clients} clients for {seconds:.0f} s, a worker killed midway..."
    with console.status(what), temp_database(pg) as db:
        report = soak(pool, str(teacher), db, broker, clients=clients, seconds=seconds, per_job=per_job, logdir=work)
    report["machine"] = {"cpus": os.cpu_count()}
    console.print(report)
    console.print(f"logs: {work}")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
        console.print(f"wrote {out}")
    if not report["ok"]:
        raise _fail("the soak lost, duplicated or left pairs pending, or answered a 5xx (see the report)")
