"""Every error leaves the server as ``{"error": {"code", "message"}}``, whatever raised it.

FastAPI's own handlers (HTTPException, RequestValidationError) answer in other shapes, so they are
replaced here; anything unexpected becomes 500 INTERNAL_ERROR with the traceback only in the log.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from oc_tui.api.errors import ErrorCode

log = logging.getLogger("oc_server")


class ApiProblem(Exception):
    """Raise anywhere in a route to answer with this status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ResponseCut(Exception):
    """Raised inside a streamed body to cut a response that has started (the client then sees fewer
    bytes than announced). An expected end, not a fault: it is logged as one line, never a traceback."""


class _QuietCuts(logging.Filter):
    """Turns the ASGI server's "Exception in ASGI application" for a :class:`ResponseCut` into one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ResponseCut):
            record.msg, record.args, record.exc_info, record.exc_text = "response cut: %s", (exc,), None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


_QUIET_CUTS = _QuietCuts()


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The one error body: ``{"error": {"code", "message"}}`` with ``status``.

    A message naming a file whose name is not UTF-8 (the agent hands such names on surrogate-escaped)
    shows each such byte as ``\\xNN``: JSON text must be UTF-8.
    """
    message = printable_utf8(message)
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def printable_utf8(text: str) -> str:
    """``text`` with every lone surrogate (a byte that was not UTF-8, escaped by ``surrogateescape``)
    written as ``\\xNN``, so it encodes as UTF-8; other text unchanged."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a surrogate that no byte escapes to: as Python writes it
            return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def problem_of(exc: ApiProblem | RequestValidationError) -> tuple[str, str]:
    """(code, message) of a problem, for an error put in an event stream instead of a JSON answer."""
    if isinstance(exc, RequestValidationError):
        return describe_validation_errors(list(exc.errors()))
    return exc.code, exc.message


_CODE_BY_STATUS = {
    400: ErrorCode.VALIDATION_ERROR,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
}

_MESSAGE_BY_STATUS = {404: "no such endpoint", 405: "method not allowed on this endpoint"}


def describe_validation_errors(errors: list[dict[str, Any]]) -> tuple[str, str]:
    """(code, message) for pydantic errors: INVALID_JSON for unparsable bodies, else a line per field."""
    if any(err.get("type") == "json_invalid" for err in errors):
        return ErrorCode.INVALID_JSON, "request body is not valid JSON"
    parts = []
    for err in errors[:3]:
        loc = [str(p) for p in err.get("loc", ())]
        where, field = (loc[0], ".".join(loc[1:])) if loc else ("body", "")
        kind = err.get("type", "")
        if kind == "missing" and where == "body" and not field:
            message = "request body is required (a JSON object)"
        elif kind == "missing":
            message = "is required"
        elif kind == "extra_forbidden":
            message = "is not a known field"
        elif kind in ("model_attributes_type", "dict_type") and not field:
            message = "request body must be a JSON object"
        else:
            message = str(err.get("msg", "is invalid")).removeprefix("Value error, ")
        if not field:
            parts.append(message)
        elif where == "query":
            parts.append(f"query parameter {field!r}: {message}")
        else:
            parts.append(f"{field}: {message}")
    return ErrorCode.VALIDATION_ERROR, "; ".join(parts)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at the request's path, for 405's ``Allow``
    (RFC 9110 §15.5.6). Starlette names only the first route matching the path; a path has several."""
    methods = set()
    for method in _METHODS:  # asked of each route, so routers included in routers answer too
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            methods.add(method)
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Make every error of ``app`` answer with the one error body."""

    @app.exception_handler(ApiProblem)
    async def _problem(_: Request, exc: ApiProblem) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODE_BY_STATUS.get(exc.status_code, ErrorCode.INTERNAL_ERROR)
        detail = exc.detail if isinstance(exc.detail, str) else ""
        if exc.status_code in _MESSAGE_BY_STATUS:
            detail = _MESSAGE_BY_STATUS[exc.status_code]
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return error_response(exc.status_code, code, detail or "request failed", headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        code, message = describe_validation_errors(list(exc.errors()))
        content_type = request.headers.get("content-type", "")
        if message.startswith("request body") and "json" not in content_type:
            # FastAPI parses a body as JSON only when it says it is JSON (curl -d sends a form type).
            message += f" sent as Content-Type: application/json (got {content_type or 'none'!r})"
        return error_response(400, code, message)

    logging.getLogger("uvicorn.error").addFilter(_QUIET_CUTS)  # once: the same filter is not added twice

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, ResponseCut):  # already logged where it was raised
            log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, ErrorCode.INTERNAL_ERROR, "internal server error")
