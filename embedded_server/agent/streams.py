"""Streams the agent dials back for one request: a file body, a PTY, an RFB session (docs/protocol.md).

A handler that needs a stream answers its request first (errors such as "no such file" travel in that
answer), then calls :meth:`StreamDialer.spawn` with the request's ``stream_id`` and a coroutine that
serves the stream's WebSocket. Each stream is a WebSocket of its own, so bulk bytes never wait behind
the control connection or each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

log = logging.getLogger("oc_agent.streams")

DIAL_TIMEOUT = 10.0
MAX_FRAME = 16 * 1024 * 1024

ServeStream = Callable[[ClientConnection], Awaitable[None]]


class StreamDialer:
    def __init__(self, url: str, host_key: str) -> None:
        self.url = url  # ws(s)://…/opencomputers/ws/agent/stream
        self.host_key = host_key
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, stream_id: str, serve: ServeStream, *, on_fail: Callable[[], None] | None = None) -> None:
        """Dial the stream for ``stream_id`` and run ``serve(ws)`` on it, in a task of its own.

        ``on_fail`` runs when the stream could not be dialled (to release what the handler opened).
        """
        task = asyncio.get_running_loop().create_task(self._run(stream_id, serve, on_fail))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, stream_id: str, serve: ServeStream, on_fail: Callable[[], None] | None) -> None:
        url = f"{self.url}?stream_id={quote(stream_id)}"
        served = False
        try:
            async with connect(
                url,
                additional_headers={"Authorization": f"Bearer {self.host_key}"},
                open_timeout=DIAL_TIMEOUT,
                ping_interval=None,
                max_size=MAX_FRAME,
                compression=None,
            ) as ws:
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
        for task in list(self._tasks):
            task.cancel()
