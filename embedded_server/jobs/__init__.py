"""The jobs section: job records and output logs (``store``), the ``/hosts/{id}/exec`` routes, the
agents' job output streams (``STREAM_PATH?job_id=``) and the hub hooks (reconcile on hello, fail on
revoke)."""

from __future__ import annotations

from fastapi import FastAPI

from ..deps import API_PREFIX
from ..hub import Hub
from .routes import router
from .store import JobStore


def install(app: FastAPI) -> None:
    """Create the job store (``app.state.jobs``), register it with the hub and add the routes."""
    settings = app.state.settings
    jobs = JobStore(app.state.db, settings.jobs_dir, settings.job_output_cap)
    app.state.jobs = jobs
    hub: Hub = app.state.hub
    hub.on_hello(jobs.agent_hello)
    hub.on_revoke(jobs.host_revoked)
    hub.on_purge(jobs.host_purged)
    hub.handle_streams("job_id", jobs.serve_agent_stream)
    app.state.lifecycle.on_stop.append(jobs.shutdown)
    app.state.lifecycle.on_close.append(jobs.close)
    app.include_router(router, prefix=API_PREFIX)
