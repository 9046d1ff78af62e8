"""Terminal and desktop tickets: single-use, short-lived, bound to one tenant, host and kind.

A ticket is what a session WebSocket authenticates with (browsers cannot set an Authorization header on
a WebSocket). Only a SHA-256 hash of each ticket is kept, in memory: a ticket lives 30 s, so a server
restart forgetting them costs a client one retry. Redeeming removes the ticket whatever the outcome.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from starlette.websockets import WebSocket

from oc_tui.api.models import Host, Ticket, utcnow

from .. import protocol
from ..hosts.store import HostStore
from ..hub import Hub
from ..ids import new_id
from ..settings import Settings

PATHS = {"terminal": protocol.TERMINAL_PATH, "desktop": protocol.DESKTOP_PATH}


@dataclass(frozen=True)
class Grant:
    """What a redeemed ticket lets its bearer open."""

    tenant_id: str
    host_id: str
    kind: str


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def ws_base(http_url: str) -> str:
    """``http://…`` → ``ws://…``, ``https://…`` → ``wss://…``."""
    if http_url.startswith("https://"):
        return "wss://" + http_url[len("https://") :]
    if http_url.startswith("http://"):
        return "ws://" + http_url[len("http://") :]
    return http_url


class TicketStore:
    """The tickets issued and not yet redeemed (hashes only, in memory)."""

    def __init__(self, hosts: HostStore, hub: Hub, settings: Settings) -> None:
        self.hosts = hosts
        self.hub = hub
        self.settings = settings
        self._tickets: dict[str, tuple[Grant, float]] = {}  # digest -> (grant, monotonic deadline)

    def issue(self, host: Host, kind: str) -> Ticket:
        """A new ticket for a ``kind`` (``terminal``/``desktop``) session on ``host``, with its ``ws_url``."""
        now = time.monotonic()
        self._tickets = {d: entry for d, entry in self._tickets.items() if entry[1] > now}
        ticket = new_id("ticket")
        ttl = self.settings.ticket_ttl
        self._tickets[_digest(ticket)] = (Grant(host.tenant_id, host.id, kind), now + ttl)
        url = f"{ws_base(self.settings.base_url)}{PATHS[kind]}?ticket={quote(ticket)}"
        return Ticket(ticket=ticket, ws_url=url, expires_at=utcnow() + timedelta(seconds=ttl))

    def redeem(self, ticket: str, kind: str) -> Grant | str:
        """The ticket's grant, or why it is refused (the close reason). Single use: it is gone after."""
        entry = self._tickets.pop(_digest(ticket), None)
        if entry is None:
            return "ticket is unknown or already used; ask for a new one"
        grant, deadline = entry
        if deadline <= time.monotonic():
            return f"ticket expired (tickets are valid for {self.settings.ticket_ttl:g} s); ask for a new one"
        if grant.kind != kind:
            return f"this is a {grant.kind} ticket, not a {kind} ticket"
        return grant

    async def admit(self, ws: WebSocket, kind: str) -> Grant | None:
        """Accept a session WebSocket if its ``?ticket=`` is good and the host reachable; else close it
        with a code and a reason that says why (protocol.CLOSE_*), and return None."""
        await ws.accept()
        verdict = self.redeem(ws.query_params.get("ticket", ""), kind)
        if isinstance(verdict, str):
            await ws.close(protocol.CLOSE_TICKET_REFUSED, verdict)
            return None
        host = self.hosts.get(verdict.tenant_id, verdict.host_id)
        if host is None or host.status == "revoked":
            await ws.close(protocol.CLOSE_SESSION_HOST_GONE, f"host {verdict.host_id} is revoked")
            return None
        if not self.hub.is_online(host.id):
            await ws.close(protocol.CLOSE_SESSION_HOST_OFFLINE, f"host {host.id} is offline")
            return None
        return verdict
