"""The product's own commands as child processes: start them, wait for them to answer, stop them for sure.

Benchmarks, the journey and the end-to-end tests all run ``agpo serve api`` / ``agpo worker`` as real processes.
Each child gets its own session, so stopping it signals the whole group (a worker's children too), and a child
that ignores SIGTERM is killed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

AGPO = str(Path(sys.executable).with_name("agpo"))
# Idle OpenMP threads must not spin on a shared 2-core box, and log files want no progress bars.
QUIET_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "AGPO_NO_PROGRESS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str, timeout: float = 2.0) -> bool:
    """True when ``GET url`` answers 200."""
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """The first truthy value of ``predicate()``, polled every ``interval`` s; TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def start(args: Sequence[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen:
    """``agpo *args`` in its own session, stdout and stderr appended to ``log_path``."""
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it until it exits
    return subprocess.Popen(
        [AGPO, *args], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Signal the child's process group; SIGKILL it if it has not exited after ``timeout`` s."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


@contextmanager
def running(
    commands: Sequence[Sequence[str]], env: Mapping[str, str], logdir: Path, names: Sequence[str] | None = None
) -> Iterator[list[subprocess.Popen]]:
    """Start every command (logs in ``logdir/<name>.log``), yield them, stop them all on the way out."""
    procs: list[subprocess.Popen] = []
    names = names or [f"{cmd[0]}-{i}" for i, cmd in enumerate(commands)]
    try:
        for name, cmd in zip(names, commands, strict=True):
            procs.append(start(cmd, {**QUIET_ENV, **env}, logdir / f"{name}.log"))
        yield procs
    finally:
        for p in procs:  # all signalled first, so they shut down side by side
            if p.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            stop(p)
