"""``/clusters``: create, list, get, start, stop and delete inference clusters (the reference's "Inference
Clusters"), their live events, and ``/hosts/{id}/engines`` (the engines found on a host). What a cluster
serves is in :mod:`.router`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import ClusterCreate, is_valid_id

from .. import durable, limits
from ..auth import reads_only
from ..deps import Tenant, TenantHost, keepalive_of, path_id, sse_response
from ..errors import ApiProblem
from ..openapi import raises
from .router import ClusterRouter
from .store import ClusterStore

router = limits.router(tags=["clusters"])

ClusterId = Annotated[str, Depends(path_id("cluster", "cluster (cl_…)"))]


def store_of(request: Request) -> ClusterStore:
    """The application's cluster store."""
    store: ClusterStore = request.app.state.clusters
    return store


def router_of(request: Request) -> ClusterRouter:
    """The application's cluster router (health, counters, the endpoint)."""
    cluster_router: ClusterRouter = request.app.state.cluster_router
    return cluster_router


def cluster_row(request: Request, tenant_id: str, cluster_id: str) -> dict[str, Any]:
    """The tenant's cluster row, or 404 NOT_FOUND (another tenant's too)."""
    row = store_of(request).get(tenant_id, cluster_id)
    if row is None:
        raise ApiProblem(404, ErrorCode.NOT_FOUND, f"cluster {cluster_id} not found")
    return row


def _body(request: Request, row: dict[str, Any]) -> dict[str, Any]:
    return router_of(request).model(row).model_dump(mode="json")


@router.get("/clusters")
async def list_clusters(request: Request, tenant_id: Tenant) -> dict[str, Any]:
    """The tenant's clusters, oldest first: ``{"data": [...]}``."""
    return {"data": [_body(request, row) for row in store_of(request).of_tenant(tenant_id)]}


@router.post("/clusters", status_code=201)
@raises(404, 409)
async def create_cluster(request: Request, tenant_id: Tenant, spec: ClusterCreate) -> dict[str, Any]:
    """A new cluster over the tenant's hosts, started at once (``provisioning``, then ``active``)."""
    host_ids = list(dict.fromkeys(spec.host_ids))
    for host_id in host_ids:
        if not is_valid_id("host", host_id):
            raise ApiProblem(400, ErrorCode.INVALID_ID, f"{host_id!r} is not a valid host (host_…) ID")
        host = request.app.state.hosts.get(tenant_id, host_id)
        if host is None:
            raise ApiProblem(404, ErrorCode.NOT_FOUND, f"host {host_id} not found")
        if host.status == "revoked":
            raise ApiProblem(409, ErrorCode.HOST_REVOKED, f"host {host_id} is revoked")
    row = store_of(request).create(tenant_id, spec, host_ids)
    return _body(request, router_of(request).start(row))


@router.get("/clusters/{cluster_id}")
@raises(404)
async def get_cluster(request: Request, tenant_id: Tenant, cluster_id: ClusterId) -> dict[str, Any]:
    """One cluster, with each host's health and counters (``hosts``)."""
    return _body(request, cluster_row(request, tenant_id, cluster_id))


@router.post("/clusters/{cluster_id}/start")
@raises(404)
async def start_cluster(request: Request, tenant_id: Tenant, cluster_id: ClusterId) -> dict[str, Any]:
    """Check every host's engine serves the model (Ollama pulls it when missing) and route again;
    answers the cluster (``provisioning`` until the check is done)."""
    row = cluster_row(request, tenant_id, cluster_id)
    return _body(request, router_of(request).start(row))


@router.post("/clusters/{cluster_id}/stop")
@raises(404)
async def stop_cluster(request: Request, tenant_id: Tenant, cluster_id: ClusterId) -> dict[str, Any]:
    """Stop routing: the endpoint answers 503 CLUSTER_STOPPED until the cluster is started again."""
    row = cluster_row(request, tenant_id, cluster_id)
    return _body(request, router_of(request).stop(row))


@router.delete("/clusters/{cluster_id}", status_code=204)
@raises(404)
async def delete_cluster(request: Request, tenant_id: Tenant, cluster_id: ClusterId) -> Response:
    """Destroy the cluster: its URL answers 404 from now on, its event streams end with ``destroyed``."""
    row = cluster_row(request, tenant_id, cluster_id)
    store_of(request).delete(row["id"])
    await router_of(request).delete(row)
    return Response(status_code=204)


@router.get("/clusters/{cluster_id}/events")
@raises(404)
async def cluster_events(request: Request, tenant_id: Tenant, cluster_id: ClusterId) -> StreamingResponse:
    """The cluster's status and per-host health now, then every change (SSE): ``status_change``,
    ``host_health``, ``pull_progress``; the stream ends after ``destroyed``."""
    row = cluster_row(request, tenant_id, cluster_id)
    return sse_response(durable.sse(router_of(request).events(row), keepalive_of(request)))


@router.get("/hosts/{host_id}/engines")
async def host_engines(
    request: Request, host: TenantHost, port: Annotated[list[int] | None, Query()] = None
) -> dict[str, Any]:
    """The LLM engines answering on the host's usual ports (Ollama 11434, OpenAI-compatible 8080 and
    8000) and on each ``?port=``: ``{"data": [{kind, port, ready, models}]}`` (an offline host: none)."""
    ports = [p for p in (port or []) if 1 <= p <= 65535][:16]
    engines = await router_of(request).detect(host.id, ports)
    return {"data": [engine.model_dump(mode="json") for engine in engines]}


# --- the clusters themselves: /inference/<slug>/v1/… -----------------------------------------------------

inference_router = limits.router(prefix="/inference", include_in_schema=False)


@inference_router.api_route("/{slug}/v1/{path:path}", methods=["GET", "POST"])
@reads_only
async def serve_inference(request: Request, slug: str, path: str) -> Response:
    """A request to the cluster ``slug``'s OpenAI-compatible endpoint, answered by one host's engine.

    A read-only token may use it (``reads_only``): asking a model changes nothing in the fleet, though
    OpenAI's API sends every question as a POST."""
    return await router_of(request).serve(request, slug, path)
