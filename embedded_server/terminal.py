"""The terminal session: the client's WebSocket joined to a login shell on a PTY of the host.

Framing (docs/api.md): binary frames are the PTY's bytes both ways; text frames are JSON control
messages: ``{"type": "resize", "cols", "rows"}`` from the client, ``{"type": "exit", …}`` from the agent
before it closes. The first size may also come as ``?cols=&rows=`` on the WebSocket URL.
"""

from __future__ import annotations

from starlette.websockets import WebSocket

from .bridge import serve_session
from .hub import Hub
from .tickets import Grant

DEFAULT_SIZE = (80, 24)


def _size(value: str | None, default: int) -> int:
    return int(value) if value and value.isdigit() and 1 <= int(value) <= 1000 else default


async def serve(ws: WebSocket, hub: Hub, grant: Grant) -> None:
    cols = _size(ws.query_params.get("cols"), DEFAULT_SIZE[0])
    rows = _size(ws.query_params.get("rows"), DEFAULT_SIZE[1])
    await serve_session(ws, hub, grant, "pty.open", {"cols": cols, "rows": rows})
