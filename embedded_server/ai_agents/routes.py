"""``/hosts/{id}/agent/…``: dispatch an AI agent session, list, get, cancel, approve its calls, stream
its events (SSE at ``…/stream`` and ``…/events``); ``/agent/config``: the tenant's model.

Every route is ``async def`` (see deps.py).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.responses import StreamingResponse

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import AGENT_TOOLS, AgentConfig, AgentDecision, AgentDispatch, Host

from .. import durable, limits
from ..deps import (
    PageQuery,
    Tenant,
    TenantHost,
    keepalive_of,
    last_event_id,
    path_id,
    require_online,
    sse_response,
)
from ..errors import ApiProblem
from .loop import NoDecision, Runner
from .store import FINAL, OWNER, ModelConfig, SessionStore, session_model

router = limits.router(tags=["agents"])

NOT_CONFIGURED = (
    "no model is configured for AI agents: set an OpenAI-compatible endpoint with PUT "
    "/api/v1/opencomputers/agent/config {base_url, model, api_key_secret} (the TUI: Agents tab, key m), "
    "or start oc-server with --ai-base-url and --ai-model"
)

MAX_RUNNING = 16  # sessions of one tenant pending or running at once
SessionId = Annotated[str, Depends(path_id("session", "session (sess_…)"))]


def store_of(request: Request) -> SessionStore:
    """The application's session store."""
    store: SessionStore = request.app.state.ai_sessions
    return store


def runner_of(request: Request) -> Runner:
    """The application's session runner."""
    runner: Runner = request.app.state.ai_runner
    return runner


def session_row(request: Request, host: Host, session_id: str) -> dict[str, Any]:
    """The host's session row, or 404 NOT_FOUND."""
    row = store_of(request).row(host.id, session_id)
    if row is None:
        raise ApiProblem(404, ErrorCode.NOT_FOUND, f"session {session_id} not found")
    return row


def body_of(row: dict[str, Any]) -> dict[str, Any]:
    """A session as the API answers it."""
    return session_model(row).model_dump(mode="json")


@router.post("/hosts/{host_id}/agent/dispatch", status_code=201)
async def dispatch(
    request: Request, tenant_id: Tenant, host: TenantHost, body: AgentDispatch
) -> dict[str, Any]:
    """Start a session on the host: 201 with it (``pending``; it runs at once). 409 when no model is
    configured, or the host is offline."""
    store = store_of(request)
    config = store.config(tenant_id)
    if not config.configured:
        raise ApiProblem(409, ErrorCode.CONFLICT, NOT_CONFIGURED)
    require_online(request, host)
    if store.running(tenant_id) >= MAX_RUNNING:
        message = f"{MAX_RUNNING} sessions of this tenant are running already: wait for one, or cancel one"
        raise ApiProblem(409, ErrorCode.CONFLICT, message)
    fields = {
        "task": body.task,
        "model_id": body.model_id or body.model or config.model,
        "max_turns": body.max_turns,
        "approval": body.approval,
        "tools": list(dict.fromkeys(body.tools)) if body.tools else list(AGENT_TOOLS),
        "context": body.context or {},
        "budget": body.budget or {},
    }
    row = store.create(tenant_id, host.id, fields)
    runner_of(request).start(row["id"])
    return body_of(row)


@router.get("/hosts/{host_id}/agent/sessions")
async def list_sessions(request: Request, host: TenantHost, paging: PageQuery) -> dict[str, Any]:
    """The host's sessions, newest first, a page at a time."""
    return paging.body(*store_of(request).page(host.id, paging.page, paging.per_page))


@router.get("/hosts/{host_id}/agent/sessions/{session_id}")
async def get_session(request: Request, host: TenantHost, session_id: SessionId) -> dict[str, Any]:
    """One session."""
    return body_of(session_row(request, host, session_id))


@router.delete("/hosts/{host_id}/agent/sessions/{session_id}", status_code=204)
async def cancel_session(request: Request, host: TenantHost, session_id: SessionId) -> Response:
    """Cancel: the model call in flight is dropped, a running command killed; ``cancelled``. A finished
    session: 204, nothing changes."""
    session_row(request, host, session_id)
    await runner_of(request).cancel(session_id)
    return Response(status_code=204)


@router.post("/hosts/{host_id}/agent/sessions/{session_id}/approval")
async def decide(
    request: Request, host: TenantHost, session_id: SessionId, body: AgentDecision
) -> dict[str, Any]:
    """The operator's answer to the call waiting for approval (approval mode); the session after it.
    409 when the session is not waiting for that call."""
    session_row(request, host, session_id)
    try:
        runner_of(request).decide(session_id, body)
    except NoDecision as exc:
        raise ApiProblem(409, ErrorCode.CONFLICT, str(exc)) from None
    return body_of(session_row(request, host, session_id))


async def session_events(store: SessionStore, session_id: str, after: int) -> AsyncGenerator[str, None]:
    """The session's events after number ``after``, stored then live, until its final ``status``.

    The stream then ends without ``data: [DONE]``: MIOSA's Python SDK parses every ``data:`` line of an
    agent stream as an event and fails on it; the Go SDK stops at the end of the stream as well."""
    position = after
    while True:
        changed = store.changed(session_id)
        rows = store.events(session_id, position)
        if rows:
            yield "".join(
                durable.sse_event(r["seq"], r["type"], OWNER, session_id, r["data"], r["timestamp"])
                for r in rows
            )
            position = rows[-1]["seq"]
            continue
        row = store.get(session_id)
        if row is None or row["status"] in FINAL:
            return
        await changed.wait()


def stream_response(request: Request, host: Host, session_id: str) -> StreamingResponse:
    """The session's SSE stream, resumable with ``Last-Event-ID`` (an event number)."""
    session_row(request, host, session_id)
    events = session_events(store_of(request), session_id, last_event_id(request) or 0)
    return sse_response(durable.sse(events, keepalive_of(request)))


@router.get("/hosts/{host_id}/agent/sessions/{session_id}/stream")
async def stream(request: Request, host: TenantHost, session_id: SessionId) -> StreamingResponse:
    """The session's events as SSE (the reference's path)."""
    return stream_response(request, host, session_id)


@router.get("/hosts/{host_id}/agent/sessions/{session_id}/events")
async def events(request: Request, host: TenantHost, session_id: SessionId) -> StreamingResponse:
    """The same stream at the path MIOSA's SDKs use."""
    return stream_response(request, host, session_id)


@router.get("/agent/config")
async def get_config(request: Request, tenant_id: Tenant) -> dict[str, Any]:
    """The tenant's model configuration (``configured``: whether sessions can be dispatched)."""
    return store_of(request).config(tenant_id).public()


@router.put("/agent/config")
async def put_config(request: Request, tenant_id: Tenant, body: AgentConfig) -> dict[str, Any]:
    """Set the tenant's model configuration: an OpenAI-compatible ``base_url``, the default ``model``,
    the name of the tenant secret holding the API key (``api_key_secret``, "" for none), ``streaming``."""
    if body.base_url and not body.base_url.startswith(("http://", "https://")):
        raise ApiProblem(400, ErrorCode.VALIDATION_ERROR, "base_url: must be an http:// or https:// URL")
    config = ModelConfig(body.base_url.rstrip("/"), body.model, body.api_key_secret, body.streaming)
    store_of(request).set_config(tenant_id, config)
    return config.public()
