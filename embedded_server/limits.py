"""Body-size limits as a property of the route: over the limit is 413 before the body is read into memory.

Every section's router uses :class:`LimitedRoute` (``APIRouter(route_class=LimitedRoute)``, see
:func:`router`); a route whose body streams through instead of being held (an upload, later a proxied
tunnel body) opts out by decorating its endpoint with :func:`unlimited_body`. The limit is the
application's ``settings.max_body``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.types import Message, Receive, Scope, Send

from oc_tui.api.errors import ErrorCode

from . import openapi
from .errors import error_response

F = TypeVar("F", bound=Callable[..., Any])

_UNLIMITED = "__oc_unlimited_body__"


class _TooLarge(BaseException):
    """A BaseException so that no route or framework handler on the way up turns it into a 400/500."""


def unlimited_body(endpoint: F) -> F:
    """Mark a route's endpoint as reading its body as a stream: no body-size limit applies to it.

    Apply it under the router's decorator (``@router.post(...)`` then ``@unlimited_body``)."""
    setattr(endpoint, _UNLIMITED, True)
    return endpoint


class LimitedRoute(APIRoute):
    """An API route that refuses bodies over ``settings.max_body`` with 413 PAYLOAD_TOO_LARGE.

    Content-Length is checked up front; a streamed (chunked) body is counted as it is read. Its
    ``responses`` (the OpenAPI document) get every error status its dependencies declare
    (:func:`embedded_server.openapi.declared_errors`).
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        limited = not getattr(endpoint, _UNLIMITED, False)
        declared = openapi.error_responses(openapi.declared_errors(self.dependant, limited_body=limited))
        self.responses = {**declared, **self.responses}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the route with its body limited (unless the endpoint is :func:`unlimited_body`)."""
        if getattr(self.endpoint, _UNLIMITED, False) or scope["type"] != "http":
            await super().handle(scope, receive, send)
            return
        max_body: int = scope["app"].state.settings.max_body
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > max_body:
            await _refuse(max_body, scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > max_body:
                raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await super().handle(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _refuse(max_body, scope, receive, send)


async def _refuse(max_body: int, scope: Scope, receive: Receive, send: Send) -> None:
    message = f"request body is larger than {max_body} bytes"
    response = error_response(413, ErrorCode.PAYLOAD_TOO_LARGE, message, {"Connection": "close"})
    await response(scope, receive, send)


def router(**kwargs: Any) -> APIRouter:
    """An APIRouter whose routes have the body limit (keyword arguments as ``APIRouter``'s)."""
    return APIRouter(route_class=LimitedRoute, **kwargs)
