"""The desktop session: the client's WebSocket joined to the host's VNC server, as raw RFB bytes.

The agent connects to the VNC server it is configured for, authenticates there (its password), and
offers the client RFB security type None: the ticket is the client's authentication (docs/api.md).
"""

from __future__ import annotations

from starlette.websockets import WebSocket

from .bridge import serve_session
from .hub import Hub
from .tickets import Grant


async def serve(ws: WebSocket, hub: Hub, grant: Grant) -> None:
    await serve_session(ws, hub, grant, "vnc.open", {})
