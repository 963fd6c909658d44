"""What every command group shares: one console and one way to stop with a message."""

from __future__ import annotations

from typing import Any

import httpx
import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """An exit with a red one-line message: what was wrong and, where it helps, how to fix it."""
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=code)


def call_api(method: str, url: str, path: str, key: str | None, **kw: Any) -> httpx.Response:
    """One request to a running API; an unreachable server or an error answer stops with its message."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        r = httpx.request(method, url.rstrip("/") + path, headers=headers, timeout=120, **kw)
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach the API at {url}: {exc}") from None
    if r.status_code >= 400:
        try:
            message = r.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = r.text[:300]
        raise fail(f"{method} {path}: {r.status_code} {message}")
    return r
