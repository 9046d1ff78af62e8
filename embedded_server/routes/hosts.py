"""``/hosts``: list, register, get, update, revoke, event streams and live system facts.

Every route and dependency here is ``async def`` on purpose: FastAPI runs plain ``def`` ones in a
thread pool, and the database connection and the event fan-out belong to the event loop's thread.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import Host, HostCreate, HostRegistration, HostSysInfo, HostUpdate, is_valid_id

from .. import protocol
from ..auth import current_tenant
from ..errors import ApiProblem
from ..hosts import HostStore
from ..hub import AgentUnreachable, HostOffline, Hub

router = APIRouter(prefix="/hosts", tags=["hosts"])

Tenant = Annotated[str, Depends(current_tenant)]


def store(request: Request) -> HostStore:
    return request.app.state.hosts


def hub(request: Request) -> Hub:
    return request.app.state.hub


def path_id(kind: str, label: str) -> Any:
    """A dependency that checks the path's ``{kind}_id`` has the shape of a ``kind`` ID (400 INVALID_ID)."""

    async def check(request: Request) -> str:
        value = request.path_params[f"{kind}_id"]
        if not is_valid_id(kind, value):
            raise ApiProblem(400, ErrorCode.INVALID_ID, f"{value!r} is not a valid {label} ID")
        return value

    return check


valid_host_id = path_id("host", "host (host_…)")


async def tenant_host(
    request: Request, tenant_id: Tenant, host_id: Annotated[str, Depends(valid_host_id)]
) -> Host:
    """The path's host, if it is this tenant's: another tenant's host is 404, never 403."""
    host = store(request).get(tenant_id, host_id)
    if host is None:
        raise ApiProblem(404, ErrorCode.NOT_FOUND, f"host {host_id} not found")
    return host


TenantHost = Annotated[Host, Depends(tenant_host)]


def usable(request: Request, host: Host) -> None:
    """409 unless the host's agent is connected now: HOST_REVOKED or HOST_OFFLINE."""
    if host.status == "revoked":
        raise ApiProblem(409, ErrorCode.HOST_REVOKED, f"host {host.id} is revoked")
    if host.id not in hub(request).channels:
        raise HostOffline()


def last_event_id(request: Request) -> int | None:
    """The SSE ``Last-Event-ID`` to resume after; anything that is not ours (not an integer) starts live."""
    value = request.headers.get("last-event-id", "").strip()
    return int(value) if value.isdigit() else None


def event_stream(request: Request, tenant_id: str, host_id: str | None) -> StreamingResponse:
    events = request.app.state.events
    # Subscribe now, before the response's headers go out: once a client sees the stream open, no
    # event can fall between its connecting and the server listening.
    sub = events.subscribe(tenant_id, host_id)
    stream = events.stream(sub, last_event_id(request), request.app.state.settings.keepalive_interval)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


class Paging:
    """``?page=&per_page=`` as the reference's hosts list has them, for every list."""

    def __init__(
        self,
        page: Annotated[int, Query(ge=1)] = 1,
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


@router.get("")
async def list_hosts(request: Request, tenant_id: Tenant, paging: PageQuery) -> dict[str, Any]:
    return paging.body(*store(request).page(tenant_id, paging.page, paging.per_page))


@router.post("", status_code=201)
async def register_host(request: Request, tenant_id: Tenant, spec: HostCreate) -> dict[str, Any]:
    registration: HostRegistration = store(request).create(tenant_id, spec)
    return registration.model_dump(mode="json")


@router.get("/events")
async def tenant_events(request: Request, tenant_id: Tenant) -> StreamingResponse:
    """Every host event of the tenant (extension; declared before ``/{host_id}`` so it wins)."""
    return event_stream(request, tenant_id, None)


@router.get("/{host_id}")
async def get_host(host: TenantHost) -> dict[str, Any]:
    return host.model_dump(mode="json")


@router.patch("/{host_id}")
async def update_host(request: Request, host: TenantHost, change: HostUpdate) -> dict[str, Any]:
    for name in ("name", "labels"):
        if name in change.model_fields_set and getattr(change, name) is None:
            raise ApiProblem(400, ErrorCode.VALIDATION_ERROR, f"{name}: must not be null")
    if host.status == "revoked":
        raise ApiProblem(409, ErrorCode.HOST_REVOKED, f"host {host.id} is revoked")
    return store(request).update(host, change).model_dump(mode="json")


@router.delete("/{host_id}", status_code=204)
async def revoke_host(request: Request, host: TenantHost) -> Response:
    """Revoke for good: the key is refused from now on and a connected agent is closed with 4403.
    Revoking a revoked host is a no-op (still 204)."""
    store(request).set_status(host.id, "revoked")
    await hub(request).disconnect(host.id, protocol.CLOSE_REVOKED)
    jobs = request.app.state.jobs
    for row in jobs.unfinished(host.id):  # its agent kills them when it is refused
        await jobs.fail(row, "host revoked")
    return Response(status_code=204)


@router.get("/{host_id}/events")
async def host_events(request: Request, host: TenantHost) -> StreamingResponse:
    return event_stream(request, host.tenant_id, host.id)


@router.get("/{host_id}/sysinfo")
async def host_sysinfo(request: Request, host: TenantHost) -> dict[str, Any]:
    """Live facts from the agent (extension)."""
    if host.status == "revoked":
        raise ApiProblem(409, ErrorCode.HOST_REVOKED, f"host {host.id} is revoked")
    result = await hub(request).call(host.id, "sys.info")
    try:
        info = HostSysInfo.model_validate(result)
    except ValueError:
        raise AgentUnreachable("the agent answered sys.info with a malformed result") from None
    return info.model_dump(mode="json")
