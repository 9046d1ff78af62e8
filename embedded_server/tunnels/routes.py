"""``/hosts/{id}/tunnels``: create, list, get, change and delete a host's tunnels (the reference's
"Tunnels"). What a tunnel serves is in :mod:`.proxy`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Response, WebSocket
from starlette.requests import HTTPConnection

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import Host, TunnelCreate, TunnelUpdate

from .. import limits
from ..deps import PageQuery, TenantHost, path_id
from ..errors import ApiProblem
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
    await proxy_of(request).end(row["id"])
    return Response(status_code=204)


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
