"""Terminal and desktop sessions: the ticket routes and the client-side session WebSockets.

``POST /hosts/{id}/terminal/ticket`` and ``/desktop/ticket`` only for a host whose agent is connected
(409 otherwise): the reference says to connect at once. The ticket then opens
``/opencomputers/ws/terminal?ticket=…`` (a PTY, ``pty.open``) or ``/opencomputers/ws/desktop?ticket=…``
(the host's VNC server as raw RFB, ``vnc.open``), joined to the stream the agent dials back (bridge.py).

Terminal framing (docs/api.md): binary frames are the PTY's bytes both ways; text frames are JSON
control messages: ``{"type": "resize", "cols", "rows"}`` from the client, ``{"type": "exit", …}`` from
the agent before it closes. The first size may also come as ``?cols=&rows=`` on the WebSocket URL.
Desktop: the agent authenticates to the VNC server (its password) and offers the client RFB security
type None: the ticket is the client's authentication.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, WebSocket

from .. import limits, protocol
from ..deps import OnlineHost
from .bridge import Sessions
from .tickets import TicketStore

router = limits.router(prefix="/hosts", tags=["sessions"])

DEFAULT_SIZE = (80, 24)


def tickets(request: Request) -> TicketStore:
    """The application's ticket store."""
    store: TicketStore = request.app.state.tickets
    return store


@router.post("/{host_id}/terminal/ticket", status_code=201)
async def terminal_ticket(request: Request, host: OnlineHost) -> dict[str, Any]:
    """A single-use ticket for the host's terminal WebSocket (valid for ``settings.ticket_ttl`` s)."""
    return tickets(request).issue(host, "terminal").model_dump(mode="json")


@router.post("/{host_id}/desktop/ticket", status_code=201)
async def desktop_ticket(request: Request, host: OnlineHost) -> dict[str, Any]:
    """A single-use ticket for the host's desktop WebSocket (valid for ``settings.ticket_ttl`` s)."""
    return tickets(request).issue(host, "desktop").model_dump(mode="json")


def _size(value: str | None, default: int) -> int:
    return int(value) if value and value.isdigit() and 1 <= int(value) <= 1000 else default


def add_websockets(app: FastAPI, ticket_store: TicketStore, sessions: Sessions) -> None:
    """Add the terminal and desktop WebSocket endpoints (outside the API prefix) to ``app``."""

    @app.websocket(protocol.TERMINAL_PATH)
    async def terminal_session(ws: WebSocket) -> None:
        grant = await ticket_store.admit(ws, "terminal")
        if grant is not None:
            cols = _size(ws.query_params.get("cols"), DEFAULT_SIZE[0])
            rows = _size(ws.query_params.get("rows"), DEFAULT_SIZE[1])
            await sessions.serve(ws, grant, protocol.PtyOpen(cols=cols, rows=rows))

    @app.websocket(protocol.DESKTOP_PATH)
    async def desktop_session(ws: WebSocket) -> None:
        grant = await ticket_store.admit(ws, "desktop")
        if grant is not None:
            await sessions.serve(ws, grant, protocol.VncOpen())
