"""``create_app(settings)``: the control plane's FastAPI application, with its state and lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, WebSocket

from . import __version__, desktop, errors, protocol, terminal
from .db import Database
from .events import EventLog
from .hosts import HostStore
from .hub import Hub
from .jobs import JobStore
from .limits import BodyLimit
from .routes import fs, hosts, jobs, sessions
from .settings import Settings
from .tickets import TicketStore

API_PREFIX = "/api/v1/opencomputers"


def create_app(settings: Settings) -> FastAPI:
    db = Database(settings.db_path)
    events = EventLog(db)
    host_store = HostStore(db, events)
    job_store = JobStore(db, settings.jobs_dir, settings.job_output_cap)
    hub = Hub(host_store, settings, job_store)
    tickets = TicketStore(host_store, hub, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        host_store.mark_stale_online_offline()
        events.prune()
        yield
        events.close()
        for output in job_store.live.values():
            output.close_files()
        db.close()

    app = FastAPI(title="oc-server", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.db = db
    app.state.events = events
    app.state.hosts = host_store
    app.state.hub = hub
    app.state.jobs = job_store
    app.state.tickets = tickets
    errors.install(app)
    app.add_middleware(BodyLimit, max_body=settings.max_body)
    app.include_router(hosts.router, prefix=API_PREFIX)
    app.include_router(jobs.router, prefix=API_PREFIX)
    app.include_router(fs.router, prefix=API_PREFIX)
    app.include_router(sessions.router, prefix=API_PREFIX)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.websocket(protocol.AGENT_PATH)
    async def agent_channel(ws: WebSocket) -> None:
        await hub.serve(ws)

    @app.websocket(protocol.STREAM_PATH)
    async def agent_stream(ws: WebSocket) -> None:
        await hub.serve_stream(ws)

    @app.websocket(protocol.TERMINAL_PATH)
    async def terminal_session(ws: WebSocket) -> None:
        grant = await tickets.admit(ws, "terminal")
        if grant is not None:
            await terminal.serve(ws, hub, grant)

    @app.websocket(protocol.DESKTOP_PATH)
    async def desktop_session(ws: WebSocket) -> None:
        grant = await tickets.admit(ws, "desktop")
        if grant is not None:
            await desktop.serve(ws, hub, grant)

    return app
