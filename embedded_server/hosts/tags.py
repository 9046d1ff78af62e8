"""Tags, as MIOSA's hosted API (and its Python SDK) changes host labels: ``GET /tags``,
``GET|PUT|PATCH /hosts/{id}/tags``, ``POST|DELETE /hosts/{id}/tags/{tag}`` (docs/api.md, "MIOSA's SDKs").

Tags are a view of the labels, both ways: the label ``k: v`` is the tag ``k=v`` and the label ``k: ""``
the bare tag ``k``; a tag is read back by splitting at its first ``=`` (a label key has no ``=``). So
a host's labels and tags always say the same thing, whichever API changed them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from pydantic import Field, ValidationError

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import MAX_LABELS, Host, HostUpdate, RequestModel

from .. import limits
from ..deps import Tenant, TenantHost
from ..errors import ApiProblem
from .store import HostStore

router = limits.router(tags=["hosts"])

TagPath = Annotated[str, Path(min_length=1, max_length=320)]


class TagsUpdate(RequestModel):
    """``PUT|PATCH /hosts/{id}/tags``: the host's whole tag list."""

    tags: list[str] = Field(max_length=MAX_LABELS)


def tags_of(labels: dict[str, str]) -> list[str]:
    """The tags a host's labels stand for, sorted: ``k=v``, or ``k`` for an empty value."""
    return sorted(key if value == "" else f"{key}={value}" for key, value in labels.items())


def labels_of(tags: list[str]) -> dict[str, str]:
    """The labels a tag list stands for, validated as labels are.

    Raises:
        ApiProblem: 400 VALIDATION_ERROR, a tag that is no label (a bad key, two values for one key …).
    """
    labels: dict[str, str] = {}
    for tag in tags:
        key, _, value = tag.partition("=")
        if key in labels and labels[key] != value:
            raise ApiProblem(400, ErrorCode.VALIDATION_ERROR, f"tags: {key!r} has two values")
        labels[key] = value
    try:
        HostUpdate(labels=labels)
    except ValidationError as exc:
        message = str(exc.errors()[0].get("msg", "is invalid")).removeprefix("Value error, ")
        raise ApiProblem(400, ErrorCode.VALIDATION_ERROR, f"tags: {message}") from None
    return labels


def answer(host: Host) -> dict[str, Any]:
    """``{"host": {"id", "tags"}}``, as MIOSA's tag routes answer."""
    return {"host": {"id": host.id, "tags": tags_of(host.labels)}}


def relabel(request: Request, host: Host, labels: dict[str, str]) -> dict[str, Any]:
    """Store ``labels`` as the host's (a revoked host is 409) and answer its tags."""
    if host.status == "revoked":
        raise ApiProblem(409, ErrorCode.HOST_REVOKED, f"host {host.id} is revoked")
    hosts: HostStore = request.app.state.hosts
    return answer(hosts.update(host, HostUpdate(labels=labels)))


@router.get("/tags")
async def tag_catalog(request: Request, tenant_id: Tenant) -> dict[str, Any]:
    """Every tag of the tenant's hosts, sorted, each once."""
    hosts: HostStore = request.app.state.hosts
    tags: set[str] = set()
    for labels in hosts.labels(tenant_id):
        tags.update(tags_of(labels))
    return {"tags": sorted(tags)}


@router.get("/hosts/{host_id}/tags")
async def host_tags(host: TenantHost) -> dict[str, Any]:
    """The host's tags."""
    return answer(host)


@router.put("/hosts/{host_id}/tags")
@router.patch("/hosts/{host_id}/tags")
async def replace_tags(request: Request, host: TenantHost, change: TagsUpdate) -> dict[str, Any]:
    """Replace the host's labels with those its new tag list stands for."""
    return relabel(request, host, labels_of(change.tags))


@router.post("/hosts/{host_id}/tags/{tag:path}")
async def add_tag(request: Request, host: TenantHost, tag: TagPath) -> dict[str, Any]:
    """Add a tag (``k=v`` sets the label ``k``, replacing its value); adding it again changes nothing."""
    return relabel(request, host, {**host.labels, **labels_of([tag])})


@router.delete("/hosts/{host_id}/tags/{tag:path}")
async def remove_tag(request: Request, host: TenantHost, tag: TagPath) -> dict[str, Any]:
    """Remove the tag if the host has it (exactly: ``env`` does not remove ``env=prod``); else no-op."""
    labels = {key: value for key, value in host.labels.items() if tags_of({key: value}) != [tag]}
    return relabel(request, host, labels)
