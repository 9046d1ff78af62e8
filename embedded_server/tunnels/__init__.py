"""The tunnels section: tunnel records (``store``), the ``/hosts/{id}/tunnels`` routes, and the proxy that
serves each tunnel under ``/t/<slug>/…`` through the host's agent (``proxy``); revoking a host disables
its tunnels and ends their connections."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI

from ..deps import API_PREFIX
from ..hub import Hub
from .proxy import Proxy
from .routes import proxy_router, router
from .store import TunnelStore


def install(app: FastAPI) -> None:
    """Create the tunnel store (``app.state.tunnels``) and proxy (``app.state.tunnel_proxy``), hook the
    proxy to host revocation, and add the API routes and the ``/t/`` routes."""
    settings = app.state.settings
    tunnels = TunnelStore(app.state.db, settings.base_url)
    proxy = Proxy(
        tunnels,
        app.state.hub,
        app.state.hosts,
        app.state.db,
        settings.data_dir,
        urlsplit(settings.base_url).scheme or "http",
    )
    app.state.tunnels = tunnels
    app.state.tunnel_proxy = proxy
    hub: Hub = app.state.hub
    hub.on_revoke(proxy.host_revoked)
    app.include_router(router, prefix=API_PREFIX)
    app.include_router(proxy_router)
