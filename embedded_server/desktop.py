"""The desktop session: bridges a client's WebSocket to the host agent's (placeholder until it is built)."""

from __future__ import annotations

from starlette.websockets import WebSocket

from . import protocol
from .hub import Hub
from .tickets import Grant


async def serve(ws: WebSocket, hub: Hub, grant: Grant) -> None:
    await ws.close(protocol.CLOSE_SESSION_AGENT_FAILED, "desktop sessions are not built yet")
