"""Benchmarks of the annotation service, each against a baseline run side by side on the same machine.

- pipeline: pairs/s through API -> Celery -> worker -> DB, against the same teacher backend called directly in
  one process on the same pairs (same thread count). Target ratio >= 0.85.
- ingestion: creating a job from a JSONL upload (HTTP, validation, bulk inserts), against PostgreSQL ``COPY`` of
  the same rows into a table of the same shape. Target ratio >= 0.3.
- status reads: ``GET /v1/jobs/{id}`` latency, p50 and p99, for N clients polling a job every 0.5 s on an idle
  machine (the baseline) and while a worker labels on the same CPUs; and back to back (the read throughput).
- scoring: ``POST /v1/score`` latency for 1 and 32 pairs per request from 1 and from 8 concurrent clients, p50
  and p99, and pairs/s against the same scorer called directly (the student export served by the API).
- fairness: one tenant's small job submitted while another tenant's big job runs, against the same small job
  alone, on one worker. Target ratio (behind / alone) <= 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from services.procs import AGPO, answers, free_port, running, wait_until


@contextmanager
def temp_database(admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one run (dropped after), as a SQLAlchemy URL."""
    import psycopg

    name = f"agpo_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def celery_env(db_url: str, broker_url: str, teacher: str, **settings: str) -> dict[str, str]:
    """The environment of API and Celery processes on ``db_url`` and ``broker_url``; ``settings`` are further
    ``AGPO_*`` values by lower-case name (``samples="1"``), and the teacher runs on one thread."""
    env = {
        "AGPO_DATABASE_URL": db_url,
        "AGPO_BROKER_URL": broker_url,
        "AGPO_QUEUE": "celery",
        "AGPO_TEACHER_MODEL": teacher,
        "OMP_NUM_THREADS": "1",
    }
    return env | {f"AGPO_{name.upper()}": value for name, value in settings.items()}


