"""``/secrets`` (tenant secrets) and ``/hosts/{id}/secrets`` (host secrets): list, create, change,
delete; ``…/reveal`` is refused (a value is never returned)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Response

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import SecretCreate, SecretUpdate

from .. import limits
from ..deps import PageQuery, Tenant, TenantHost, path_id
from ..errors import ApiProblem
from .store import SecretStore

router = limits.router(tags=["secrets"])

SecretId = Annotated[str, Depends(path_id("secret", "secret (sec_…)"))]
NEVER_REVEALED = (
    "a secret's value is never returned: it reaches only the jobs that name it, as an environment variable"
)


def secrets_of(request: Request) -> SecretStore:
    """The application's secret store."""
    secrets: SecretStore = request.app.state.secrets
    return secrets


def secret_row(request: Request, tenant_id: str, host_id: str | None, secret_id: str) -> dict[str, Any]:
    """The scope's secret row, or 404 NOT_FOUND (also another tenant's, or another scope's)."""
    row = secrets_of(request).row(tenant_id, host_id, secret_id)
    if row is None:
        raise ApiProblem(404, ErrorCode.NOT_FOUND, f"secret {secret_id} not found")
    return row


def _body(row: dict[str, Any]) -> dict[str, Any]:
    return SecretStore.model(row).model_dump(mode="json")


# --- tenant secrets --------------------------------------------------------------------------------------


@router.get("/secrets")
async def list_tenant_secrets(request: Request, tenant_id: Tenant, paging: PageQuery) -> dict[str, Any]:
    """The tenant's secrets by name: ``{"data": [...], "meta": {...}}`` (never a value)."""
    return paging.body(*secrets_of(request).page(tenant_id, None, paging.page, paging.per_page))


@router.post("/secrets", status_code=201)
async def create_tenant_secret(request: Request, tenant_id: Tenant, spec: SecretCreate) -> dict[str, Any]:
    """A new tenant secret (409 when the tenant has one of that name)."""
    return _body(secrets_of(request).create(tenant_id, None, spec))


@router.get("/secrets/{secret_id}")
async def get_tenant_secret(request: Request, tenant_id: Tenant, secret_id: SecretId) -> dict[str, Any]:
    """One tenant secret (extension)."""
    return _body(secret_row(request, tenant_id, None, secret_id))


@router.patch("/secrets/{secret_id}")
async def update_tenant_secret(
    request: Request, tenant_id: Tenant, secret_id: SecretId, spec: SecretUpdate
) -> dict[str, Any]:
    """Change a tenant secret's value or description."""
    return _body(secrets_of(request).update(secret_row(request, tenant_id, None, secret_id), spec))


@router.delete("/secrets/{secret_id}", status_code=204)
async def delete_tenant_secret(request: Request, tenant_id: Tenant, secret_id: SecretId) -> Response:
    """Delete a tenant secret."""
    secrets_of(request).delete(secret_row(request, tenant_id, None, secret_id)["id"])
    return Response(status_code=204)


@router.post("/secrets/{secret_id}/reveal")
async def reveal_tenant_secret(request: Request, tenant_id: Tenant, secret_id: SecretId) -> Response:
    """Refused: 403 FORBIDDEN (404 first for a secret that is not the tenant's)."""
    secret_row(request, tenant_id, None, secret_id)
    raise ApiProblem(403, ErrorCode.FORBIDDEN, NEVER_REVEALED)


# --- host secrets ----------------------------------------------------------------------------------------


@router.get("/hosts/{host_id}/secrets")
async def list_host_secrets(request: Request, host: TenantHost, paging: PageQuery) -> dict[str, Any]:
    """The host's own secrets by name (not the tenant's it also gets)."""
    return paging.body(*secrets_of(request).page(host.tenant_id, host.id, paging.page, paging.per_page))


@router.post("/hosts/{host_id}/secrets", status_code=201)
async def create_host_secret(request: Request, host: TenantHost, spec: SecretCreate) -> dict[str, Any]:
    """A new host secret (409 CONFLICT on a name the host has; 409 HOST_REVOKED for a revoked host)."""
    if host.status == "revoked":
        raise ApiProblem(409, ErrorCode.HOST_REVOKED, f"host {host.id} is revoked")
    return _body(secrets_of(request).create(host.tenant_id, host.id, spec))


@router.get("/hosts/{host_id}/secrets/{secret_id}")
async def get_host_secret(request: Request, host: TenantHost, secret_id: SecretId) -> dict[str, Any]:
    """One host secret (extension)."""
    return _body(secret_row(request, host.tenant_id, host.id, secret_id))


@router.patch("/hosts/{host_id}/secrets/{secret_id}")
async def update_host_secret(
    request: Request, host: TenantHost, secret_id: SecretId, spec: SecretUpdate
) -> dict[str, Any]:
    """Change a host secret's value or description (MIOSA's SDKs use it)."""
    if host.status == "revoked":
        raise ApiProblem(409, ErrorCode.HOST_REVOKED, f"host {host.id} is revoked")
    return _body(secrets_of(request).update(secret_row(request, host.tenant_id, host.id, secret_id), spec))


@router.delete("/hosts/{host_id}/secrets/{secret_id}", status_code=204)
async def delete_host_secret(request: Request, host: TenantHost, secret_id: SecretId) -> Response:
    """Delete a host secret (also of a revoked host)."""
    secrets_of(request).delete(secret_row(request, host.tenant_id, host.id, secret_id)["id"])
    return Response(status_code=204)


@router.post("/hosts/{host_id}/secrets/{secret_id}/reveal")
async def reveal_host_secret(request: Request, host: TenantHost, secret_id: SecretId) -> Response:
    """Refused: 403 FORBIDDEN (MIOSA's SDKs offer it; the reference says a value is never returned)."""
    secret_row(request, host.tenant_id, host.id, secret_id)
    raise ApiProblem(403, ErrorCode.FORBIDDEN, NEVER_REVEALED)
