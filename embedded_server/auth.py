"""Who is calling: API bearer tokens map to a tenant; host keys map to a host. Only hashes are stored."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Request

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import format_timestamp, utcnow

from .crypto import hash_secret, new_token, same_hash
from .db import Database
from .errors import ApiProblem
from .ids import new_id
from .openapi import raises

TOKEN_PREFIX = "oc_"
HOST_KEY_PREFIX = "hk_"
ADMIN_TOKEN_FILE = "admin-token"


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_READS_ONLY = "__oc_reads_only__"
F = TypeVar("F", bound=Callable[..., Any])


def create_token(db: Database, tenant_id: str, name: str, *, read_only: bool = False) -> str:
    """Mint an API token for ``tenant_id``; the plaintext is returned once and never stored.

    Args:
        read_only: the token may only read: every mutating call with it is 403 FORBIDDEN
            (:func:`current_tenant`).
    """
    token = new_token(TOKEN_PREFIX)
    db.execute(
        "INSERT INTO api_tokens (tenant_id, token_hash, name, created_at, read_only) VALUES (?, ?, ?, ?, ?)",
        (tenant_id, hash_secret(token), name, format_timestamp(utcnow()), int(read_only)),
    )
    return token


def reads_only(endpoint: F) -> F:
    """Mark a route that changes nothing although its method is not GET (a search sent as a POST): a
    read-only token may call it. Apply it under the router's decorator, as ``limits.unlimited_body``."""
    setattr(endpoint, _READS_ONLY, True)
    return endpoint


def first_tenant_id(db: Database) -> str | None:
    """The first tenant's ID (the admin's), or None before there is one."""
    first = db.one("SELECT id FROM tenants ORDER BY created_at, rowid LIMIT 1")
    return str(first["id"]) if first else None


def create_tenant(db: Database, name: str) -> tuple[str, str]:
    """A new tenant and its first API token: ``(tenant_id, token)``."""
    tenant_id = new_id("tenant")
    with db.transaction():
        db.execute(
            "INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)",
            (tenant_id, name, format_timestamp(utcnow())),
        )
        token = create_token(db, tenant_id, "default")
    return tenant_id, token


def ensure_admin(db: Database, data_dir: Path) -> str:
    """The admin token (first tenant's), created on first start and kept in ``DATA_DIR/admin-token``.

    If the file is lost, a fresh admin token is minted for the first tenant, so the operator is never
    locked out of their own data.
    """
    path = data_dir / ADMIN_TOKEN_FILE
    if path.exists():
        token = path.read_text().strip()
        if tenant_for_token(db, token):
            return token
    first = first_tenant_id(db)
    if first is None:
        _, token = create_tenant(db, "admin")
    else:
        with db.transaction():
            token = create_token(db, first, "admin")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)
    return token


def tenant_for_token(db: Database, token: str) -> str | None:
    """The tenant an API token belongs to, or None."""
    found = token_scope(db, token)
    return found[0] if found else None


def token_scope(db: Database, token: str) -> tuple[str, bool] | None:
    """``(tenant_id, read_only)`` of an API token, or None for a token we do not know."""
    digest = hash_secret(token)
    row = db.one("SELECT tenant_id, token_hash, read_only FROM api_tokens WHERE token_hash = ?", (digest,))
    if row is None or not same_hash(row["token_hash"], digest):
        return None
    return str(row["tenant_id"]), bool(row["read_only"])


def host_for_key(db: Database, host_key: str) -> dict[str, Any] | None:
    """The host row a host key belongs to (revoked ones included: the caller refuses those)."""
    if not host_key.startswith(HOST_KEY_PREFIX):
        return None
    digest = hash_secret(host_key)
    row = db.one("SELECT * FROM hosts WHERE host_key_hash = ?", (digest,))
    if row is None or not same_hash(row["host_key_hash"], digest):
        return None
    return row


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    scheme, _, value = (header or "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


@raises(401)
async def current_tenant(request: Request) -> str:
    """FastAPI dependency: the tenant of the request's bearer token, else 401 UNAUTHORIZED.

    A read-only token reads only: any other method than GET/HEAD/OPTIONS is 403 FORBIDDEN, unless the
    route is marked :func:`reads_only`. Every tenant route depends on this, so a new route is covered
    without a list of paths (tests/test_read_only.py walks the route table to prove it).
    """
    token = bearer(request.headers.get("authorization"))
    found = token_scope(request.app.state.db, token) if token else None
    if found is None:
        message = "invalid API token" if token else "missing bearer token (Authorization: Bearer …)"
        raise ApiProblem(401, ErrorCode.UNAUTHORIZED, message)
    tenant_id, read_only = found
    if read_only and request.method not in READ_METHODS:
        endpoint = request.scope.get("endpoint")
        if not getattr(endpoint, _READS_ONLY, False):
            message = f"this API token is read-only: {request.method} changes things, so it is refused"
            raise ApiProblem(403, ErrorCode.FORBIDDEN, message)
    return tenant_id


@raises(401)
async def token_info(request: Request) -> dict[str, Any]:
    """``GET /token``: what the caller's token may do — ``{"tenant_id", "read_only"}`` (an extension, so
    a client such as oc-tui can say up front that it is read-only)."""
    tenant_id = await current_tenant(request)
    token = bearer(request.headers.get("authorization")) or ""
    found = token_scope(request.app.state.db, token)
    return {"tenant_id": tenant_id, "read_only": bool(found and found[1])}