def new_key(env: dict[str, str], tenant: str) -> str:
    """A fresh API key for ``tenant`` in the database of ``env`` (``agpo keys create``)."""
    out = subprocess.run(
        [AGPO, "keys", "create", "--tenant", tenant],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def _pairs_jsonl(pairs: list[dict[str, Any]]) -> bytes:
    return ("\n".join(json.dumps(p, separators=(",", ":")) for p in pairs) + "\n").encode()


def bench_pipeline(
    pairs: list[dict[str, Any]],
    teacher: str,
    db_url: str,
    broker_url: str,
    *,
    samples: int,
    max_tokens: int,
    chunk_size: int,
    batch_size: int,
    logdir: Path,
    rounds: int = 3,
) -> dict[str, Any]:
    """Same pairs, same decoding, same one-thread teacher: directly in-process, then through the service.

    The two alternate for ``rounds`` rounds, each round on its own variant of the pairs (the label cache must
    not answer), and each side reports its median: single runs on a shared 2-core machine vary by 15%.
    """
    from pipelines.annotate import LabelRequest, label_pairs
    from pipelines.backends import create_backend
    from pipelines.backends.base import Decoding

    request = LabelRequest(decoding=Decoding(n=samples, max_tokens=max_tokens), unparseable_retries=1)
    backend = create_backend("transformers", teacher, batch_size=batch_size * samples, torch_threads=1)
    label_pairs(pairs[:batch_size], backend, request, batch_size=batch_size)  # warm-up

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = celery_env(
        db_url,
        broker_url,
        teacher,
        auth="false",
        samples=str(samples),
        max_tokens=str(max_tokens),
        chunk_size=str(chunk_size),
        teacher_batch_size=str(batch_size),
    )
    subprocess.run([AGPO, "db", "upgrade"], env={**os.environ, **env}, check=True, capture_output=True)
    direct_s: list[float] = []
    service_s: list[float] = []
    failed = 0
    with running([["serve", "api", "--port", str(port)], ["worker"]], env, logdir):
        wait_until(lambda: answers(url + "/readyz"), 120, "the API")
        # Warm the worker (model load) on other content, so both sides are timed warm.
        warm = [dict(p, custom_id=f"warm-{i}", query=p["query"] + " warm") for i, p in enumerate(pairs[:batch_size])]
        _run_job(url, warm)
        for r in range(rounds):
            variant = [dict(p, query=f"{p['query']} {'x' * r}".strip()) for p in pairs]
            t0 = time.perf_counter()
            direct = label_pairs(variant, backend, request, batch_size=batch_size)
            direct_s.append(time.perf_counter() - t0)
            failed += sum(o.label is None for o in direct)
            t0 = time.perf_counter()
            job = _run_job(url, variant)
            service_s.append(time.perf_counter() - t0)
            done = job["request_counts"]["completed"] + job["request_counts"]["failed"]
            assert done == len(pairs) and job["request_counts"]["cached"] == 0, job
    backend.close()
    direct_rate = len(pairs) / statistics.median(direct_s)
    service_rate = len(pairs) / statistics.median(service_s)
    return {
        "pairs": len(pairs),
        "samples": samples,
        "max_tokens": max_tokens,
        "chunk_size": chunk_size,
        "rounds": rounds,
        "direct_seconds": [round(x, 2) for x in direct_s],
        "service_seconds": [round(x, 2) for x in service_s],
        "direct_pairs_per_s": round(direct_rate, 2),
        "service_pairs_per_s": round(service_rate, 2),
        "ratio": round(service_rate / direct_rate, 3),
        "direct_failed": failed,
    }


def _run_job(url: str, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    r = httpx.post(
        f"{url}/v1/jobs/jsonl",
        content=_pairs_jsonl(pairs),
        headers={"Content-Type": "application/x-ndjson"},
        timeout=600,
    )
    r.raise_for_status()
    job_id = r.json()["id"]

    def finished() -> dict[str, Any] | None:
        job = httpx.get(f"{url}/v1/jobs/{job_id}", timeout=30).json()
        return job if job["status"] in ("completed", "failed", "cancelled") else None

    # Polled gently: the poller shares the CPUs with the worker it measures.
    return wait_until(finished, 3600, f"job {job_id}", interval=0.5)


def _timed_job(url: str, key: str, pairs: list[dict[str, Any]]) -> float:
    """Seconds from submitting ``pairs`` as tenant ``key`` to the job's end, polled every 50 ms."""
    headers = {"Authorization": f"Bearer {key}"}
    t0 = time.perf_counter()
    r = httpx.post(f"{url}/v1/jobs", json={"pairs": pairs}, headers=headers, timeout=60)
    r.raise_for_status()
    job_id = r.json()["id"]

    def finished() -> bool:
        job = httpx.get(f"{url}/v1/jobs/{job_id}", headers=headers, timeout=30).json()
        return job["status"] in ("completed", "failed", "cancelled")

    wait_until(finished, 600, f"job {job_id}", interval=0.05)
    return time.perf_counter() - t0


def bench_fairness(
    pairs: list[dict[str, Any]],
    teacher: str,
    db_url: str,
    broker_url: str,
    *,
    big: int,
    small: int,
    samples: int,
    max_tokens: int,
    logdir: Path,
    rounds: int = 3,
) -> dict[str, Any]:
    """Tenant b's ``small``-pair job alone, then submitted once tenant a's ``big``-pair job is running, on one
    worker; the rounds alternate, each on fresh content (the label cache must not answer). Medians."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = celery_env(db_url, broker_url, teacher, samples=str(samples), max_tokens=str(max_tokens))
    subprocess.run([AGPO, "db", "upgrade"], env={**os.environ, **env}, check=True, capture_output=True)
    keys = {tenant: new_key(env, tenant) for tenant in ("a", "b")}
    headers = {"Authorization": f"Bearer {keys['a']}"}
    alone_s: list[float] = []
    behind_s: list[float] = []
    with running([["serve", "api", "--port", str(port)], ["worker"]], env, logdir):
        wait_until(lambda: answers(url + "/readyz"), 120, "the API")
        _timed_job(url, keys["b"], [dict(p, query=p["query"] + " warm") for p in pairs[:small]])
        for r in range(rounds):
            fresh = [dict(p, query=f"{p['query']} r{r}") for p in pairs[: big + small]]
            alone_s.append(_timed_job(url, keys["b"], [dict(p, query=p["query"] + " alone") for p in fresh[:small]]))
            job = httpx.post(f"{url}/v1/jobs", json={"pairs": fresh[small:]}, headers=headers, timeout=120).json()

            def started(job_id: str = job["id"]) -> bool:
                view = httpx.get(f"{url}/v1/jobs/{job_id}", headers=headers, timeout=30).json()
                return view["request_counts"]["completed"] > 0

            wait_until(started, 600, "tenant a's job", interval=0.05)
            behind_s.append(_timed_job(url, keys["b"], fresh[:small]))
            httpx.post(f"{url}/v1/jobs/{job['id']}/cancel", headers=headers, timeout=30).raise_for_status()

            def stopped(job_id: str = job["id"]) -> bool:
                view = httpx.get(f"{url}/v1/jobs/{job_id}", headers=headers, timeout=30).json()
                return view["status"] == "cancelled"

            wait_until(stopped, 600, "tenant a's job to stop", interval=0.1)  # the next round starts idle
    alone, behind = statistics.median(alone_s), statistics.median(behind_s)
    return {
        "big_pairs": big,
        "small_pairs": small,
        "samples": samples,
        "rounds": rounds,
        "alone_seconds": [round(x, 3) for x in alone_s],
        "behind_seconds": [round(x, 3) for x in behind_s],
        "ratio": round(behind / alone, 3),
        "target_ratio_at_most": 2.0,
        "target_met": behind / alone <= 2.0,
    }


def _idle_env(db_url: str, teacher: str, broker_url: str) -> dict[str, str]:
    """An API whose chunks go to a queue nobody consumes: the measurement sees the API and the DB alone."""
    return {
        "AGPO_DATABASE_URL": db_url,
        "AGPO_QUEUE": "celery",
        "AGPO_BROKER_URL": broker_url,
        "AGPO_AUTH": "false",
        "AGPO_MAX_PAIRS_PER_JOB": "10000000",
        "AGPO_MAX_REQUEST_BYTES": str(1 << 30),
        "AGPO_TEACHER_MODEL": teacher,
    }


def bench_ingestion(
    pairs: list[dict[str, Any]],
    db_url: str,
    teacher: str,
    broker_url: str,
    *,
    logdir: Path,
    rounds: int = 3,
) -> dict[str, Any]:
    """Upload through the API (HTTP, validation, bulk insert), then ``COPY`` of the same rows into the same table.

    The two alternate for ``rounds`` rounds and each side reports its median, so that a slow spell of a shared
    machine does not land on one side only.
    """
    import psycopg

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _idle_env(db_url, teacher, broker_url)
    body = _pairs_jsonl(pairs)
    plain = db_url.replace("postgresql+psycopg://", "postgresql://")
    subprocess.run([AGPO, "db", "upgrade"], env={**os.environ, **env}, check=True, capture_output=True)
    api_s: list[float] = []
    copy_s: list[float] = []
    with running([["serve", "api", "--port", str(port)]], env, logdir), psycopg.connect(plain) as conn:
        wait_until(lambda: answers(url + "/healthz"), 120, "the API")
        for r in range(rounds):
            t0 = time.perf_counter()
            resp = httpx.post(
                f"{url}/v1/jobs/jsonl", content=body, headers={"Content-Type": "application/x-ndjson"}, timeout=3600
            )
            api_s.append(time.perf_counter() - t0)
            if resp.status_code != 201:
                raise RuntimeError(f"job upload failed: HTTP {resp.status_code}: {resp.text[:500]}")
            copy_s.append(_copy_items(conn, resp.json()["id"], f"job_copy_{r}", pairs))
    api_rate, copy_rate = len(pairs) / statistics.median(api_s), len(pairs) / statistics.median(copy_s)
    return {
        "pairs": len(pairs),
        "bytes": len(body),
        "rounds": rounds,
        "api_seconds": [round(x, 3) for x in api_s],
        "copy_seconds": [round(x, 3) for x in copy_s],
        "api_pairs_per_s": round(api_rate),
        "copy_pairs_per_s": round(copy_rate),
        "ratio": round(api_rate / copy_rate, 3),
    }


def _copy_items(conn: Any, template_job: str, job_id: str, pairs: list[dict[str, Any]]) -> float:
    """Seconds to ``COPY`` the pairs' item rows into ``job_items`` under a copy of ``template_job``'s row.

    Same rows, same table, same indexes and foreign key: all the database must do, none of the service's work.
    """
    conn.execute("CREATE TEMP TABLE job_copy AS SELECT * FROM jobs WHERE id = %s", (template_job,))
    conn.execute("UPDATE job_copy SET id = %s, idempotency_key = NULL", (job_id,))
    conn.execute("INSERT INTO jobs SELECT * FROM job_copy")
    conn.execute("DROP TABLE job_copy")
    conn.commit()
    t0 = time.perf_counter()
    with (
        conn.cursor() as cur,
        cur.copy("COPY job_items (job_id, chunk_no, line, custom_id, pair, state) FROM STDIN") as copy,
    ):
        for i, p in enumerate(pairs):
            copy.write_row((job_id, i // 200, i + 1, p["custom_id"], json.dumps(p), "pending"))
    conn.commit()
    return time.perf_counter() - t0


def bench_status_reads(
    db_url: str,
    pairs: list[dict[str, Any]],
    teacher: str,
    broker_url: str,
    *,
    readers: int,
    interval: float,
    seconds: float,
    busy_pairs: int,
    logdir: Path,
    worker_nice: int | None = None,
) -> dict[str, Any]:
    """``GET /v1/jobs/{id}`` as clients use it: ``readers`` clients each polling a job every ``interval`` s, on an
    idle machine (the baseline) and while a worker labels a ``busy_pairs``-pair job on the same CPUs; then the same
    readers back to back (closed loop), which measures the API's read throughput rather than a client's wait."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    extra = {} if worker_nice is None else {"worker_nice": str(worker_nice)}
    env = celery_env(db_url, broker_url, teacher, samples="1", auth="false", **extra)
    subprocess.run([AGPO, "db", "upgrade"], env={**os.environ, **env}, check=True, capture_output=True)
    out: dict[str, Any] = {"readers": readers, "interval_s": interval, "seconds": seconds, "busy_pairs": busy_pairs}
    with running([["serve", "api", "--port", str(port)]], env, logdir, names=["status-api"]):
        wait_until(lambda: answers(url + "/healthz"), 120, "the API")
        job_id = httpx.post(f"{url}/v1/jobs", json={"pairs": pairs[:100]}, timeout=60).json()["id"]
        job_url = f"{url}/v1/jobs/{job_id}"
        out["idle_polling"] = _latency_summary(asyncio.run(_poll(job_url, readers, interval, seconds)), seconds)
        busy = httpx.post(f"{url}/v1/jobs", json={"pairs": pairs[100 : 100 + busy_pairs]}, timeout=120).json()["id"]
        with running([["worker"]], env, logdir, names=["status-worker"]):

            def labelled() -> int:
                return httpx.get(f"{url}/v1/jobs/{busy}", timeout=30).json()["request_counts"]["completed"]

            wait_until(lambda: labelled() > 0, 300, "the worker to start labelling", interval=0.2)
            before = labelled()
            latencies = asyncio.run(_poll(f"{url}/v1/jobs/{busy}", readers, interval, seconds))
            out["busy_polling"] = {
                **_latency_summary(latencies, seconds),
                "pairs_labelled_meanwhile": labelled() - before,
            }
            out["busy_closed_loop"] = _latency_summary(asyncio.run(_hammer(job_url, readers, seconds)), seconds)
    return out


def _latency_summary(latencies: list[float], seconds: float) -> dict[str, Any]:
    latencies = sorted(latencies)
    q = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(1000 * q[49], 2),
        "p99_ms": round(1000 * q[98], 2),
    }


async def _poll(url: str, readers: int, interval: float, seconds: float) -> list[float]:
    """Latencies of ``readers`` clients each sending a GET every ``interval`` s (start times spread over one
    interval), for ``seconds``. A late answer delays only that client's next poll, as in a real polling loop."""
    latencies: list[float] = []
    start = time.perf_counter()
    stop = start + seconds
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=readers)) as client:

        async def reader(offset: float) -> None:
            due = start + offset
            while due < stop:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                t0 = time.perf_counter()
                (await client.get(url)).raise_for_status()
                latencies.append(time.perf_counter() - t0)
                due = max(due + interval, time.perf_counter())

        await asyncio.gather(*(reader(interval * i / readers) for i in range(readers)))
    return latencies


