"""``/hosts/{id}/exec``: run a job, list, get, cancel, and stream its output (SSE).

Every route is ``async def`` (see deps.py): the DB connection and the jobs' live state belong to the
event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import Host, JobCreate, format_timestamp, utcnow

from .. import limits, protocol
from ..deps import (
    PageQuery,
    Tenant,
    TenantHost,
    hub_of,
    keepalive_of,
    last_event_id,
    path_id,
    require_online,
    sse_response,
)
from ..errors import ApiProblem
from .store import FINAL, JobStore

router = limits.router(prefix="/hosts", tags=["jobs"])

CANCEL_WAIT = 5.0  # seconds DELETE waits for the agent's exit report after the tree was killed


def jobs_of(request: Request) -> JobStore:
    """The application's job store."""
    jobs: JobStore = request.app.state.jobs
    return jobs


JobId = Annotated[str, Depends(path_id("job", "job (job_…)"))]


def job_row(request: Request, host: Host, job_id: str) -> dict[str, Any]:
    """The host's job row, or 404 NOT_FOUND."""
    row = jobs_of(request).row(host.id, job_id)
    if row is None:
        raise ApiProblem(404, ErrorCode.NOT_FOUND, f"job {job_id} not found")
    return row


@router.post("/{host_id}/exec", status_code=201)
async def run_job(
    request: Request,
    _tenant: Tenant,
    host: TenantHost,
    spec: JobCreate,
    wait: Annotated[float | None, Query(gt=0, le=300)] = None,
) -> dict[str, Any]:
    """Start a job on the host; with ``?wait=`` (seconds) answer once it ends if it ends that soon."""
    require_online(request, host)
    jobs = jobs_of(request)
    row = jobs.create(host.tenant_id, host.id, spec)
    call = protocol.JobStart(
        job_id=row["id"],
        command=spec.command,
        args=spec.args or [],
        env=spec.env or [],
        cwd=spec.cwd,
        timeout=spec.timeout,
        wait=wait or None,  # a job that ends at once comes back with its result (docs/protocol.md)
    )
    jobs.starting.add(row["id"])
    try:
        result = await hub_of(request).call(host.id, call)
    except ApiProblem as exc:
        await jobs.fail(row, f"could not be started: {exc.message}")
        raise
    finally:
        jobs.starting.discard(row["id"])
    if not isinstance(result, dict) or not result.get("started"):
        error = result.get("error") if isinstance(result, dict) else None
        await jobs.fail(row, str(error or "could not start"))
    elif isinstance(result.get("exit"), dict):
        await jobs.finish_inline(row, result["exit"], result.get("output") or [])
    else:
        jobs.mark_running(row["id"], format_timestamp(utcnow()))
        out = jobs.live.get(row["id"])
        if wait and out is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await out.done.wait()
    return jobs.full(job_row(request, host, row["id"])).model_dump(mode="json")


@router.get("/{host_id}/exec")
async def list_jobs(request: Request, host: TenantHost, paging: PageQuery) -> dict[str, Any]:
    """The host's jobs, newest first, a page at a time (each with the first 4 KiB of its output)."""
    return paging.body(*jobs_of(request).page(host.id, paging.page, paging.per_page))


@router.get("/{host_id}/exec/{job_id}")
async def get_job(request: Request, host: TenantHost, job_id: JobId) -> dict[str, Any]:
    """One job with its stored output."""
    return jobs_of(request).full(job_row(request, host, job_id)).model_dump(mode="json")


@router.delete("/{host_id}/exec/{job_id}", status_code=204)
async def cancel_job(request: Request, host: TenantHost, job_id: JobId) -> Response:
    """Kill the job's process tree; status ``cancelled``. A finished job: 204, nothing changes."""
    jobs = jobs_of(request)
    row = job_row(request, host, job_id)
    if row["status"] in FINAL:
        return Response(status_code=204)
    require_online(request, host)
    out = jobs.live.get(job_id)
    result = await hub_of(request).call(host.id, protocol.JobCancel(job_id=job_id))
    if out is not None and isinstance(result, dict) and result.get("known"):
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CANCEL_WAIT):
                await out.done.wait()  # the exit report, after the last output byte
    row = job_row(request, host, job_id)
    if row["status"] not in FINAL:  # the agent did not know it, or its report is still on the way
        await jobs.finish(row, "cancelled", None, None, {"reason": "cancelled"})
    return Response(status_code=204)


@router.get("/{host_id}/exec/{job_id}/stream")
async def stream_job(request: Request, host: TenantHost, job_id: JobId) -> StreamingResponse:
    """The job's output as SSE, resumable with ``Last-Event-ID`` (a byte offset), ending with ``exit``."""
    row = job_row(request, host, job_id)
    return sse_response(jobs_of(request).stream(row, last_event_id(request), keepalive_of(request)))
