"""The files section: ``/hosts/{id}/fs/…`` through the host's agent (routes, download, upload)."""

from __future__ import annotations

from fastapi import FastAPI

from ..deps import API_PREFIX
from .routes import router


def install(app: FastAPI) -> None:
    """Add the file routes to ``app`` (no state of their own: every answer comes from the agent)."""
    app.include_router(router, prefix=API_PREFIX)
