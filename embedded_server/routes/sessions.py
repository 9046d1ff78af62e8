"""``/hosts/{id}/terminal/ticket`` and ``/hosts/{id}/desktop/ticket``: tickets for the session WebSockets.

Only for a host whose agent is connected (409 otherwise): the reference says to connect at once.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..tickets import TicketStore
from .hosts import TenantHost, usable

router = APIRouter(prefix="/hosts", tags=["sessions"])


def tickets(request: Request) -> TicketStore:
    return request.app.state.tickets


@router.post("/{host_id}/terminal/ticket", status_code=201)
async def terminal_ticket(request: Request, host: TenantHost) -> dict[str, Any]:
    usable(request, host)
    return tickets(request).issue(host, "terminal").model_dump(mode="json")


@router.post("/{host_id}/desktop/ticket", status_code=201)
async def desktop_ticket(request: Request, host: TenantHost) -> dict[str, Any]:
    usable(request, host)
    return tickets(request).issue(host, "desktop").model_dump(mode="json")
