"""The groups section: host groups (``store``: explicit member lists and tag queries over labels) and
fan-outs (``fanout``: one command on many hosts in one request, its record, combined stream and
cancel-all), with the ``/groups`` and ``/fanouts`` routes."""

from __future__ import annotations

from fastapi import FastAPI

from ..deps import API_PREFIX
from .fanout import FanOuts
from .routes import router
from .store import GroupStore


def install(app: FastAPI) -> None:
    """Create the group store (``app.state.groups``) and the fan-outs (``app.state.fanouts``) and add
    the routes."""
    groups = GroupStore(app.state.db)
    fanouts = FanOuts(app.state.hub, app.state.jobs, groups)
    app.state.groups = groups
    app.state.fanouts = fanouts
    app.state.lifecycle.on_start.append(groups.interrupt_running)
    app.state.lifecycle.on_stop.append(fanouts.shutdown)
    app.include_router(router, prefix=API_PREFIX)
