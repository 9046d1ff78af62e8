"""``/groups`` (MIOSA's host groups: CRUD, members, ``exec``) and ``/fanouts`` (ours: ad-hoc fan-outs,
their records, combined streams and cancel-all).

Every route is ``async def`` (see deps.py): the DB connection and the live fan-outs belong to the event
loop's thread.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import GroupCreate, GroupMembersAdd, GroupUpdate

from .. import durable, limits
from ..deps import Tenant, keepalive_of, path_id, sse_response, valid_host_id
from ..errors import ApiProblem
from ..jobs.routes import parse_exec
from .fanout import FanOutRequest, FanOutRun, FanOuts
from .store import GroupStore, member_json

router = limits.router(tags=["groups"])

GroupId = Annotated[str, Depends(path_id("group", "group (grp_…)"))]
FanOutId = Annotated[str, Depends(path_id("fanout", "fan-out (fo_…)"))]
HostId = Annotated[str, Depends(valid_host_id)]
Body_ = Annotated[dict[str, Any], Body()]


def groups_of(request: Request) -> GroupStore:
    """The application's group store."""
    groups: GroupStore = request.app.state.groups
    return groups


def fanouts_of(request: Request) -> FanOuts:
    """The application's fan-outs."""
    fanouts: FanOuts = request.app.state.fanouts
    return fanouts


def group_body(request: Request, row: dict[str, Any]) -> dict[str, Any]:
    """``{"group": …}``, as MIOSA's SDK reads a group write."""
    return {"group": groups_of(request).group(row).model_dump(mode="json")}


@router.get("/groups")
async def list_groups(request: Request, tenant_id: Tenant) -> dict[str, Any]:
    """The tenant's groups: ``{"groups": [...]}`` (each with ``member_count``)."""
    return {"groups": [group.model_dump(mode="json") for group in groups_of(request).list_groups(tenant_id)]}


@router.post("/groups", status_code=201)
async def create_group(request: Request, tenant_id: Tenant, spec: GroupCreate) -> dict[str, Any]:
    """Create a group (``explicit``, optionally with ``host_ids``, or ``tag_query``); 409 when the name
    is taken."""
    return group_body(request, groups_of(request).create(tenant_id, spec))


@router.get("/groups/{group_id}")
async def get_group(request: Request, tenant_id: Tenant, group_id: GroupId) -> dict[str, Any]:
    """``{"group": …, "members": [...]}``, the members resolved now."""
    groups = groups_of(request)
    row = groups.row(tenant_id, group_id)
    members = groups.members(row)
    return {
        "group": groups.group(row, len(members)).model_dump(mode="json"),
        "members": [member_json(host) for host in members],
    }


@router.patch("/groups/{group_id}")
async def update_group(
    request: Request, tenant_id: Tenant, group_id: GroupId, change: GroupUpdate
) -> dict[str, Any]:
    """Change a group's name, description, icon, colour, kind or tag query."""
    groups = groups_of(request)
    return group_body(request, groups.update(groups.row(tenant_id, group_id), change))


@router.delete("/groups/{group_id}", status_code=204)
async def delete_group(request: Request, tenant_id: Tenant, group_id: GroupId) -> Response:
    """Delete a group (its hosts stay, and so do the records of its fan-outs)."""
    groups = groups_of(request)
    groups.delete(groups.row(tenant_id, group_id))
    return Response(status_code=204)


@router.post("/groups/{group_id}/members")
async def add_members(
    request: Request, tenant_id: Tenant, group_id: GroupId, body: GroupMembersAdd
) -> dict[str, Any]:
    """Add many hosts to an explicit group (all or none: an unknown host is 404)."""
    groups = groups_of(request)
    added = groups.add_members(groups.row(tenant_id, group_id), body.host_ids)
    return {"ok": True, "group_id": group_id, "host_ids": added, "added": len(added)}


@router.post("/groups/{group_id}/members/{host_id}")
async def add_member(
    request: Request, tenant_id: Tenant, group_id: GroupId, host_id: HostId
) -> dict[str, Any]:
    """Add one host to an explicit group (adding it again changes nothing)."""
    groups = groups_of(request)
    groups.add_members(groups.row(tenant_id, group_id), [host_id])
    return {"ok": True, "host_id": host_id, "group_id": group_id}


