"""One error shape for every 4xx/5xx: ``{"error": {"message", "type", "param", "code"}}`` (OpenAI's)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipelines.backends.base import TeacherError


class APIError(Exception):
    """An error of the annotation API: rendered as ``{"error": {...}}`` with ``status`` by :func:`install`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.headers = status, message, type, param, headers


class BodyTooLargeError(StarletteHTTPException):
    """A body crossed the limit while it was read. An HTTP exception, so that FastAPI's body parsing passes it
    on (it answers any other error while reading with a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {limit} bytes")
        self.limit = limit


# Seconds a client is told to wait when the database or the teacher is busy or down.
RETRY_AFTER_S = 2


def error_response(
    status: int, message: str, type: str, param: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"message": message, "type": type, "param": param, "code": None}},
        headers=headers,
    )


def body_too_large(limit: int, declared: int | None = None) -> JSONResponse:
    """The 413 for a body over ``limit`` bytes, whether its length was declared or counted as it arrived."""
    size = f"is {declared} bytes" if declared is not None else "is larger than the limit"
    return error_response(
        413,
        f"request body {size}; the limit is {limit} bytes (AGPO_MAX_REQUEST_BYTES); split the pairs into several jobs",
        "request_too_large",
    )


def unavailable(message: str) -> JSONResponse:
    """A 503 the client should retry, saying when."""
    return error_response(503, message, "service_unavailable", headers={"Retry-After": str(RETRY_AFTER_S)})


def _loc(loc: tuple) -> str:  # type: ignore[type-arg]
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.type, exc.param, exc.headers)

    @app.exception_handler(BodyTooLargeError)
    async def _too_large(_: Request, exc: BodyTooLargeError) -> JSONResponse:
        return body_too_large(exc.limit)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        param = _loc(tuple(first.get("loc", ())))
        msg = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
        if len(errors) > 1:
            msg += f" (and {len(errors) - 1} more)"
        body = {"error": {"message": msg, "type": "invalid_request_error", "param": param or None, "code": None}}
        body["detail"] = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
        return JSONResponse(status_code=422, content=body)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {401: "authentication_error", 404: "not_found_error", 405: "invalid_request_error"}.get(
            exc.status_code, "invalid_request_error"
        )
        return error_response(exc.status_code, str(exc.detail), kind)

    @app.exception_handler(TeacherError)
    async def _teacher_down(_: Request, exc: TeacherError) -> JSONResponse:
        return unavailable(f"the teacher is unavailable, retry shortly ({exc})")

    @app.exception_handler(PoolTimeoutError)
    async def _db_busy(_: Request, exc: Exception) -> JSONResponse:
        return unavailable("every database connection is in use; retry shortly")

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _db_down(_: Request, exc: Exception) -> JSONResponse:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300]
        return unavailable(f"the database is unavailable, retry shortly ({reason})")
