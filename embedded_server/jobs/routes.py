"""``/hosts/{id}/exec``: run a job, list, get, cancel, and stream its output (SSE).

Every route is ``async def`` (see deps.py): the DB connection and the jobs' live state belong to the
event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any, TypeVar

from fastapi import Body, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import Host, JobCreate, format_timestamp, utcnow

from .. import durable, limits, protocol
from ..deps import (
    API_PREFIX,
    PageQuery,
    Tenant,
    TenantHost,
    hub_of,
    keepalive_of,
    last_event_id,
    path_id,
    require_online,
    sse_response,
    uses_agent,
)
from ..errors import ApiProblem, problem_of
from ..hub import AgentUnreachable, HostOffline, Hub
from .dialects import ExecRequest
from .store import FINAL, OWNER, JobStore

log = logging.getLogger("oc_server.jobs")

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


Body_ = Annotated[dict[str, Any], Body()]
E = TypeVar("E", bound=ExecRequest)
Wait = Annotated[float | None, Query(gt=0, le=300)]
RESULT_SLACK = 10.0  # seconds ``stream: false`` waits past the job's timeout for its end to be stored


def parse_exec(body: dict[str, Any], model: type[E]) -> E:
    """The exec body in either dialect (as ``model``, an :class:`ExecRequest` or a subclass), or the usual
    400 VALIDATION_ERROR."""
    if "command" not in body and "cmd" not in body:  # "command: is required", as the reference names it
        missing = {"type": "missing", "loc": ("body", "command"), "msg": "Field required", "input": body}
        raise RequestValidationError([missing])
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


async def secret_values(request: Request, host: Host, spec: JobCreate) -> dict[str, str]:
    """The values of the secrets the job names (``secrets``), for its host (docs/api.md, "Secrets").

    Raises:
        ApiProblem: 400 an unknown name or one ``env`` sets too; 409 HOST_REVOKED.
    """
    if not spec.secrets:
        return {}
    in_env = {item.partition("=")[0] for item in spec.env or []}
    both = [name for name in spec.secrets if name in in_env]
    if both:
        raise ApiProblem(400, ErrorCode.VALIDATION_ERROR, f"secrets: {', '.join(both)} is also set in env")
    values: dict[str, str] = await request.app.state.secrets.values(host.tenant_id, host.id, spec.secrets)
    return values


async def start_job(
    request: Request,
    host: Host,
    row: dict[str, Any],
    spec: JobCreate,
    wait: float | None,
    secrets: dict[str, str] | None = None,
) -> None:
    """:func:`launch` with the request's hub and job store."""
    await launch(hub_of(request), jobs_of(request), host.id, row, spec, wait, secrets)


async def launch(
    hub: Hub,
    jobs: JobStore,
    host_id: str,
    row: dict[str, Any],
    spec: JobCreate,
    wait: float | None,
    secrets: dict[str, str] | None = None,
) -> None:
    """Ask the host's agent to start the stored job (with the values of its ``secrets``); its record
    says what became of it. Also how AI agent sessions run their ``run_command`` tool, so those are jobs
    like any other.

    Never raises a 5xx once the job is stored (a retried POST must not run it twice): an agent that does
    not confirm the start in time leaves the job ``queued`` — its stream, its exit report or the
    reconcile of its next hello settles it. An agent gone before the request left fails the job.

    Args:
        hub: the connected agents; jobs: the job store; host_id: the job's host.
        row: the job's stored row (:meth:`JobStore.create`); spec: what to run.
        wait: seconds the agent may hold its answer for a job that ends that soon (None: at once).
        secrets: the values of the secrets the job names (NAME -> value), delivered with the start.

    Raises:
        ApiProblem: 4xx, the agent's own verdict on the request (the job is failed with it).
    """
    call = protocol.JobStart(
        job_id=row["id"],
        command=spec.command,
        args=spec.args or [],
        shell=spec.shell,
        env=spec.env or [],
        cwd=spec.cwd,
        timeout=spec.timeout,
        wait=wait or None,  # a job that ends at once comes back with its result (docs/protocol.md)
        secrets=secrets or {},
    )
    jobs.starting.add(row["id"])
    try:
        result = await hub.call(host_id, call)
    except HostOffline as exc:  # the agent went away before the request was sent: it never ran
        await jobs.fail(row, f"could not be started: {exc.message}")
        return
    except AgentUnreachable as exc:  # it may have started: let its record say later
        log.info("job %s: the start was not confirmed (%s); left queued", row["id"], exc.message)
        return
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


async def wait_end(request: Request, job_id: str, seconds: float) -> None:
    """Wait up to ``seconds`` for the job's end to be stored (no-op for a job that is not live)."""
    out = jobs_of(request).live.get(job_id)
    if out is not None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await out.done.wait()


