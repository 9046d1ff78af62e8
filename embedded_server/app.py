"""``create_app(settings)``: the control plane's FastAPI application, its core and its sections.

The core is the database, the hosts' records and events, and the hub (connected agents). Each section
of the API is a package with an ``install(app)`` that adds its routes, stores and hub hooks; adding a
section is one line in :data:`SECTIONS`.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType

from fastapi import FastAPI
from pydantic.warnings import UnsupportedFieldAttributeWarning

from . import (
    __version__,
    ai_agents,
    auth,
    clusters,
    errors,
    fs,
    groups,
    hosts,
    idempotency,
    jobs,
    limits,
    openapi,
    secrets,
    sessions,
    tunnels,
)
from .db import Database
from .deps import API_PREFIX
from .hosts.events import EventLog
from .hosts.store import HostStore
from .hub import Hub
from .lifecycle import Lifecycle
from .settings import Settings

SECTIONS: tuple[ModuleType, ...] = (hosts, jobs, fs, sessions, tunnels, secrets, ai_agents, clusters, groups)
"""The API's sections, installed in this order (each module has ``install(app)``)."""


def create_app(settings: Settings) -> FastAPI:
    """The application for ``settings``: its database opened (and migrated), every section installed.

    ``app.state`` holds the shared pieces: ``settings``, ``db``, ``events``, ``hosts``, ``hub``,
    ``lifecycle`` and what the sections add (``jobs``, ``tickets``).
    """
    # FastAPI validates a body parameter through a TypeAdapter of ``Annotated[Model, Field(alias=<name>)]``;
    # for our request models, whose schema build is deferred (start-up time), pydantic >= 2.12 then warns
    # on a route's first request that the alias "has no effect" — a false positive (the body is validated
    # as it should be; the in-process tests check it). Only that warning is silenced.
    warnings.filterwarnings(
        "ignore", message="The 'alias' attribute with value", category=UnsupportedFieldAttributeWarning
    )
    db = Database(settings.db_path)
    events = EventLog(db)
    host_store = HostStore(db, events)
    hub = Hub(host_store, settings)
    lifecycle = Lifecycle()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        lifecycle.start()
        yield
        lifecycle.close()
        db.close()

    app = FastAPI(title="oc-server", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.db = db
    app.state.events = events
    app.state.hosts = host_store
    app.state.hub = hub
    app.state.lifecycle = lifecycle
    errors.install(app)
    openapi.install(app)
    hub.install(app)
    for section in SECTIONS:
        section.install(app)
    idempotency.install(app)  # every POST honours Idempotency-Key
    app.router.add_api_route(
        API_PREFIX + "/token",
        auth.token_info,
        methods=["GET"],
        tags=["auth"],
        route_class_override=limits.LimitedRoute,  # its errors in the OpenAPI document, as every route's
    )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Liveness, no token needed; also where others reach this plane (``public_url``: what to hand
        an agent as ``--server``) and its identity (``plane_id``)."""
        return {
            "status": "ok",
            "version": __version__,
            "public_url": settings.base_url,
            "plane_id": settings.plane_id,
        }

    return app
