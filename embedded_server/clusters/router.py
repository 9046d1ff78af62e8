"""The clusters' runtime: each host's engine health, the balancer, the OpenAI-compatible endpoint
``/inference/<slug>/v1/…``, Ollama pulls, the per-host counters and the live events.

Requests reach each host's engine through the host's agent (:mod:`embedded_server.agent_http`, keyed by
host ID), to ``127.0.0.1:<port>`` there: Ollama (its OpenAI-compatible ``/v1`` routes; health and pulls
through ``/api/tags`` and ``/api/pull``) or any OpenAI-compatible server (health through ``/v1/models``).

Routing: the least outstanding requests among the hosts whose engine is ``ready`` (it answered its
model list and serves the model); a host that fails before the first byte of its answer (agent gone,
nothing listening, a 5xx) is marked and the request goes to the next one; once the answer has started
it is passed through chunk by chunk, and a client that goes away ends the upstream request.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import httpcore
from fastapi import Request, Response
from fastapi.responses import JSONResponse

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import (
    Cluster,
    ClusterEngine,
    ClusterHost,
    DetectedEngine,
    PullProgress,
    format_timestamp,
    utcnow,
)

from ..agent_http import UPSTREAM_ERRORS, AgentPool, UpstreamResponse, chunks, response_headers, why_failed
from ..auth import bearer, tenant_for_token
from ..durable import sse_event
from ..errors import ApiProblem, error_response
from ..hub import Hub
from .store import ClusterStore

log = logging.getLogger("oc_server.clusters")

PREFIX = "/inference"
ROUTED = frozenset({"chat/completions", "completions", "embeddings"})
HISTORY = 30  # answers kept per host for the sparklines
PROBE_TIMEOUT = 3.0  # seconds for one health probe
MAX_PROBE_BODY = 1024 * 1024  # bytes of a model list read at most
MAX_DETAIL = 200  # characters of an engine's own words kept as a host's detail
USAGE_TAIL = 8192  # bytes of an answer's end searched for its usage fields
EVENT_QUEUE = 256  # events buffered per live reader before it is cut off
PULL_EVENT_EVERY = 0.25  # seconds between two pull_progress events of one host
PULL_TIMEOUT = 3600.0  # seconds an Ollama pull may take
DETECT_PORTS = {11434: "ollama", 8080: "openai", 8000: "openai"}  # where engines usually listen
_COMPLETION_TOKENS = re.compile(rb'"completion_tokens"\s*:\s*(\d+)')


def serves(model: str, names: list[str]) -> bool:
    """Whether an engine that lists ``names`` serves ``model`` (Ollama's ``:latest`` tag is implied)."""
    return model in names or f"{model}:latest" in names or (model.endswith(":latest") and model[:-7] in names)


@dataclass
class HostState:
    """One host of one cluster: where its engine is, how it is, and its counters."""

    host_id: str
    port: int
    name: str = ""
    health: str = "unknown"
    detail: str = ""
    models: list[str] = field(default_factory=list)
    pull: PullProgress | None = None
    in_flight: int = 0
    completed: int = 0
    errors: int = 0
    tokens_per_s: float = 0.0
    ttft_ms: float = 0.0
    tps_history: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=HISTORY))
    ttft_history: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=HISTORY))

    def model(self) -> ClusterHost:
        """The API's view of this host."""
        return ClusterHost(
            host_id=self.host_id,
            name=self.name,
            port=self.port,
            health=self.health,
            detail=self.detail,
            models=self.models[:50],
            pull=self.pull,
            in_flight=self.in_flight,
            completed=self.completed,
            errors=self.errors,
            tokens_per_s=round(self.tokens_per_s, 2),
            ttft_ms=round(self.ttft_ms, 2),
            tokens_per_s_history=[round(v, 2) for v in self.tps_history],
            ttft_ms_history=[round(v, 2) for v in self.ttft_history],
        )


@dataclass
class ClusterState:
    """The runtime of one cluster: its hosts in order and the balancer's tie-breaker."""

    cluster_id: str
    hosts: dict[str, HostState]
    turn: int = 0
    provisioning: asyncio.Task[None] | None = None

    def pick(self, tried: set[str]) -> HostState | None:
        """The ready host (not yet tried) with the fewest requests in flight; ties go round-robin."""
        ready = [h for h in self.hosts.values() if h.health == "ready" and h.host_id not in tried]
        if not ready:
            return None
        self.turn += 1
        least = min(h.in_flight for h in ready)
        tied = [h for h in ready if h.in_flight == least]
        return tied[self.turn % len(tied)]