@router.post("/{host_id}/exec", status_code=201, response_model=None)
@uses_agent
async def run_job(
    request: Request, _tenant: Tenant, host: TenantHost, body: Body_, wait: Wait = None
) -> dict[str, Any] | JSONResponse | StreamingResponse:
    """Start a job on the host, in either dialect (docs/api.md, "MIOSA's SDKs").

    Without ``stream``: 201 with the job (``?wait=`` seconds: once it ends if it ends that soon).
    ``stream: false``: 200 once it ended, the job with ``job_id``, ``exit_code``, ``stdout``, ``stderr``.
    ``stream: true``: 200 ``text/event-stream`` of its output on the POST; errors go in the stream.
    """
    if body.get("stream") is True:
        try:
            exec_request = parse_exec(body, ExecRequest)
            require_online(request, host)
            secrets = await secret_values(request, host, exec_request.spec)
        except (RequestValidationError, ApiProblem) as exc:
            code, message = problem_of(exc)
            events = durable.error_events("exec_error", OWNER, "", code, message)
            return sse_response(durable.sse(events, keepalive_of(request)))
    else:
        exec_request = parse_exec(body, ExecRequest)
        require_online(request, host)
        secrets = await secret_values(request, host, exec_request.spec)
    spec = exec_request.spec
    jobs = jobs_of(request)
    row = jobs.create(host.tenant_id, host.id, spec)
    if exec_request.stream:
        stream = jobs.stream(row, None, keepalive_of(request))  # reading from the start: nothing missed
        with contextlib.suppress(ApiProblem):  # the agent's verdict ends the stream with exec_error
            await start_job(request, host, row, spec, None, secrets)
        return sse_response(stream)
    await start_job(request, host, row, spec, wait, secrets)
    if exec_request.stream is False:
        await wait_end(request, row["id"], spec.timeout + RESULT_SLACK)
        return JSONResponse(jobs.full(job_row(request, host, row["id"])).model_dump(mode="json"))
    if wait:
        await wait_end(request, row["id"], wait)
    return jobs.full(job_row(request, host, row["id"])).model_dump(mode="json")


@router.post("/{host_id}/jobs", status_code=202)
@uses_agent
async def dispatch_job(request: Request, _tenant: Tenant, host: TenantHost, body: Body_) -> dict[str, Any]:
    """MIOSA's durable dispatch: start the job (either dialect, no ``stream``) and answer 202 at once
    with the job and ``links`` to its record and its stream."""
    spec = parse_exec(body, ExecRequest).hosted_spec
    require_online(request, host)
    secrets = await secret_values(request, host, spec)
    jobs = jobs_of(request)
    row = jobs.create(host.tenant_id, host.id, spec)
    await start_job(request, host, row, spec, None, secrets)
    job = jobs.full(job_row(request, host, row["id"])).model_dump(mode="json")
    base = f"{request.app.state.settings.base_url}{API_PREFIX}/hosts/{host.id}/exec/{row['id']}"
    return {**job, "job": dict(job), "links": {"self": base, "stream": f"{base}/stream"}}


@router.get("/{host_id}/jobs")
async def recent_jobs(
    request: Request, host: TenantHost, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> dict[str, Any]:
    """MIOSA's job activity list: ``{"jobs": [...]}``, the host's ``limit`` newest jobs (each a job
    record with the row fields ``job_id``, ``kind``, ``status``, ``duration_ms``, ``dispatched_at``,
    ``completed_at``)."""
    jobs, _ = jobs_of(request).page(host.id, 1, limit)
    return {"jobs": [job.model_dump(mode="json") for job in jobs]}


@router.get("/{host_id}/exec")
async def list_jobs(request: Request, host: TenantHost, paging: PageQuery) -> dict[str, Any]:
    """The host's jobs, newest first, a page at a time (each with the first 4 KiB of its output)."""
    return paging.body(*jobs_of(request).page(host.id, paging.page, paging.per_page))


@router.get("/{host_id}/exec/{job_id}")
async def get_job(request: Request, host: TenantHost, job_id: JobId) -> dict[str, Any]:
    """One job with its stored output."""
    return jobs_of(request).full(job_row(request, host, job_id)).model_dump(mode="json")


@router.delete("/{host_id}/exec/{job_id}", status_code=204)
@uses_agent
async def cancel_job(request: Request, host: TenantHost, job_id: JobId) -> Response:
    """Kill the job's process tree; status ``cancelled``. A finished job: 204, nothing changes."""
    jobs = jobs_of(request)
    row = job_row(request, host, job_id)
    if row["status"] in FINAL:
        return Response(status_code=204)
    require_online(request, host)
    await cancel(hub_of(request), jobs, host.id, job_id)
    return Response(status_code=204)


async def cancel(hub: Hub, jobs: JobStore, host_id: str, job_id: str) -> None:
    """Kill a job's process tree on its (online) host and wait up to :data:`CANCEL_WAIT` seconds for its
    exit report; a job the agent did not know, or whose report is late, is stored ``cancelled``.

    Raises:
        HostOffline, AgentUnreachable: the agent could not be asked.
    """
    out = jobs.live.get(job_id)
    result = await hub.call(host_id, protocol.JobCancel(job_id=job_id))
    if out is not None and isinstance(result, dict) and result.get("known"):
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CANCEL_WAIT):
                await out.done.wait()  # the exit report, after the last output byte
    row = jobs.row(host_id, job_id)
    if row is not None and row["status"] not in FINAL:  # unknown to the agent, or its report is late
        await jobs.finish(row, "cancelled", None, None, {"reason": "cancelled"})


@router.get("/{host_id}/exec/{job_id}/stream")
async def stream_job(request: Request, host: TenantHost, job_id: JobId) -> StreamingResponse:
    """The job's output as SSE, resumable with ``Last-Event-ID`` (a byte offset), ending with ``exit``;
    in binary frames instead when the client's ``Accept`` names ``durable.FRAMES_MEDIA_TYPE``."""
    row = job_row(request, host, job_id)
    jobs, after, keepalive = jobs_of(request), last_event_id(request), keepalive_of(request)
    if durable.FRAMES_MEDIA_TYPE in request.headers.get("accept", ""):
        return sse_response(jobs.frames(row, after, keepalive), durable.FRAMES_MEDIA_TYPE)
    return sse_response(jobs.stream(row, after, keepalive))
