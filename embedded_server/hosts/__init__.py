"""The hosts section: host records and their events (``store``, ``events``) and the ``/hosts`` routes, and tags (``tags``: MIOSA's view of the labels)."""

from __future__ import annotations

from fastapi import FastAPI

from ..deps import API_PREFIX
from .routes import router
from .tags import router as tags_router


def install(app: FastAPI) -> None:
    """Add the hosts routes to ``app``; its host store and events are the app's core (see app.py)."""
    lifecycle = app.state.lifecycle
    lifecycle.on_start.append(app.state.hosts.mark_stale_online_offline)
    lifecycle.on_start.append(app.state.events.prune)
    lifecycle.on_stop.append(app.state.events.close)
    lifecycle.on_close.append(app.state.events.close)
    app.include_router(router, prefix=API_PREFIX)
    app.include_router(tags_router, prefix=API_PREFIX)