def bench_score(
    export_dir: str,
    pairs: list[dict[str, Any]],
    db_url: str,
    teacher: str,
    broker_url: str,
    *,
    clients: int,
    seconds: float,
    sizes: tuple[int, ...] = (1, 32),
    threads: int = 1,
    logdir: Path,
) -> dict[str, Any]:
    """``POST /v1/score`` latency for requests of each size in ``sizes``, from one client and from ``clients``
    concurrent ones, against the same scorer called directly in this process (the offline ceiling: same variant,
    same threads, batches of 64) on the same pairs."""
    from student.scorer import Scorer, pick_variant

    variant = pick_variant(export_dir)
    scorer = Scorer(export_dir, variant, threads=threads, batch_size=64)
    sample = pairs[:1024]
    scorer.score(sample[:64])  # warm
    t0 = time.perf_counter()
    scorer.score(sample)
    offline = len(sample) / (time.perf_counter() - t0)
    del scorer
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **_idle_env(db_url, teacher, broker_url),
        "AGPO_STUDENT_MODEL": export_dir,
        "AGPO_SCORE_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
    }
    subprocess.run([AGPO, "db", "upgrade"], env={**os.environ, **env}, check=True, capture_output=True)
    out: dict[str, Any] = {
        "variant": variant,
        "threads": threads,
        "clients": clients,
        "seconds_per_size": seconds,
        "offline_pairs_per_s": round(offline, 1),
    }
    with running([["serve", "api", "--port", str(port)]], env, logdir, names=["score-api"]):
        wait_until(lambda: answers(url + "/healthz"), 120, "the API")
        httpx.post(f"{url}/v1/score", json={"pairs": pairs[:1]}, timeout=120).raise_for_status()  # loads the model
        # The machine's floor: the same server and client answering the cheapest route.
        out["healthz_1_client"] = _latency_summary(asyncio.run(_hammer(f"{url}/healthz", 1, seconds)), seconds)
        for size in sizes:
            body = {"pairs": pairs[:size]}
            for n in sorted({1, clients}):
                summary = _latency_summary(asyncio.run(_hammer(f"{url}/v1/score", n, seconds, body=body)), seconds)
                summary["pairs_per_s"] = round(size * summary["requests_per_s"], 1)
                summary["ratio_to_offline"] = round(summary["pairs_per_s"] / offline, 3)
                out[f"{size}_pairs_{n}_clients"] = summary
    return out


async def _hammer(url: str, clients: int, seconds: float, body: dict[str, Any] | None = None) -> list[float]:
    """Latencies of back-to-back requests from ``clients`` concurrent clients (GET, or POST of ``body``)."""
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one() -> None:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = await (client.get(url) if body is None else client.post(url, json=body))
                r.raise_for_status()
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(one() for _ in range(clients)))
    return latencies
