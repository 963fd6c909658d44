"""ASGI middleware of the annotation API: the request body limit, and request metrics.

Both are plain ASGI (not ``BaseHTTPMiddleware``): the limit must see the body as it arrives, before any route
parses it or authenticates its sender, and the metrics need the response's status as it is sent.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import BodyTooLargeError, body_too_large


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes with a 413, whether or not they declare their length.

    A declared ``Content-Length`` over the limit is answered before a byte is read. Otherwise the body is
    counted as it is received (chunked uploads declare nothing): the receive that crosses the limit raises
    :class:`BodyTooLargeError`, so no route buffers more than ``limit`` bytes, authenticated or not.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await body_too_large(self.limit, int(declared))(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLargeError(self.limit)
            return message

        await self.app(scope, counted, send)


class MetricsMiddleware:
    """Count requests and time them by method, route template (never the raw path) and status."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app, self.requests, self.latency = app, requests, latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client sees when the app fails before it answers
        t0 = time.perf_counter()

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route: Any = scope.get("route")
            labels = (scope["method"], getattr(route, "path", "unmatched"), str(status))
            self.requests.labels(*labels).inc()
            self.latency.labels(*labels).observe(time.perf_counter() - t0)
