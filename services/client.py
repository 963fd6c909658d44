"""A small client of the annotation API, used by the CLI (``agpo annotate``, ``agpo jobs``) and the demo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

TERMINAL = ("completed", "failed", "cancelled")


class AnnotationAPIError(RuntimeError):
    """The annotation API answered with an error status; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class AnnotationClient:
    def __init__(self, base_url: str = "http://127.0.0.1:8000", api_key: str | None = None, timeout: float = 120.0):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def __enter__(self) -> AnnotationClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def _check(self, r: httpx.Response) -> httpx.Response:
        if r.status_code >= 400:
            try:
                message = r.json()["error"]["message"]
            except Exception:
                message = r.text[:500]
            raise AnnotationAPIError(r.status_code, message)
        return r

    def create_job_jsonl(
        self, path: str | Path, *, idempotency_key: str | None = None, **options: Any
    ) -> dict[str, Any]:
        headers = {"Content-Type": "application/x-ndjson"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        params = {k: v for k, v in options.items() if v is not None}
        content = Path(path).read_bytes()
        return self._check(self.http.post("/v1/jobs/jsonl", content=content, headers=headers, params=params)).json()

    def create_job(self, pairs: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
        body = {"pairs": pairs, **{k: v for k, v in options.items() if v is not None}}
        return self._check(self.http.post("/v1/jobs", json=body)).json()

    def annotate(self, pairs: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
        body = {"pairs": pairs, **{k: v for k, v in options.items() if v is not None}}
        return self._check(self.http.post("/v1/annotate", json=body)).json()["data"]

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self._check(self.http.get(f"/v1/jobs/{job_id}")).json()

    def list_jobs(self, limit: int = 20, status: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        return self._check(self.http.get("/v1/jobs", params=params)).json()["data"]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._check(self.http.post(f"/v1/jobs/{job_id}/cancel")).json()

    def _download(self, url: str, out: str | Path) -> int:
        """The JSONL body into ``out`` byte for byte; returns its line count. Decoding it into text lines would
        also split at U+2028, U+2029 and U+0085, which JSON strings may carry unescaped."""
        n, last = 0, b"\n"
        with self.http.stream("GET", url) as r:
            if r.status_code >= 400:
                r.read()
                self._check(r)
            with open(out, "wb") as fh:
                for chunk in r.iter_bytes():
                    if chunk:
                        fh.write(chunk)
                        n += chunk.count(b"\n")
                        last = chunk[-1:]
                if last != b"\n":
                    fh.write(b"\n")
                    n += 1
        return n

    def download_results(self, job_id: str, out: str | Path) -> int:
        return self._download(f"/v1/jobs/{job_id}/results", out)

    def download_errors(self, job_id: str, out: str | Path) -> int:
        return self._download(f"/v1/jobs/{job_id}/errors", out)

    def iter_results(self, job_id: str, page: int = 500, *, include_pair: bool = False) -> Iterator[dict[str, Any]]:
        after = 0
        while True:
            params: dict[str, Any] = {"after": after, "limit": page, "include_pair": include_pair}
            body = self._check(self.http.get(f"/v1/jobs/{job_id}/results/page", params=params)).json()
            yield from body["data"]
            if not body["has_more"]:
                return
            after = body["next_after"]

    def ready(self) -> dict[str, Any]:
        return self.http.get("/readyz").json()
