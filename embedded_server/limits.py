"""Refuse request bodies over the limit with 413 before they are read into memory."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oc_tui.api.errors import ErrorCode

from .errors import error_response


class _TooLarge(BaseException):
    """A BaseException so that no route or framework handler on the way up turns it into a 400/500."""


# Routes whose bodies stream through instead of being read into memory (path suffixes): exempt.
UNLIMITED_SUFFIXES = ("/fs/upload",)


class BodyLimit:
    """ASGI middleware: checks Content-Length up front and counts streamed (chunked) bodies."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].endswith(UNLIMITED_SUFFIXES):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await self._refuse(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body is larger than {self.max_body} bytes"
        response = error_response(413, ErrorCode.PAYLOAD_TOO_LARGE, message, {"Connection": "close"})
        await response(scope, receive, send)
