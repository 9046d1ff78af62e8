"""The secrets section: tenant and host secrets encrypted at rest (``store``, ``keyring``), their routes
(``/secrets``, ``/hosts/{id}/secrets``), and ``app.state.secrets.values(...)``, how jobs and AI agents
get values on the server side (docs/api.md, "Secrets")."""

from __future__ import annotations

from fastapi import FastAPI

from ..deps import API_PREFIX
from .routes import router
from .store import SecretStore


def install(app: FastAPI) -> None:
    """Load (or create) the key ring, create the secret store (``app.state.secrets``) and add the routes.

    Raises:
        KeyRingError: the key ring is malformed, or missing while secrets are stored.
    """
    settings = app.state.settings
    app.state.secrets = SecretStore(app.state.db, settings.secret_key_path, app.state.hosts)
    app.include_router(router, prefix=API_PREFIX)
