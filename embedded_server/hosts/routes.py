"""``/hosts``: list, register, get, update, revoke, event streams and live system facts.

Every route is ``async def`` (see deps.py): the DB connection and the event fan-out belong to the event
loop's thread.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import HostCreate, HostRegistration, HostSysInfo, HostUpdate

from .. import limits, protocol
from ..deps import (
    PageQuery,
    Tenant,
    TenantHost,
    hub_of,
    keepalive_of,
    last_event_id,
    sse_response,
    uses_agent,
)
from ..errors import ApiProblem
from ..hub import AgentUnreachable
from ..openapi import raises
from .events import EventLog
from .store import HostStore

router = limits.router(prefix="/hosts", tags=["hosts"])


def store(request: Request) -> HostStore:
    """The application's host store."""
    hosts: HostStore = request.app.state.hosts
    return hosts


def event_stream(request: Request, tenant_id: str, host_id: str | None) -> StreamingResponse:
    """The SSE response of the tenant's host events (one host's when ``host_id`` is given)."""
    events: EventLog = request.app.state.events
    # Subscribe now, before the response's headers go out: once a client sees the stream open, no
    # event can fall between its connecting and the server listening.
    sub = events.subscribe(tenant_id, host_id)
    return sse_response(events.stream(sub, last_event_id(request), keepalive_of(request)))


@router.get("")
async def list_hosts(request: Request, tenant_id: Tenant, paging: PageQuery) -> dict[str, Any]:
    """The tenant's hosts, newest registration first, a page at a time."""
    return paging.body(*store(request).page(tenant_id, paging.page, paging.per_page))


@router.post("", status_code=201)
async def register_host(request: Request, tenant_id: Tenant, spec: HostCreate) -> dict[str, Any]:
    """Register a host: 201 with the host and its host key (shown this once)."""
    registration: HostRegistration = store(request).create(tenant_id, spec)
    return registration.model_dump(mode="json")


@router.get("/events")
async def tenant_events(request: Request, tenant_id: Tenant) -> StreamingResponse:
    """Every host event of the tenant (extension; declared before ``/{host_id}`` so it wins)."""
    return event_stream(request, tenant_id, None)


@router.get("/{host_id}")
async def get_host(host: TenantHost) -> dict[str, Any]:
    """One host."""
    return host.model_dump(mode="json")


@router.patch("/{host_id}")
@raises(409)
async def update_host(request: Request, host: TenantHost, change: HostUpdate) -> dict[str, Any]:
    """Change a host's name, region or labels; a revoked host is 409."""
    for name in ("name", "labels"):
        if name in change.model_fields_set and getattr(change, name) is None:
            raise ApiProblem(400, ErrorCode.VALIDATION_ERROR, f"{name}: must not be null")
    if host.status == "revoked":
        raise ApiProblem(409, ErrorCode.HOST_REVOKED, f"host {host.id} is revoked")
    return store(request).update(host, change).model_dump(mode="json")


@router.delete("/{host_id}", status_code=204)
@raises(409)
async def revoke_host(request: Request, host: TenantHost, purge: bool = False) -> Response:
    """Revoke for good: the key is refused from now on and a connected agent is closed with 4403;
    the sections' revoke hooks end what ran there. Revoking a revoked host is a no-op (still 204).

    ``?purge=true`` (extension) deletes a revoked host's record and everything kept about it (jobs and
    their output, tunnels, secrets, sessions …): 204, then it is 404. A host not revoked yet is
    ``409 CONFLICT`` (revoke first, so no agent can still be using what is deleted)."""
    if purge:
        if host.status != "revoked":
            raise ApiProblem(409, ErrorCode.CONFLICT, f"host {host.id} is not revoked: revoke it first")
        await hub_of(request).purge(host.id)
        store(request).purge(host)
        return Response(status_code=204)
    store(request).set_status(host.id, "revoked")
    await hub_of(request).revoke(host.id)
    return Response(status_code=204)


@router.get("/{host_id}/events")
async def host_events(request: Request, host: TenantHost) -> StreamingResponse:
    """The host's events (SSE), resumable with ``Last-Event-ID``."""
    return event_stream(request, host.tenant_id, host.id)


@router.get("/{host_id}/sysinfo")
@uses_agent
async def host_sysinfo(request: Request, host: TenantHost) -> dict[str, Any]:
    """Live facts from the agent (extension)."""
    if host.status == "revoked":
        raise ApiProblem(409, ErrorCode.HOST_REVOKED, f"host {host.id} is revoked")
    result = await hub_of(request).call(host.id, protocol.SysInfo())
    try:
        info = HostSysInfo.model_validate(result)
    except ValueError:
        raise AgentUnreachable("the agent answered sys.info with a malformed result") from None
    return info.model_dump(mode="json")
