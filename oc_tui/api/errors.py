"""Exceptions of the API client, built from an HTTP status and the error body's code.

Every error body looks like ``{"error": {"code": "NOT_FOUND", "message": "..."}}``. The embedded
server raises the same codes (it imports ``ErrorCode`` from here), so client and server agree.
"""

from __future__ import annotations

from typing import Any


class ErrorCode:
    """The error codes of the reference, and ours where it is silent (docs/api.md)."""

    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    INVALID_ID = "INVALID_ID"
    UNAUTHORIZED = "UNAUTHORIZED"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    INVALID_JSON = "INVALID_JSON"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    CONFLICT = "CONFLICT"
    HOST_OFFLINE = "HOST_OFFLINE"
    HOST_REVOKED = "HOST_REVOKED"
    AGENT_UNREACHABLE = "AGENT_UNREACHABLE"
    SOURCE_CHANGED = "SOURCE_CHANGED"
    """The agent's word for a file that changed while a download read it (on its stream, not a status)."""
    INTERNAL_ERROR = "INTERNAL_ERROR"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"  # 422: the key came with another request


class OpenComputersError(Exception):
    """Base of everything the client raises."""


class ConnectionFailed(OpenComputersError):
    """The control plane could not be reached at all (refused, DNS, TLS, timeout)."""


class SourceChangedError(OpenComputersError):
    """A download's source file changed while it was being read (rewritten, grown, shrunk or replaced):
    what arrived would be a torn copy, so nothing was saved. Downloading again gets the new version."""


class StreamClosed(OpenComputersError):
    """A stream ended for good (for example: the job or session finished, or the server said so)."""


class SessionRefused(OpenComputersError):
    """A terminal/desktop WebSocket was closed by the server before or instead of a session.

    ``code`` is the WebSocket close code (4401 ticket refused, 4404 host gone, 4409 host offline, 4502 the
    agent could not open the session) and ``reason`` the server's explanation.
    """

    def __init__(self, code: int | None, reason: str) -> None:
        """The refusal of one session socket.

        Args:
            code: the WebSocket close code, or None when the socket was refused before it opened.
            reason: the server's explanation (the message when not empty).
        """
        super().__init__(reason or f"session closed by the server ({code})")
        self.code = code
        self.reason = reason


class ApiError(OpenComputersError):
    """The server answered with an error status."""

    status: int = 0

    def __init__(self, status: int, code: str, message: str, body: Any = None) -> None:
        """One error answer of the server.

        Args:
            status: the HTTP status.
            code: the error body's ``code`` (``NOT_FOUND`` …), ``""`` when the body had none.
            message: the error body's ``message``, or a default for the status.
            body: the decoded body as it came (JSON value or text), for debugging.
        """
        super().__init__(f"{message} ({status} {code})" if code else f"{message} ({status})")
        self.status = status
        self.code = code
        self.message = message
        self.body = body


class BadRequestError(ApiError):
    """400: the request was malformed."""


class ValidationError(BadRequestError):
    """400 VALIDATION_ERROR / INVALID_JSON: a field is missing, of the wrong type or out of range."""


class InvalidIdError(BadRequestError):
    """400 INVALID_ID: a path parameter is not a valid ID."""


class UnauthorizedError(ApiError):
    """401: no token, or a token the server does not know."""


class ForbiddenError(ApiError):
    """403: authenticated but not authorised."""


class NotFoundError(ApiError):
    """404: the resource does not exist in this tenant."""


class ConflictError(ApiError):
    """409: the resource is not in a state that allows this."""


class HostOfflineError(ConflictError):
    """409: the host is offline; the command cannot be dispatched."""


class PayloadTooLargeError(ApiError):
    """413: the request body is over the server's limit."""


class RangeNotSatisfiableError(ApiError):
    """416: a download's ``Range`` starts at or past the end of the file."""


class AgentUnreachableError(ApiError):
    """502: the host's agent is connected but did not answer."""


class ServerError(ApiError):
    """5xx: the server failed."""


_BY_CODE: dict[str, type[ApiError]] = {
    ErrorCode.VALIDATION_ERROR: ValidationError,
    ErrorCode.INVALID_JSON: ValidationError,
    ErrorCode.INVALID_ID: InvalidIdError,
    ErrorCode.HOST_OFFLINE: HostOfflineError,
    ErrorCode.AGENT_UNREACHABLE: AgentUnreachableError,
}

_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: HostOfflineError,  # the reference's only 409 is "host is offline"
    413: PayloadTooLargeError,
    416: RangeNotSatisfiableError,
    502: AgentUnreachableError,
}


def error_from_response(status: int, body: Any) -> ApiError:
    """Build the right exception from a status and a decoded body (any shape, even none).

    The body's ``code`` picks the class first (``VALIDATION_ERROR`` → :class:`ValidationError`,
    ``INVALID_ID`` → :class:`InvalidIdError`, ``HOST_OFFLINE`` → :class:`HostOfflineError`,
    ``AGENT_UNREACHABLE`` → :class:`AgentUnreachableError`), then the status (400, 401, 403, 404, 409 —
    :class:`ConflictError` when the code says other than "host offline" —, 413, 416, 502; other 5xx
    :class:`ServerError`, anything else :class:`ApiError`).

    Args:
        status: the HTTP status (400 or more).
        body: the decoded body: ``{"error": {"code", "message"}}``, a variant of it, text (a proxy's
            HTML page), or None.

    Returns:
        The exception (not raised), its message at most 500 characters of a text body.
    """
    code, message = "", ""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            code = str(err.get("code") or "")
            message = str(err.get("message") or "")
        elif isinstance(err, str):
            message = err
        message = message or str(body.get("message") or body.get("detail") or "")
    elif isinstance(body, str):
        message = body.strip()[:500]
    if not message:
        message = _DEFAULT_MESSAGES.get(status, "request failed")
    cls = _BY_CODE.get(code)
    if cls is None:
        if status == 409 and code and code not in (ErrorCode.HOST_OFFLINE,):
            cls = ConflictError
        else:
            cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return cls(status, code, message, body)


_DEFAULT_MESSAGES = {
    400: "bad request",
    401: "not authenticated: check the API token",
    403: "not allowed",
    404: "not found",
    409: "host is offline",
    413: "request too large",
    416: "range not satisfiable",
    502: "host agent is unreachable",
}