class Meter:
    """Counts one answer as it passes: time to first byte, tokens (the usage fields at its end, else
    the SSE events of a stream), and finishes the host's counters when it ends."""

    def __init__(self, host: HostState, started: float, stream: bool) -> None:
        self.host = host
        self.started = started
        self.stream = stream
        self.first_at: float | None = None
        self.events = 0
        self.tail = b""

    def chunk(self, data: bytes) -> None:
        """One body chunk went to the client."""
        if self.first_at is None:
            self.first_at = time.monotonic()
        if self.stream:
            self.events += data.count(b"data: ") - data.count(b"data: [DONE]")
        self.tail = (self.tail + data)[-USAGE_TAIL:]

    def end(self, error: str | None) -> None:
        """The answer ended (``error``: why it broke off); the host's counters take it in."""
        host = self.host
        host.in_flight = max(0, host.in_flight - 1)
        if error is not None:
            host.errors += 1
            return
        host.completed += 1
        now = time.monotonic()
        first = self.first_at or now
        host.ttft_ms = (first - self.started) * 1000
        host.ttft_history.append(host.ttft_ms)
        found = _COMPLETION_TOKENS.findall(self.tail)
        tokens = int(found[-1]) if found else self.events
        span = (now - first) if self.stream and now - first > 0.001 else now - self.started
        if tokens > 0 and span > 0:
            host.tokens_per_s = tokens / span
            host.tps_history.append(host.tokens_per_s)


