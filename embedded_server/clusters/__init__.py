"""The inference clusters section: cluster records (``store``), the ``/clusters`` routes, and the router
that serves each cluster's OpenAI-compatible endpoint ``/inference/<slug>/v1`` over the LLM engines on
its hosts, through their agents (``router``)."""

from __future__ import annotations

from fastapi import FastAPI

from ..deps import API_PREFIX
from ..hub import Hub
from .router import ClusterRouter
from .routes import inference_router, router
from .store import ClusterStore


def install(app: FastAPI) -> None:
    """Create the cluster store (``app.state.clusters``) and router (``app.state.cluster_router``), hook
    the router to hosts going online, offline and revoked, run its health rounds while the server runs,
    and add the API routes and the ``/inference/`` routes."""
    settings = app.state.settings
    store = ClusterStore(app.state.db)
    cluster_router = ClusterRouter(
        store,
        app.state.hub,
        app.state.hosts,
        app.state.db,
        settings.base_url,
        settings.cluster_health_interval,
    )
    app.state.clusters = store
    app.state.cluster_router = cluster_router
    hub: Hub = app.state.hub
    hub.on_hello(cluster_router.host_up)
    hub.on_disconnect(cluster_router.host_down)
    hub.on_revoke(cluster_router.host_down)
    lifecycle = app.state.lifecycle
    lifecycle.on_start.append(cluster_router.run_monitor)
    lifecycle.on_stop.append(cluster_router.stop_monitor)
    lifecycle.on_close.append(cluster_router.stop_monitor)
    app.include_router(router, prefix=API_PREFIX)
    app.include_router(inference_router)
