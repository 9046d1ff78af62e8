"""The sessions section: terminal and desktop tickets, their WebSockets, and the bridge that joins a
client's socket to the stream the agent dials back."""

from __future__ import annotations

from fastapi import FastAPI

from ..deps import API_PREFIX
from ..hub import Hub
from .bridge import Sessions
from .routes import add_websockets, router
from .tickets import TicketStore


def install(app: FastAPI) -> None:
    """Create the ticket store (``app.state.tickets``) and the live sessions, end a revoked host's
    sessions, and add the ticket routes and the session WebSockets."""
    hub: Hub = app.state.hub
    tickets = TicketStore(app.state.hosts, hub, app.state.settings)
    sessions = Sessions(hub)
    app.state.tickets = tickets
    hub.on_revoke(sessions.host_revoked)
    app.include_router(router, prefix=API_PREFIX)
    add_websockets(app, tickets, sessions)
