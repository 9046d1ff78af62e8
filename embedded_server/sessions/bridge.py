"""A client's session WebSocket (terminal, desktop) joined to the stream its host's agent dials back.

The server adds nothing to a session's bytes: binary frames pass through as they are in both
directions, and so do the small JSON text frames (resize, exit) whose meaning the agent and the client
agree on (docs/api.md). Whichever side ends first ends the other: a client that goes away closes the
agent's stream (the agent then ends the shell or the VNC connection); an agent that ends the session
closes the client's socket with the agent's code and reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from .. import protocol
from ..errors import ApiProblem
from ..hub import AgentStream, Hub
from .tickets import Grant

log = logging.getLogger("oc_server.bridge")

MAX_REASON = 120  # bytes: a close reason must fit in a control frame (125) with its code


def close_reason(text: str) -> str:
    """``text`` cut to what fits in a close frame (whole UTF-8 characters only)."""
    data = text.encode()[:MAX_REASON]
    return data.decode(errors="ignore")


class Sessions:
    """The live terminal and desktop sessions, by host (a revoked host's are ended)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._live: dict[str, set[WebSocket]] = {}

    async def serve(self, ws: WebSocket, grant: Grant, call: protocol.StreamCall) -> None:
        """Ask the agent to open the session (``call``), then pipe frames until one side ends."""
        try:
            _result, stream = await self.hub.open_stream(grant.host_id, call)
        except ApiProblem as exc:
            code = (
                protocol.CLOSE_SESSION_HOST_OFFLINE
                if exc.status == 409
                else protocol.CLOSE_SESSION_AGENT_FAILED
            )
            await _close(ws, code, exc.message)
            return
        live = self._live.setdefault(grant.host_id, set())
        live.add(ws)
        try:
            async with stream:
                code, reason = await pipe(ws, stream)
        finally:
            live.discard(ws)
            if not live:
                self._live.pop(grant.host_id, None)
        await _close(ws, code, reason)

    async def host_revoked(self, host_id: str) -> None:
        """End the host's sessions: each client is closed with 4404 (host revoked)."""
        for ws in list(self._live.get(host_id, ())):
            await _close(ws, protocol.CLOSE_SESSION_HOST_GONE, f"host {host_id} is revoked")


async def pipe(client: WebSocket, stream: AgentStream) -> tuple[int, str]:
    """Frames both ways until either side closes; the close code and reason to give the client."""
    ended: dict[str, Any] = {"code": 1000, "reason": ""}

    async def upstream() -> None:  # client -> agent
        while True:
            message = await client.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await stream.send_bytes(message["bytes"])
            elif message.get("text") is not None:
                await stream.send_text(message["text"])

    async def downstream() -> None:  # agent -> client
        while True:
            frame = await stream.receive_frame()
            if frame is None:
                code = stream.close_code or 1000
                ended["code"] = code if code == 1000 or 4000 <= code < 5000 else 1011
                ended["reason"] = stream.close_reason
                return
            if isinstance(frame, bytes):
                await client.send_bytes(frame)
            else:
                await client.send_text(frame)

    tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError, OSError):
                await task
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, WebSocketDisconnect | RuntimeError | OSError):
                log.warning("session pipe failed: %r", exc)
    return ended["code"], ended["reason"]


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    """Close the client's socket; a client that already went away is no error (nothing to tell it)."""
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        await ws.close(code, close_reason(reason))
