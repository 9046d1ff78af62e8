"""Route dependencies every section shares: the tenant, the tenant's host, path IDs, paging, "the host
must be online", the section's own state, and the SSE response.

Every dependency here is ``async def`` on purpose: FastAPI runs plain ``def`` ones in a thread pool, and
the database connection, the hub and the live streams belong to the event loop's thread.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from fastapi.responses import StreamingResponse

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import Host, is_valid_id

from . import protocol
from .auth import current_tenant
from .errors import ApiProblem
from .hub import HostOffline, Hub
from .openapi import raises

API_PREFIX = "/api/v1/opencomputers"  # where every section's routes are mounted

Tenant = Annotated[str, Depends(current_tenant)]


def hub_of(request: Request) -> Hub:
    """The application's hub (connected agents)."""
    hub: Hub = request.app.state.hub
    return hub


def path_id(kind: str, label: str) -> Callable[..., Coroutine[Any, Any, str]]:
    """A dependency that checks the path's ``{kind}_id`` has the shape of a ``kind`` ID.

    The path parameter is declared in the dependency's signature, so the OpenAPI document names it.

    Args:
        kind: the ID kind (``host``, ``job`` …; see ``oc_tui.api.models.ID_PREFIXES``).
        label: how the error message names it, e.g. ``"job (job_…)"``.

    Returns:
        The dependency; it answers the path parameter's value, or raises 400 INVALID_ID.
    """
    name = f"{kind}_id"

    @raises(400)
    async def check(**values: str) -> str:
        value = values[name]
        if not is_valid_id(kind, value):
            raise ApiProblem(400, ErrorCode.INVALID_ID, f"{value!r} is not a valid {label} ID")
        return value

    parameter = inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[str, Path(description=f"the {label} ID")],
    )
    check.__signature__ = inspect.Signature([parameter], return_annotation=str)  # type: ignore[attr-defined]
    return check


valid_host_id = path_id("host", "host (host_…)")


@raises(404)
async def tenant_host(
    request: Request, tenant_id: Tenant, host_id: Annotated[str, Depends(valid_host_id)]
) -> Host:
    """The path's host, if it is this tenant's: another tenant's host is 404, never 403."""
    host: Host | None = request.app.state.hosts.get(tenant_id, host_id)
    if host is None:
        raise ApiProblem(404, ErrorCode.NOT_FOUND, f"host {host_id} not found")
    return host


TenantHost = Annotated[Host, Depends(tenant_host)]


def require_online(request: Request, host: Host) -> None:
    """Raise 409 unless the host's agent is connected now: HOST_REVOKED or HOST_OFFLINE."""
    if host.status == "revoked":
        raise ApiProblem(409, ErrorCode.HOST_REVOKED, f"host {host.id} is revoked")
    if not hub_of(request).is_online(host.id):
        raise HostOffline()


AGENT_ERRORS = (409, 502, *protocol.AGENT_ERROR_STATUS.values())
"""What a route that asks the host's agent can answer: offline/revoked (409), unreachable (502) and every
status an agent error maps to."""
uses_agent = raises(*AGENT_ERRORS)
"""Mark an endpoint that asks the host's agent (for the OpenAPI document)."""


@uses_agent
async def online_host(request: Request, host: TenantHost) -> Host:
    """The path's host (as :func:`tenant_host`) whose agent is connected now (409 otherwise)."""
    require_online(request, host)
    return host


OnlineHost = Annotated[Host, Depends(online_host)]


MAX_PAGE = 2**31 - 1
"""The highest ``?page=`` (400 above it): the page's offset must stay within SQLite's 64-bit integers."""
MAX_EVENT_ID = 2**63 - 1
"""The highest ``Last-Event-ID`` (400 above it): event ids are SQLite's 64-bit integers."""


class Paging:
    """``?page=&per_page=`` as the reference's hosts list has them, for every list."""

    def __init__(
        self,
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
        per_page: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> None:
        self.page, self.per_page = page, per_page

    def body(self, items: list[Any], total: int) -> dict[str, Any]:
        """The reference's list shape: ``{data, meta: {total, page, per_page}}``."""
        return {
            "data": [item.model_dump(mode="json") for item in items],
            "meta": {"total": total, "page": self.page, "per_page": self.per_page},
        }


PageQuery = Annotated[Paging, Depends()]


def last_event_id(request: Request) -> int | None:
    """The SSE ``Last-Event-ID`` to resume after; anything that is not ours (not ASCII digits) starts live.

    Raises:
        ApiProblem: 400 VALIDATION_ERROR for digits above :data:`MAX_EVENT_ID` (no id of ours is).
    """
    value = request.headers.get("last-event-id", "").strip()
    if not (value.isascii() and value.isdigit()):
        return None
    if len(value) > len(str(MAX_EVENT_ID)) or int(value) > MAX_EVENT_ID:
        raise ApiProblem(400, ErrorCode.VALIDATION_ERROR, f"Last-Event-ID must be at most {MAX_EVENT_ID}")
    return int(value)


def keepalive_of(request: Request) -> float:
    """Seconds of silence after which an SSE stream sends a keep-alive comment."""
    return float(request.app.state.settings.keepalive_interval)


def sse_response(
    body: AsyncIterator[str] | AsyncIterator[bytes], media_type: str = "text/event-stream"
) -> StreamingResponse:
    """A ``text/event-stream`` response for ``body`` (see ``durable.sse``), unbuffered by proxies; another
    ``media_type`` for the binary frames of the same stream."""
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type=media_type, headers=headers)
