"""The bounded soak (experiments/bench/soak.py): 30 clients for 60 s, a worker killed midway, every pair counted
in PostgreSQL. About 3 minutes, so it runs with `make test-slow`, not in the default suite."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from services.procs import AGPO


@pytest.mark.slow
def test_soak_with_a_worker_killed_loses_and_duplicates_nothing(redis_server, tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [AGPO, "soak", "--clients", "30", "--seconds", "60", "--broker", redis_server.url, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["ok"] and report["jobs"] >= 30 and report["jobs_ended"] == report["jobs"]
    assert report["duplicates"] == report["missing"] == report["pending"] == 0
    assert report["max_chunk_attempts"] >= 2, "the kill should have interrupted a chunk that then ran again"