class ClusterRouter:
    """Serves every cluster: health, balancing, the endpoint, pulls, counters and events.

    Args:
        store: the cluster records.
        hub: the connected agents.
        hosts: the host records (``row(host_id)`` for names).
        db: the database (API tokens).
        base_url: the server's public base URL (``inference_url``).
        health_interval: seconds between two health rounds of the running clusters.
    """

    def __init__(
        self, store: ClusterStore, hub: Hub, hosts: Any, db: Any, base_url: str, health_interval: float
    ) -> None:
        self.store = store
        self.hub = hub
        self.hosts = hosts
        self.db = db
        self.base_url = base_url.rstrip("/")
        self.health_interval = health_interval
        self.agents = AgentPool(hub, self._host_of, "the host is not known")
        self._states: dict[str, ClusterState] = {}
        self._readers: dict[str, set[asyncio.Queue[str | None]]] = {}
        self._monitor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def _host_of(self, key: str) -> str | None:
        return key if self.hosts.row(key) is not None else None

    # --- state and the API's view ------------------------------------------------------------------------

    def state(self, row: dict[str, Any]) -> ClusterState:
        """The runtime of a cluster row (made on first use)."""
        state = self._states.get(row["id"])
        if state is None:
            hosts = {}
            for host_id in row["host_ids"]:
                port = int(row["host_ports"].get(host_id) or row["engine_port"])
                host = self.hosts.row(host_id) or {}
                hosts[host_id] = HostState(host_id, port, name=str(host.get("name") or ""))
                if not self.hub.is_online(host_id):
                    hosts[host_id].health = "offline"
            state = self._states[row["id"]] = ClusterState(row["id"], hosts)
        return state

    def model(self, row: dict[str, Any]) -> Cluster:
        """The API's Cluster of a row, with its hosts' health and counters."""
        state = self.state(row)
        return Cluster(
            id=row["id"],
            name=row["name"],
            model=row["model"],
            slug=row["slug"],
            status=row["status"],
            host_ids=row["host_ids"],
            inference_url=f"{self.base_url}{PREFIX}/{row['slug']}/v1",
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            engine=ClusterEngine(kind=row["engine_kind"], port=row["engine_port"]),
            hosts=[host.model() for host in state.hosts.values()],
            status_reason=row["status_reason"],
        )

    # --- events -----------------------------------------------------------------------------------------

    def publish(self, cluster_id: str, type_: str, data: dict[str, Any]) -> None:
        """Send an event to the cluster's live readers (one too far behind is cut off: it reconnects)."""
        frame = sse_event(None, type_, "cluster", cluster_id, json.dumps(data), format_timestamp(utcnow()))
        for queue in list(self._readers.get(cluster_id, ())):
            try:
                queue.put_nowait(frame)
            except asyncio.QueueFull:  # too far behind: its stream ends (the client reconnects)
                self._readers[cluster_id].discard(queue)
                queue.get_nowait()
                queue.put_nowait(None)

    async def events(self, row: dict[str, Any]) -> AsyncGenerator[str, None]:
        """The cluster's events for :func:`durable.sse`: its status and every host's health now, then
        each change; ends after ``destroyed``."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(EVENT_QUEUE)
        self._readers.setdefault(row["id"], set()).add(queue)
        try:
            now = format_timestamp(utcnow())
            yield sse_event(
                None, "status_change", "cluster", row["id"], json.dumps({"status": row["status"]}), now
            )
            for host in self.state(row).hosts.values():
                yield sse_event(None, "host_health", "cluster", row["id"], json.dumps(_health(host)), now)
            while (frame := await queue.get()) is not None:
                yield frame
        finally:
            readers = self._readers.get(row["id"])
            if readers is not None:
                readers.discard(queue)

    def _set_status(self, cluster_id: str, status: str, reason: str | None = None) -> None:
        if self.store.set_status(cluster_id, status, reason):
            self.publish(cluster_id, "status_change", {"status": status, "reason": reason})

    def _set_health(self, cluster_id: str, host: HostState, health: str, detail: str = "") -> None:
        detail = detail[:MAX_DETAIL]
        if (host.health, host.detail) != (health, detail):
            host.health, host.detail = health, detail
            self.publish(cluster_id, "host_health", _health(host))

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self, row: dict[str, Any]) -> dict[str, Any]:
        """Start (or re-check) the cluster: ``provisioning`` while every host's engine is checked and
        Ollama pulls a missing model; ``active`` once a host serves it, else ``error``. Returns the row."""
        state = self.state(row)
        if state.provisioning is not None and not state.provisioning.done():
            return self.store.by_id(row["id"]) or row
        self._set_status(row["id"], "provisioning")
        state.provisioning = self._spawn(self._provision(row["id"]))
        return self.store.by_id(row["id"]) or row

    async def _provision(self, cluster_id: str) -> None:
        row = self.store.by_id(cluster_id)
        if row is None:
            return
        await self.check(row)
        state = self.state(row)
        if row["engine_kind"] == "ollama":
            missing = [h for h in state.hosts.values() if h.health == "no_model"]
            await asyncio.gather(*(self._pull(row, host) for host in missing))
        row = self.store.by_id(cluster_id)
        if row is None or row["status"] != "provisioning":
            return  # stopped or deleted meanwhile
        if any(h.health == "ready" for h in state.hosts.values()):
            self._set_status(cluster_id, "active")
        else:
            why = "; ".join(
                f"{h.name or h.host_id}: {h.health} {h.detail}".strip() for h in state.hosts.values()
            )
            self._set_status(cluster_id, "error", f"no host serves {row['model']}: {why}"[:500])

    def stop(self, row: dict[str, Any]) -> dict[str, Any]:
        """Stop routing to the cluster (requests are answered 503 until it is started again)."""
        state = self.state(row)
        if state.provisioning is not None:
            state.provisioning.cancel()
        self._set_status(row["id"], "stopped")
        return self.store.by_id(row["id"]) or row

    async def delete(self, row: dict[str, Any]) -> None:
        """The cluster was deleted: forget its runtime, tell its readers (``destroyed``) and end them."""
        state = self._states.pop(row["id"], None)
        if state is not None and state.provisioning is not None:
            state.provisioning.cancel()
        self.publish(row["id"], "status_change", {"status": "destroyed"})
        for queue in self._readers.pop(row["id"], set()):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def run_monitor(self) -> None:
        """Start the health rounds (server start-up; in the event loop)."""
        if self._monitor is None:
            self._monitor = asyncio.get_running_loop().create_task(self._watch())

    def stop_monitor(self) -> None:
        """Stop the health rounds and whatever provisioning runs (server stopping)."""
        for task in [self._monitor, *self._tasks]:
            if task is not None:
                task.cancel()
        self._monitor = None

    async def close(self) -> None:
        """Close the connections to the engines."""
        self.stop_monitor()
        await self.agents.close()

    async def _watch(self) -> None:
        while True:
            for row in self.store.running():
                try:
                    await self.check(row)
                except Exception:  # a round must never end the monitor
                    log.exception("health round of cluster %s failed", row["id"])
                if row["status"] == "provisioning":
                    continue
                if row["status"] == "active" and not self.state(row).hosts:
                    self._set_status(row["id"], "error", "no hosts")
            await asyncio.sleep(self.health_interval)

    async def host_down(self, host_id: str) -> None:
        """Hub hook: a host's agent left (or the host was revoked): its engine is not routed to."""
        for cluster_id, state in list(self._states.items()):
            host = state.hosts.get(host_id)
            if host is not None:
                self._set_health(cluster_id, host, "offline", "the host's agent is not connected")

    async def host_up(self, host_id: str, hello: dict[str, Any]) -> None:
        """Hub hook: a host's agent connected: check its engine again soon (after the welcome)."""

        async def later() -> None:
            await asyncio.sleep(0.2)
            for row in self.store.running():
                host = self.state(row).hosts.get(host_id)
                if host is not None:
                    await self._check_host(row, host)

        self._spawn(later())

    # --- health ----------------------------------------------------------------------------------------

    async def check(self, row: dict[str, Any]) -> None:
        """Probe every host's engine once (in parallel) and publish what changed."""
        state = self.state(row)
        await asyncio.gather(*(self._check_host(row, host) for host in state.hosts.values()))

    async def _check_host(self, row: dict[str, Any], host: HostState) -> None:
        if host.health == "pulling":
            return
        health, detail, models = await self.probe(host.host_id, row["engine_kind"], host.port, row["model"])
        host.models = models
        self._set_health(row["id"], host, health, detail)

    async def probe(
        self, host_id: str, kind: str, port: int, model: str | None
    ) -> tuple[str, str, list[str]]:
        """Ask the engine on a host for its models: ``(health, detail, models)``; health is ``ready``
        when it serves ``model`` (or any, with None), ``no_model``, ``not_ready`` (it answered, but not
        200), ``unreachable`` or ``offline``."""
        if not self.hub.is_online(host_id):
            return "offline", "the host's agent is not connected", []
        target = "/api/tags" if kind == "ollama" else "/v1/models"
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                status, body = await self._get(host_id, port, target)
        except TimeoutError:
            return "unreachable", f"the engine on port {port} did not answer in {PROBE_TIMEOUT:g} s", []
        except UPSTREAM_ERRORS as exc:
            return _unreachable(exc), why_failed(exc), []
        if status != 200:
            return "not_ready", f"HTTP {status}: {_engine_words(body)}", []
        models = _model_names(kind, body)
        if model is None or serves(model, models):
            return "ready", "", models
        return "no_model", f"the engine does not serve {model}", models

    async def _get(self, host_id: str, port: int, target: str) -> tuple[int, bytes]:
        headers = [("host", f"127.0.0.1:{port}"), ("accept", "application/json")]
        response = await self.agents.send(host_id, port, "GET", target, headers, b"")
        try:
            body = b""
            async for chunk in chunks(response):
                body += chunk
                if len(body) > MAX_PROBE_BODY:
                    break
        finally:
            await response.aclose()
        return response.status, body

    async def detect(self, host_id: str, ports: list[int]) -> list[DetectedEngine]:
        """The engines listening on a host's usual ports (and ``ports``, tried as OpenAI-compatible)."""
        wanted = dict(DETECT_PORTS)
        for port in ports:
            wanted.setdefault(port, "openai")

        async def one(port: int, kind: str) -> DetectedEngine | None:
            health, _, models = await self.probe(host_id, kind, port, None)
            if health in ("unreachable", "offline"):
                return None
            return DetectedEngine(kind=kind, port=port, ready=health == "ready", models=models[:50])

        found = await asyncio.gather(*(one(port, kind) for port, kind in wanted.items()))
        return [engine for engine in found if engine is not None]

    # --- Ollama pulls ----------------------------------------------------------------------------------

    async def _pull(self, row: dict[str, Any], host: HostState) -> None:
        """Ask the host's Ollama to pull the model, publishing its progress; the host is checked again
        afterwards."""
        cluster_id = row["id"]
        host.pull = PullProgress(status="starting")
        self._set_health(cluster_id, host, "pulling", f"pulling {row['model']}")
        body = json.dumps({"model": row["model"], "name": row["model"], "stream": True}).encode()
        headers = [("host", f"127.0.0.1:{host.port}"), ("content-type", "application/json")]
        headers.append(("content-length", str(len(body))))
        error = ""
        try:
            async with asyncio.timeout(PULL_TIMEOUT):
                response = await self.agents.send(host.host_id, host.port, "POST", "/api/pull", headers, body)
                try:
                    error = await self._follow_pull(cluster_id, host, response)
                finally:
                    await response.aclose()
        except TimeoutError:
            error = f"the pull took longer than {PULL_TIMEOUT:g} s"
        except UPSTREAM_ERRORS as exc:
            error = why_failed(exc)
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            error = why_failed(exc)
        host.health = "unknown"
        if error:
            host.pull = PullProgress(status=f"failed: {error}"[:MAX_DETAIL])
            self.publish(cluster_id, "pull_progress", {"host_id": host.host_id, **host.pull.model_dump()})
        await self._check_host(row, host)

    async def _follow_pull(self, cluster_id: str, host: HostState, response: httpcore.Response) -> str:
        """Read Ollama's NDJSON progress into ``host.pull``; returns its error ("" on success)."""
        if response.status != 200:
            body = b""
            async for chunk in chunks(response):
                body = (body + chunk)[:MAX_PROBE_BODY]
            return f"HTTP {response.status}: {_engine_words(body)}"
        buffer = b""
        last_sent = 0.0
        async for chunk in chunks(response):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(item, dict):
                    continue
                if item.get("error"):
                    return str(item["error"])[:MAX_DETAIL]
                assert host.pull is not None
                host.pull = PullProgress(
                    status=str(item.get("status", ""))[:MAX_DETAIL],
                    completed=int(item.get("completed") or host.pull.completed),
                    total=int(item.get("total") or host.pull.total),
                )
                now = time.monotonic()
                if now - last_sent >= PULL_EVENT_EVERY or host.pull.status == "success":
                    last_sent = now
                    self.publish(
                        cluster_id, "pull_progress", {"host_id": host.host_id, **host.pull.model_dump()}
                    )
        return ""

    # --- the endpoint ----------------------------------------------------------------------------------

    def _authorized_row(self, request: Request, slug: str) -> dict[str, Any]:
        token = bearer(request.headers.get("authorization", ""))
        tenant = tenant_for_token(self.db, token) if token else None
        if tenant is None:
            raise ApiProblem(401, ErrorCode.UNAUTHORIZED, "send the tenant's API token as a bearer token")
        row = self.store.by_slug(slug)
        if row is None or row["tenant_id"] != tenant:
            raise ApiProblem(404, ErrorCode.NOT_FOUND, f"no cluster named {slug!r}")
        return row

    async def serve(self, request: Request, slug: str, path: str) -> Response:
        """One request to a cluster's OpenAI-compatible endpoint (``path`` under ``/v1/``)."""
        try:
            row = self._authorized_row(request, slug)
            if path == "models" and request.method == "GET":
                return JSONResponse(_model_list(row))
            if path not in ROUTED or request.method != "POST":
                raise ApiProblem(404, ErrorCode.NOT_FOUND, f"no {request.method} /v1/{path} on a cluster")
            if row["status"] == "stopped":
                raise ApiProblem(
                    503, "CLUSTER_STOPPED", f"cluster {row['slug']} is stopped; start it to use it"
                )
            if row["status"] == "error":
                raise ApiProblem(
                    503, "CLUSTER_ERROR", f"cluster {row['slug']} failed: {row['status_reason']}"
                )
            body = await request.body()
            try:
                fields = json.loads(body)
            except ValueError:
                fields = None
            if not isinstance(fields, dict):
                raise ApiProblem(400, ErrorCode.INVALID_JSON, "the body must be a JSON object")
            return await self._route(
                row, path, body, bool(fields.get("stream")), request.headers.get("accept")
            )
        except ApiProblem as exc:
            return error_response(exc.status, exc.code, exc.message)

    async def _route(
        self, row: dict[str, Any], path: str, body: bytes, stream: bool, accept: str | None
    ) -> Response:
        state = self.state(row)
        tried: set[str] = set()
        failures: list[str] = []
        while (host := state.pick(tried)) is not None:
            tried.add(host.host_id)
            answer = await self._try(row, host, path, body, stream, accept)
            if isinstance(answer, Response):
                return answer
            failures.append(f"{host.name or host.host_id}: {answer}")
        if failures:
            why = "; ".join(failures)
        else:
            why = ", ".join(f"{h.name or h.host_id} {h.health}" for h in state.hosts.values()) or "no hosts"
            why = f"no host's engine is ready ({why})"
        return error_response(503, "NO_READY_HOST", f"cluster {row['slug']} cannot answer now: {why}"[:1000])

    async def _try(
        self, row: dict[str, Any], host: HostState, path: str, body: bytes, stream: bool, accept: str | None
    ) -> Response | str:
        """Send the request to one host; the answer once its first byte is in, or why the host failed
        (it is marked, and the caller tries the next)."""
        headers = [
            ("host", f"127.0.0.1:{host.port}"),
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
            ("accept", accept or ("text/event-stream" if stream else "application/json")),
        ]
        host.in_flight += 1
        started = time.monotonic()
        committed = False
        try:
            try:
                response = await self.agents.send(
                    host.host_id, host.port, "POST", f"/v1/{path}", headers, body
                )
            except UPSTREAM_ERRORS as exc:
                self._set_health(row["id"], host, _unreachable(exc), why_failed(exc))
                host.errors += 1
                return why_failed(exc)
            if response.status >= 500:
                status, words = response.status, await _drain(response)
                host.errors += 1
                if status == 503:
                    self._set_health(row["id"], host, "not_ready", f"HTTP 503: {words}")
                return f"HTTP {status}: {words}"
            rest = chunks(response)
            try:
                first = await anext(rest, b"")
            except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException) as exc:
                await response.aclose()
                host.errors += 1
                self._set_health(row["id"], host, "unreachable", why_failed(exc))
                return why_failed(exc)
            meter = Meter(host, started, stream)
            committed = True
            return UpstreamResponse(response, response_headers(response), meter.chunk, meter.end, first, rest)
        finally:
            if not committed:
                host.in_flight = max(0, host.in_flight - 1)


