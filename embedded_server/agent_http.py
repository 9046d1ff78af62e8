"""HTTP/1.1 to a port of a host, over agent request streams: what tunnels (``/t/<slug>/``) and inference
clusters (``/inference/<slug>/v1``) both proxy with.

The control plane speaks HTTP/1.1 to the host's app itself (httpcore) over a byte stream the agent
relays (``tunnel.connect``): httpcore's connection pool runs on :class:`AgentBackend`, whose "TCP
connections" are agent request streams. Each stream is a WebSocket of its own, so every request has its
own flow control (a big download never holds up the others) and an idle stream is kept for the next
request to the same target, which saves the agent round trip and the stream's dial. Bodies flow chunk by
chunk with back pressure both ways, so no body sits in memory.

A pool's URL host is a *key* the section resolves to a host ID (a tunnel ID for tunnels, a host ID for
clusters), so connections are pooled per key and port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Protocol

import anyio
import httpcore
from fastapi import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from oc_tui.api.errors import ErrorCode

from . import protocol
from .errors import ApiProblem
from .hub import AgentStream, Hub

log = logging.getLogger("oc_server.agent_http")

QUEUED_FRAMES = 4  # frames read ahead from a stream before back pressure holds the agent
POOL_CONNECTIONS = 1000  # streams open at once in one pool
POOL_IDLE = 64  # idle streams kept for reuse
IDLE_EXPIRY = 30.0  # seconds an idle stream is kept
STREAM_ERRORS = (RuntimeError, OSError, WebSocketDisconnect)
UPSTREAM_ERRORS = (ApiProblem, httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException)
"""What a request through the pool may fail with before its answer starts."""
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "expect",  # 100-continue is between the client and the control plane
    }
)
RESPONSE_DROPPED = (HOP_BY_HOP - {"host"}) | {"date", "server"}
NO_TIMEOUTS = {"connect": None, "read": None, "write": None, "pool": None}


class Closable(Protocol):
    """Something open on behalf of a key (a tunnel's stream, a relay) that its owner can close."""

    async def aclose(self) -> None:
        """Close it (closing twice is harmless)."""
        ...


class AgentSocket(httpcore.AsyncNetworkStream):
    """An agent request stream as httpcore's network stream: binary frames are the TCP bytes.

    A reader task reads a few frames ahead (:data:`QUEUED_FRAMES`), so the pool can tell an idle stream
    the app has closed (``is_readable``) from one it may reuse; past that the agent waits (back pressure).
    """

    def __init__(self, stream: AgentStream, on_close: Callable[[Closable], None]) -> None:
        self.stream = stream
        self._on_close = on_close
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUED_FRAMES)
        self._buffer = memoryview(b"")
        self._eof = False
        self._reader = asyncio.get_running_loop().create_task(self._read_ahead())

    async def _read_ahead(self) -> None:
        try:
            while (frame := await self.stream.receive_frame()) is not None:
                if isinstance(frame, bytes) and frame:
                    await self._queue.put(frame)
        finally:
            self._eof = True
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Up to ``max_bytes`` of the app's bytes; ``b""`` once the stream has ended."""
        if not self._buffer:
            try:
                async with asyncio.timeout(timeout):
                    frame = await self._queue.get() if not (self._eof and self._queue.empty()) else None
            except TimeoutError:
                raise httpcore.ReadTimeout("the app did not answer in time") from None
            if frame is None:
                self._eof = True
                with contextlib.suppress(asyncio.QueueFull):
                    self._queue.put_nowait(None)  # every later read sees the end too
                return b""
            self._buffer = memoryview(frame)
        data, self._buffer = bytes(self._buffer[:max_bytes]), self._buffer[max_bytes:]
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send ``buffer`` to the app (waits while the stream is full)."""
        if not buffer:
            return
        try:
            async with asyncio.timeout(timeout):
                await self.stream.send_bytes(buffer)
        except TimeoutError:
            raise httpcore.WriteTimeout("the app did not take the request in time") from None
        except STREAM_ERRORS:
            raise httpcore.WriteError("the connection to the app closed") from None

    async def aclose(self) -> None:
        """Close the stream (the agent closes its connection to the app)."""
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.stream.close()
        self._on_close(self)

    def get_extra_info(self, info: str) -> Any:
        """``is_readable``: the app closed an idle stream (or sent something unasked): do not reuse it."""
        if info == "is_readable":
            return self._eof or not self._queue.empty()
        return None


class AgentBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network over agents: "connecting" to ``(key, port)`` opens an agent stream to
    ``127.0.0.1:port`` on the host the key resolves to.

    Args:
        hub: the connected agents.
        host_of: the host ID of a key (None: the key's owner is gone: 404 ``gone``).
        track, forget: called with the key and each socket it opens / once it closed (so the owner can
            end a key's sockets).
        gone: the 404 message when ``host_of`` answers None.
    """

    def __init__(
        self,
        hub: Hub,
        host_of: Callable[[str], str | None],
        track: Callable[[str, Closable], None],
        forget: Callable[[str, Closable], None],
        gone: str = "it was deleted",
    ) -> None:
        self.hub = hub
        self.host_of = host_of
        self.track = track
        self.forget = forget
        self.gone = gone
        self.connects = 0  # streams opened so far (a reused one is not counted again)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """A new stream to ``127.0.0.1:port`` on the key's host.

        Raises:
            ApiProblem: the hub's errors (host offline, the agent's NOT_LISTENING …), 404 the key is gone.
        """
        host_id = self.host_of(host)
        if host_id is None:
            raise ApiProblem(404, ErrorCode.NOT_FOUND, self.gone)
        _, stream = await self.hub.open_stream(host_id, protocol.TunnelConnect(port=port))
        self.connects += 1
        socket = AgentSocket(stream, lambda closed: self.forget(host, closed))
        self.track(host, socket)
        return socket

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        """Not used: hosts are reached on TCP ports only."""
        raise httpcore.ConnectError("only TCP ports of a host are reached")

    async def sleep(self, seconds: float) -> None:
        """Sleep (httpcore's retry back-off)."""
        await asyncio.sleep(seconds)


class AgentPool:
    """An httpcore pool over :class:`AgentBackend` that remembers each key's open sockets.

    Args:
        hub: the connected agents.
        host_of: the host ID of a key (None: gone).
        gone: the 404 message for a key that is gone.
    """

    def __init__(self, hub: Hub, host_of: Callable[[str], str | None], gone: str = "it was deleted") -> None:
        self._open: dict[str, set[Closable]] = {}
        self.backend = AgentBackend(hub, host_of, self.track, self.forget, gone)
        self.pool = httpcore.AsyncConnectionPool(
            network_backend=self.backend,
            max_connections=POOL_CONNECTIONS,
            max_keepalive_connections=POOL_IDLE,
            keepalive_expiry=IDLE_EXPIRY,
        )

    def track(self, key: str, item: Closable) -> None:
        """Remember ``item`` as open for ``key``."""
        self._open.setdefault(key, set()).add(item)

    def forget(self, key: str, item: Closable) -> None:
        """``item`` of ``key`` closed."""
        items = self._open.get(key)
        if items is not None:
            items.discard(item)
            if not items:
                del self._open[key]

    def open_count(self, key: str) -> int:
        """Streams open for ``key`` now (idle or busy)."""
        return len(self._open.get(key, ()))

    async def end(self, key: str) -> None:
        """Close every stream of ``key``: requests in flight break."""
        for item in list(self._open.pop(key, ())):
            with contextlib.suppress(Exception):
                await item.aclose()

    async def send(
        self,
        key: str,
        port: int,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        content: bytes | AsyncIterator[bytes],
    ) -> httpcore.Response:
        """One request to ``127.0.0.1:port`` on the key's host through the pool (a reused stream, or a
        new one); returns once the response head is in, its body still to read (``aiter_stream``,
        then ``aclose``).

        A kept-alive stream the app closed just as it was reused ("disconnected without sending a
        response": the app's keep-alive expired) is tried once more on a new stream when the body is
        bytes (a streamed body cannot be sent twice).

        Raises:
            One of :data:`UPSTREAM_ERRORS`.
        """
        url = httpcore.URL(scheme="http", host=key, port=port, target=target)
        extensions = {"timeout": NO_TIMEOUTS}
        request = httpcore.Request(method, url, headers=headers, content=content, extensions=extensions)
        try:
            return await self.pool.handle_async_request(request)
        except httpcore.RemoteProtocolError:
            if not isinstance(content, bytes):
                raise
            request = httpcore.Request(method, url, headers=headers, content=content, extensions=extensions)
            return await self.pool.handle_async_request(request)

    async def close(self) -> None:
        """Close the pool (server stopping)."""
        await self.pool.aclose()


class UpstreamResponse(Response):
    """The app's response, streamed to the client chunk by chunk as it arrives (SSE event by event).

    The client going away ends the upstream request (the agent closes its connection to the app); the
    upstream breaking cuts the client's connection rather than pretending the body was complete.

    Args:
        upstream: the app's response (its head read).
        headers: the headers to send the client.
        on_chunk: called with each body chunk before it is sent.
        on_end: called once at the end with None (the whole body went out) or why it did not.
        first: body bytes read from the upstream already (sent first).
        body: the rest of the body when ``first`` was read from it (default: the upstream's body).
    """

    def __init__(
        self,
        upstream: httpcore.Response,
        headers: list[tuple[str, str]],
        on_chunk: Callable[[bytes], None],
        on_end: Callable[[str | None], None],
        first: bytes = b"",
        body: AsyncIterator[bytes] | None = None,
    ) -> None:
        super().__init__(status_code=upstream.status)
        self.upstream = upstream
        self.on_chunk = on_chunk
        self.on_end = on_end
        self.first = first
        self.rest = body
        self.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the status and headers, then the body; stop when either side is done."""
        complete = False
        why = "the client went away"
        async with anyio.create_task_group() as group:

            async def listen() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            async def stream() -> None:
                nonlocal complete, why
                await send(
                    {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
                )
                try:
                    if self.first:
                        self.on_chunk(self.first)
                        await send({"type": "http.response.body", "body": self.first, "more_body": True})
                    async for chunk in self.rest or chunks(self.upstream):
                        self.on_chunk(chunk)
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    complete = True
                except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException) as exc:
                    why = why_failed(exc)
                    log.info("a proxied response broke off: %s", why)
                if complete:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                group.cancel_scope.cancel()

            group.start_soon(listen)
            group.start_soon(stream)
        with anyio.CancelScope(shield=True):
            await self.upstream.aclose()
        self.on_end(None if complete else why)


def chunks(response: httpcore.Response) -> AsyncIterator[bytes]:
    """The body of an upstream response, chunk by chunk as the app sends it."""
    body: AsyncIterator[bytes] = response.aiter_stream()
    return body


def why_failed(exc: Exception) -> str:
    """A one-line reason for an upstream failure (an ApiProblem's message, else the error's text)."""
    return exc.message if isinstance(exc, ApiProblem) else str(exc) or type(exc).__name__


def response_headers(response: httpcore.Response) -> list[tuple[str, str]]:
    """The app's response headers as the client gets them: hop-by-hop ones dropped, and ``Date`` and
    ``Server``, which the control plane's own server sends (one of each)."""
    return [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in response.headers
        if k.decode("latin-1").lower() not in RESPONSE_DROPPED
    ]