@router.delete("/groups/{group_id}/members/{host_id}", status_code=204)
async def remove_member(request: Request, tenant_id: Tenant, group_id: GroupId, host_id: HostId) -> Response:
    """Remove one host from an explicit group."""
    groups = groups_of(request)
    groups.remove_member(groups.row(tenant_id, group_id), host_id)
    return Response(status_code=204)


@router.post("/groups/{group_id}/exec", status_code=201)
async def group_exec(request: Request, tenant_id: Tenant, group_id: GroupId, body: Body_) -> dict[str, Any]:
    """Run a command on every member now, in one request: the fan-out record, whose ``fan_out`` lists
    each member's job or why it did not run (docs/api.md, "Fan-out")."""
    spec = parse_exec(body, FanOutRequest)
    if spec.targets():
        raise ApiProblem(400, ErrorCode.VALIDATION_ERROR, "a group's exec runs on its members: no host_ids")
    groups = groups_of(request)
    hosts = groups.members(groups.row(tenant_id, group_id))
    run = await fanouts_of(request).start(tenant_id, hosts, spec, group_id)
    return run.body()


@router.post("/fanouts", status_code=201)
async def create_fanout(request: Request, tenant_id: Tenant, body: Body_) -> dict[str, Any]:
    """An ad-hoc fan-out to ``host_ids``, the hosts a ``tag_query`` matches, or a ``group_id``'s members."""
    spec = parse_exec(body, FanOutRequest)
    if spec.targets() != 1:
        raise ApiProblem(
            400, ErrorCode.VALIDATION_ERROR, "name the hosts by one of host_ids, tag_query, group_id"
        )
    groups = groups_of(request)
    if spec.group_id is not None:
        hosts = groups.members(groups.row(tenant_id, spec.group_id))
    else:
        if spec.tag_query is not None:
            from oc_tui.api.models import check_tag_query

            try:
                check_tag_query(spec.tag_query)
            except ValueError as exc:
                raise ApiProblem(400, ErrorCode.VALIDATION_ERROR, f"tag_query: {exc}") from None
        hosts = groups.select(tenant_id, spec.host_ids, spec.tag_query)
    run = await fanouts_of(request).start(tenant_id, hosts, spec, spec.group_id)
    return run.body()


@router.get("/fanouts")
async def list_fanouts(
    request: Request, tenant_id: Tenant, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> dict[str, Any]:
    """The tenant's newest fan-outs: ``{"data": [...]}``."""
    fanouts = fanouts_of(request)
    ids = groups_of(request).fanout_ids(tenant_id, limit)
    return {"data": [fanouts.get(tenant_id, fanout_id).body() for fanout_id in ids]}


def tenant_fanout(request: Request, tenant_id: str, fanout_id: str) -> FanOutRun:
    """The tenant's fan-out (404 otherwise)."""
    return fanouts_of(request).get(tenant_id, fanout_id)


@router.get("/fanouts/{fanout_id}")
async def get_fanout(request: Request, tenant_id: Tenant, fanout_id: FanOutId) -> dict[str, Any]:
    """The fan-out record: its status and each member's job, status and exit code."""
    return tenant_fanout(request, tenant_id, fanout_id).body()


@router.get("/fanouts/{fanout_id}/stream")
async def stream_fanout(request: Request, tenant_id: Tenant, fanout_id: FanOutId) -> StreamingResponse:
    """Every member's output and end as one SSE stream, each event with its ``host_id``; ``fanout_end``
    (the record) last."""
    run = tenant_fanout(request, tenant_id, fanout_id)
    return sse_response(durable.sse(run.frames(), keepalive_of(request)))


@router.delete("/fanouts/{fanout_id}")
async def cancel_fanout(request: Request, tenant_id: Tenant, fanout_id: FanOutId) -> dict[str, Any]:
    """Cancel all: members not started are skipped, running jobs are cancelled; answers the record."""
    run = tenant_fanout(request, tenant_id, fanout_id)
    await run.cancel_all()
    return run.body()