# --- helpers -------------------------------------------------------------------------------------------


def _health(host: HostState) -> dict[str, Any]:
    return {"host_id": host.host_id, "health": host.health, "detail": host.detail}


def _unreachable(exc: Exception) -> str:
    if isinstance(exc, ApiProblem) and exc.code == ErrorCode.HOST_OFFLINE:
        return "offline"
    return "unreachable"


async def _drain(response: httpcore.Response) -> str:
    """Read a failed answer's body (bounded) and close it; returns the engine's words."""
    body = b""
    try:
        async for chunk in chunks(response):
            body = (body + chunk)[:MAX_PROBE_BODY]
    except (httpcore.NetworkError, httpcore.ProtocolError):
        pass
    finally:
        await response.aclose()
    return _engine_words(body)


def _engine_words(body: bytes) -> str:
    """An engine's error message (``error.message``, ``error`` or the body's start)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body[:MAX_DETAIL].decode("utf-8", "replace").strip()
    if isinstance(parsed, dict):
        error = parsed.get("error", parsed.get("detail", parsed))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:MAX_DETAIL]
    return str(parsed)[:MAX_DETAIL]


def _model_names(kind: str, body: bytes) -> list[str]:
    """The model names in Ollama's ``/api/tags`` or an OpenAI ``/v1/models`` answer."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return []
    items = parsed.get("models" if kind == "ollama" else "data") if isinstance(parsed, dict) else None
    names: list[str] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            name = item.get("name") or item.get("model") or item.get("id")
            if isinstance(name, str):
                names.append(name)
    return names


def _model_list(row: dict[str, Any]) -> dict[str, Any]:
    created = int(time.mktime(time.strptime(row["created_at"][:19], "%Y-%m-%dT%H:%M:%S")))
    model = {"id": row["model"], "object": "model", "created": created, "owned_by": f"cluster:{row['slug']}"}
    return {"object": "list", "data": [model]}
