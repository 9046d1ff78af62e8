"""``/hosts/{id}/tunnels``: create, list, get, change and delete a host's tunnels (the reference's
"Tunnels"). What a tunnel serves is in :mod:`.proxy`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Response, WebSocket
from fastapi.responses import StreamingResponse
from starlette.requests import HTTPConnection

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import Host, TunnelCreate, TunnelUpdate

from .. import durable, limits
from ..deps import PageQuery, TenantHost, keepalive_of, path_id, sse_response
from ..errors import ApiProblem
from ..openapi import raises
from .proxy import Proxy
from .store import TunnelStore

router = limits.router(prefix="/hosts", tags=["tunnels"])

TunnelId = Annotated[str, Depends(path_id("tunnel", "tunnel (tun_…)"))]


def tunnels_of(request: Request) -> TunnelStore:
    """The application's tunnel store."""
    tunnels: TunnelStore = request.app.state.tunnels
    return tunnels


def proxy_of(request: HTTPConnection) -> Proxy:
    """The application's tunnel proxy (its open connections)."""
    proxy: Proxy = request.app.state.tunnel_proxy
    return proxy


def tunnel_row(request: Request, host: Host, tunnel_id: str) -> dict[str, Any]:
    """The host's tunnel row, or 404 NOT_FOUND."""
    row = tunnels_of(request).row(host.id, tunnel_id)
    if row is None:
        raise ApiProblem(404, ErrorCode.NOT_FOUND, f"tunnel {tunnel_id} not found")
    return row


def _body(request: Request, row: dict[str, Any]) -> dict[str, Any]:
    return tunnels_of(request).model(row).model_dump(mode="json")


@router.get("/{host_id}/tunnels")
async def list_tunnels(request: Request, host: TenantHost, paging: PageQuery) -> dict[str, Any]:
    """The host's tunnels, oldest first: ``{"data": [...], "meta": {...}}``."""
    return paging.body(*tunnels_of(request).page(host.id, paging.page, paging.per_page))


@router.post("/{host_id}/tunnels", status_code=201)
@raises(409)
async def create_tunnel(request: Request, host: TenantHost, spec: TunnelCreate) -> dict[str, Any]:
    """A new tunnel to the host's ``target_port`` (the host may be offline: its URL answers 502 then)."""
    if host.status == "revoked":
        raise ApiProblem(409, ErrorCode.HOST_REVOKED, f"host {host.id} is revoked")
    row = await tunnels_of(request).create(host.tenant_id, host.id, spec)
    return _body(request, row)


@router.get("/{host_id}/tunnels/{tunnel_id}")
async def get_tunnel(request: Request, host: TenantHost, tunnel_id: TunnelId) -> dict[str, Any]:
    """One tunnel."""
    return _body(request, tunnel_row(request, host, tunnel_id))


@router.patch("/{host_id}/tunnels/{tunnel_id}")
@raises(409)
async def update_tunnel(
    request: Request, host: TenantHost, tunnel_id: TunnelId, spec: TunnelUpdate
) -> dict[str, Any]:
    """Change the port, auth mode, password or enabled flag; a change ends the tunnel's open
    connections (they were made under the old settings)."""
    row = await tunnels_of(request).update(tunnel_row(request, host, tunnel_id), spec)
    if spec.model_fields_set - {"enabled"} or not row["enabled"]:
        await proxy_of(request).end(row["id"])
    return _body(request, row)


@router.delete("/{host_id}/tunnels/{tunnel_id}", status_code=204)
async def delete_tunnel(request: Request, host: TenantHost, tunnel_id: TunnelId) -> Response:
    """Delete the tunnel and end its open connections; its URL answers 404 from now on."""
    row = tunnel_row(request, host, tunnel_id)
    tunnels_of(request).delete(row["id"])
    await proxy_of(request).forget(row["id"])
    return Response(status_code=204)


# --- the inspector (extension) ------------------------------------------------------------------------


@router.get("/{host_id}/tunnels/{tunnel_id}/requests")
async def list_requests(request: Request, host: TenantHost, tunnel_id: TunnelId) -> dict[str, Any]:
    """The tunnel's last requests as the inspector kept them, newest first: ``{"data": [...]}``."""
    row = tunnel_row(request, host, tunnel_id)
    records = proxy_of(request).inspector.records(row["id"])
    return {"data": [record.model().model_dump(mode="json") for record in records]}


@router.get("/{host_id}/tunnels/{tunnel_id}/requests/stream")
async def stream_requests(request: Request, host: TenantHost, tunnel_id: TunnelId) -> StreamingResponse:
    """The tunnel's requests live, as SSE: event ``request`` when the app's answer starts and again
    when it ends (the record in ``data.data``; clients replace a record by its ``id``)."""
    row = tunnel_row(request, host, tunnel_id)
    events = proxy_of(request).inspector.events(row["id"])
    return sse_response(durable.sse(events, keepalive_of(request)))


@router.post("/{host_id}/tunnels/{tunnel_id}/requests/{request_id}/replay", status_code=201)
@raises(409, 502, 503)
async def replay_request(
    request: Request, host: TenantHost, tunnel_id: TunnelId, request_id: int
) -> dict[str, Any]:
    """Send a kept request to the app again; answers the new record (``replay_of`` names the old)."""
    row = tunnel_row(request, host, tunnel_id)
    proxy = proxy_of(request)
    original = proxy.inspector.record(row["id"], request_id)
    if original is None:
        raise ApiProblem(404, ErrorCode.NOT_FOUND, f"request {request_id} of tunnel {tunnel_id} not found")
    record = await proxy.replay(row, original, request.app.state.settings.call_timeout)
    return record.model().model_dump(mode="json")


# --- the tunnels themselves: /t/<slug>/… ---------------------------------------------------------------

proxy_router = limits.router(prefix="/t", include_in_schema=False)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@proxy_router.api_route("/{slug}", methods=METHODS)
@proxy_router.api_route("/{slug}/{path:path}", methods=METHODS)
@limits.unlimited_body
async def serve_tunnel(request: Request, slug: str) -> Response:
    """A request to the tunnel ``slug``, answered by the app on its host (bodies stream both ways)."""
    return await proxy_of(request).serve_http(request, slug)


@proxy_router.websocket("/{slug}/{path:path}")
async def serve_tunnel_websocket(ws: WebSocket, slug: str) -> None:
    """A WebSocket to the tunnel ``slug``, relayed to the app's WebSocket on its host."""
    await proxy_of(ws).serve_websocket(ws, slug)
