"""A bounded soak of the annotation service: many clients, one worker killed mid-run, nothing lost.

``clients`` clients (of two tenants, alternating) each submit a small job, read its status until it ends, and
submit the next, for ``seconds``, against API + two Celery workers + beat on PostgreSQL and Redis.
Halfway through, one worker is killed with SIGKILL and a fresh one started. Once every job has ended, the store
is checked row by row: every submitted custom_id exactly once per job, none pending, and the results file of
each job has one line per pair.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from experiments.bench.service import celery_env, new_key
from services.procs import AGPO, answers, free_port, running, start, stop, wait_until


async def _client(
    url: str,
    key: str,
    client_no: int,
    pool: list[dict[str, Any]],
    per_job: int,
    stop_at: float,
    jobs: list[dict[str, Any]],
    reads: list[tuple[float, int]],
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        j = 0
        while time.monotonic() < stop_at:
            first = (client_no * 131 + j * per_job) % (len(pool) - per_job)
            chosen = pool[first : first + per_job]
            pairs = [dict(p, custom_id=f"c{client_no}-j{j}-{i}") for i, p in enumerate(chosen)]
            r = await http.post("/v1/jobs", json={"pairs": pairs})
            j += 1
            if r.status_code not in (200, 201):
                jobs.append({"error": f"create: HTTP {r.status_code} {r.text[:200]}"})
                await asyncio.sleep(1.0)
                continue
            jobs.append({"id": r.json()["id"], "key": key, "ids": [p["custom_id"] for p in pairs]})
            while time.monotonic() < stop_at:  # follow it as a client would, then send the next
                await asyncio.sleep(0.5)
                t0 = time.perf_counter()
                status = await http.get(f"/v1/jobs/{r.json()['id']}")
                reads.append((time.perf_counter() - t0, status.status_code))
                if status.status_code == 200 and status.json()["status"] in ("completed", "failed", "cancelled"):
                    break


def soak(
    pool: list[dict[str, Any]],
    teacher: str,
    db_url: str,
    broker_url: str,
    *,
    clients: int,
    seconds: float,
    per_job: int,
    logdir: Path,
) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = celery_env(
        db_url,
        broker_url,
        teacher,
        samples="1",
        max_tokens="96",
        chunk_size="10",
        lease_seconds="10",
        requeue_after_seconds="8",
        beat_interval_seconds="2",
        beat_schedule=str(logdir / "beat-schedule"),
    )
    subprocess.run([AGPO, "db", "upgrade"], env={**os.environ, **env}, check=True, capture_output=True)
    keys = [new_key(env, "soak-a"), new_key(env, "soak-b")]
    jobs: list[dict[str, Any]] = []
    reads: list[tuple[float, int]] = []
    commands = [["serve", "api", "--port", str(port)], ["worker"], ["worker"], ["beat"]]
    with running(commands, env, logdir, names=["api", "worker-1", "worker-2", "beat"]) as procs:
        wait_until(lambda: answers(url + "/readyz"), 120, "the API")
        t0 = time.monotonic()

        async def kill_midway() -> None:
            await asyncio.sleep(seconds / 2)
            stop(procs[1], signal.SIGKILL)

        async def load() -> None:
            stop_at = time.monotonic() + seconds
            clients_ = (_client(url, keys[c % 2], c, pool, per_job, stop_at, jobs, reads) for c in range(clients))
            await asyncio.gather(*clients_, kill_midway())

        asyncio.run(load())
        replacement = start(["worker"], env, logdir / "worker-3.log")
        try:
            ended = _wait_all(url, [j for j in jobs if "id" in j])
        finally:
            stop(replacement)
        drained_s = time.monotonic() - t0 - seconds
    report = _check(db_url, [j for j in jobs if "id" in j], ended)
    latencies = sorted(x for x, _ in reads)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    report.update(
        clients=clients,
        seconds=seconds,
        pairs_per_job=per_job,
        create_errors=[j["error"] for j in jobs if "error" in j][:5],
        status_reads=len(reads),
        status_read_5xx=sum(code >= 500 for _, code in reads),
        status_read_p50_ms=round(1000 * q[49], 1),
        status_read_p99_ms=round(1000 * q[98], 1),
        drain_seconds=round(drained_s, 1),
    )
    report["ok"] = (
        not report["create_errors"]
        and report["status_read_5xx"] == 0
        and report["duplicates"] == 0
        and report["missing"] == 0
        and report["pending"] == 0
        and report["result_lines_mismatch"] == 0
    )
    return report


def _wait_all(url: str, jobs: list[dict[str, Any]], timeout: float = 600) -> dict[str, dict[str, Any]]:
    ended: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=60) as http:
        while len(ended) < len(jobs) and time.monotonic() < deadline:
            for job in jobs:
                if job["id"] in ended:
                    continue
                view = http.get(f"/v1/jobs/{job['id']}", headers={"Authorization": f"Bearer {job['key']}"}).json()
                if view["status"] in ("completed", "failed", "cancelled"):
                    lines = http.get(
                        f"/v1/jobs/{job['id']}/results", headers={"Authorization": f"Bearer {job['key']}"}
                    ).text.splitlines()
                    ended[job["id"]] = {"view": view, "lines": [json.loads(x)["custom_id"] for x in lines]}
            time.sleep(0.5)
    return ended


def _check(db_url: str, jobs: list[dict[str, Any]], ended: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    duplicates = missing = pending = mismatched = 0
    states: dict[str, int] = {}
    attempts = 0
    with engine.connect() as conn:
        for job in jobs:
            rows = conn.execute(
                text("SELECT custom_id, state FROM job_items WHERE job_id = :j"), {"j": job["id"]}
            ).all()
            seen: dict[str, int] = {}
            for custom_id, state in rows:
                seen[custom_id] = seen.get(custom_id, 0) + 1
                states[state] = states.get(state, 0) + 1
                pending += state == "pending"
            duplicates += sum(n - 1 for n in seen.values() if n > 1)
            missing += sum(1 for cid in job["ids"] if cid not in seen)
            lines = ended.get(job["id"], {}).get("lines")
            mismatched += lines is None or sorted(lines) != sorted(job["ids"])
        attempts = conn.execute(text("SELECT coalesce(max(attempts), 0) FROM chunks")).scalar() or 0
    engine.dispose()
    return {
        "jobs": len(jobs),
        "jobs_ended": len(ended),
        "pairs": sum(len(j["ids"]) for j in jobs),
        "states": states,
        "duplicates": duplicates,
        "missing": missing,
        "pending": pending,
        "result_lines_mismatch": mismatched,
        "max_chunk_attempts": attempts,
    }
