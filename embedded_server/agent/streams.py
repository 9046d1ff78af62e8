"""Streams the agent dials back to the server, each a WebSocket of its own (docs/protocol.md).

A request stream (a file body, a PTY, an RFB session) is dialled once, with the request's ``stream_id``:
the capability registry answers the request first (errors such as "no such file" travel in that
answer), then calls :meth:`StreamDialer.spawn` with a coroutine that serves the stream's WebSocket. A
durable stream (a job's output, :mod:`.durable`) is dialled again and again with its owner's id through
:meth:`StreamDialer.open`. Each stream is a WebSocket of its own, so bulk bytes never wait behind the
control connection or each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from ..race import until_first_ends
from .dial import MAX_FRAME, WRITE_LIMIT, dial

log = logging.getLogger("oc_agent.streams")

ServeStream = Callable[[ClientConnection], Awaitable[None]]


class StreamDialer:
    """Dials ``/opencomputers/ws/agent/stream?<key>=<id>`` for request streams and durable streams.

    Stream dials carry the stream key of the agent's current control connection (``welcome``'s
    ``stream_key``), never the host key: only the machine that proved its identity opens streams.

    Args:
        url: the stream endpoint, ``ws(s)://…/opencomputers/ws/agent/stream``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.key: str | None = None
        """The stream key of the last welcome (None before the first): set by the connection."""
        self._tasks: set[asyncio.Task[None]] = set()

    def open(
        self, key: str, owner_id: str, *, max_size: int = MAX_FRAME, write_limit: int = WRITE_LIMIT
    ) -> connect:
        """The connector for the stream of ``owner_id`` (query ``?key=owner_id``); see :func:`.dial.dial`.

        Raises:
            ConnectionError: no welcome yet (no stream key): retried like any failed dial.
        """
        if self.key is None:
            raise ConnectionError("not connected to the control plane yet")
        return dial(
            f"{self.url}?{urlencode({key: owner_id})}",
            self.key,
            max_size=max_size,
            write_limit=write_limit,
        )

    def spawn(self, stream_id: str, serve: ServeStream, *, on_fail: Callable[[], None] | None = None) -> None:
        """Dial the request stream ``stream_id`` and run ``serve(ws)`` on it, in a task of its own.

        Args:
            stream_id: the ``st_…`` id the server put in the request.
            serve: serves the stream until it ends; its errors are logged, never raised.
            on_fail: runs when the stream could not be dialled (to release what the handler opened).
        """
        task = asyncio.get_running_loop().create_task(self._run(stream_id, serve, on_fail))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, stream_id: str, serve: ServeStream, on_fail: Callable[[], None] | None) -> None:
        served = False
        try:
            async with self.open("stream_id", stream_id) as ws:
                served = True
                await serve(ws)
        except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake) as exc:
            log.warning("stream %s ended: %s", stream_id, type(exc).__name__)
        except Exception:
            log.exception("stream %s failed", stream_id)
        finally:
            if not served and on_fail is not None:
                on_fail()

    def close(self) -> None:
        """Cancel the request streams still running (the agent is stopping)."""
        for task in list(self._tasks):
            task.cancel()


async def relay(
    ws: ClientConnection,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    peer_closed: str,
    chunk: int,
) -> None:
    """Bytes both ways between a stream and a TCP connection until one side ends; then end the other.

    Each direction waits for the other end to take what it sent (``drain``, the WebSocket's write
    limit), so neither side buffers more than a frame or two.

    Args:
        ws: the stream's WebSocket (binary frames carry the bytes; text frames are ignored).
        reader, writer: the TCP connection.
        peer_closed: the stream's close reason when the TCP peer ended first.
        chunk: the most TCP bytes sent in one binary frame.
    """
    reason = [peer_closed]  # emptied when the stream's other end ended the relay

    async def to_peer() -> None:
        async for frame in ws:
            if isinstance(frame, bytes):
                writer.write(frame)
                await writer.drain()
        reason[0] = ""

    async def to_stream() -> None:
        while True:
            data = await reader.read(chunk)
            if not data:
                return
            await ws.send(data)

    try:
        await until_first_ends(to_peer(), to_stream(), ignore=(ConnectionClosed, OSError))
    finally:
        writer.close()
        with contextlib.suppress(ConnectionClosed, OSError):
            await ws.close(1000, reason[0])
