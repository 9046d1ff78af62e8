"""The tunnel proxy: every request under ``/t/<slug>/…`` goes through the host's agent to
``127.0.0.1:<target_port>`` on the host.

HTTP: the control plane speaks HTTP/1.1 to the app itself (httpcore) over a byte stream the agent relays
(``tunnel.connect``): httpcore's connection pool runs on :class:`AgentBackend`, whose "TCP connections"
are agent request streams. Each stream is a WebSocket of its own, so every request has its own flow
control (a big download never holds up the others) and an idle stream is kept for the next request to
the same tunnel and port, which saves the agent round trip and the stream's dial. Request and response
bodies flow chunk by chunk with back pressure both ways (httpcore's writes wait for the stream, the
stream waits for uvicorn's transport), so no body sits in memory.

WebSocket: the agent opens the app's WebSocket (``tunnel.websocket``) and relays messages.

Auth, per tunnel: ``public``; ``tenant_only`` (the tenant's API token as a bearer, or the cookie the
small login page sets); ``password`` (HTTP basic, failures rate-limited per client address). The
tunnel's own credentials are taken out before the app sees the request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import hashlib
import hmac
import html
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

import anyio
import httpcore
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from oc_tui.api.errors import ErrorCode

from .. import protocol
from ..auth import bearer, tenant_for_token
from ..errors import ApiProblem, error_response
from ..hub import AgentStream, HostOffline, Hub
from ..race import until_first_ends
from .inspector import Body, Inspector, Record
from .store import TunnelStore

log = logging.getLogger("oc_server.tunnels")

PREFIX = "/t"
LOGIN_PATH = "/__oc_login"  # under a tenant_only tunnel's URL: the login page
COOKIE = "oc_tunnel"
COOKIE_TTL = 7 * 24 * 3600  # seconds a login cookie stays valid
COOKIE_KEY_FILE = "tunnel-cookie-key"
MAX_LOGIN_BODY = 4096  # bytes of the login form read at most
QUEUED_FRAMES = 4  # frames read ahead from a stream before back pressure holds the agent
POOL_CONNECTIONS = 1000  # streams open at once across all tunnels
POOL_IDLE = 64  # idle streams kept for reuse
IDLE_EXPIRY = 30.0  # seconds an idle stream is kept
FAILURES_ALLOWED = 10  # wrong passwords per client address per window, then 429
FAILURE_WINDOW = 60.0  # seconds

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "expect",  # 100-continue is between the client and the control plane
    }
)
RESPONSE_DROPPED = (HOP_BY_HOP - {"host"}) | {"date", "server"}
FORWARDED = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-prefix"})
WS_HANDSHAKE = frozenset(
    {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"}
)
STREAM_ERRORS = (RuntimeError, OSError, WebSocketDisconnect)


class Closable(Protocol):
    """Something open on behalf of a tunnel that :meth:`Proxy.end` can close."""

    async def aclose(self) -> None:
        """Close it (closing twice is harmless)."""
        ...


# --- httpcore over agent streams ---------------------------------------------------------------------


class AgentSocket(httpcore.AsyncNetworkStream):
    """An agent request stream as httpcore's network stream: binary frames are the TCP bytes.

    A reader task reads a few frames ahead (:data:`QUEUED_FRAMES`), so the pool can tell an idle stream
    the app has closed (``is_readable``) from one it may reuse; past that the agent waits (back pressure).
    """

    def __init__(self, stream: AgentStream, on_close: Callable[[Closable], None]) -> None:
        self.stream = stream
        self._on_close = on_close
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUED_FRAMES)
        self._buffer = memoryview(b"")
        self._eof = False
        self._reader = asyncio.get_running_loop().create_task(self._read_ahead())

    async def _read_ahead(self) -> None:
        try:
            while (frame := await self.stream.receive_frame()) is not None:
                if isinstance(frame, bytes) and frame:
                    await self._queue.put(frame)
        finally:
            self._eof = True
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Up to ``max_bytes`` of the app's bytes; ``b""`` once the stream has ended."""
        if not self._buffer:
            try:
                async with asyncio.timeout(timeout):
                    frame = await self._queue.get() if not (self._eof and self._queue.empty()) else None
            except TimeoutError:
                raise httpcore.ReadTimeout("the app did not answer in time") from None
            if frame is None:
                self._eof = True
                with contextlib.suppress(asyncio.QueueFull):
                    self._queue.put_nowait(None)  # every later read sees the end too
                return b""
            self._buffer = memoryview(frame)
        data, self._buffer = bytes(self._buffer[:max_bytes]), self._buffer[max_bytes:]
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send ``buffer`` to the app (waits while the stream is full)."""
        if not buffer:
            return
        try:
            async with asyncio.timeout(timeout):
                await self.stream.send_bytes(buffer)
        except TimeoutError:
            raise httpcore.WriteTimeout("the app did not take the request in time") from None
        except STREAM_ERRORS:
            raise httpcore.WriteError("the tunnel's connection to the app closed") from None

    async def aclose(self) -> None:
        """Close the stream (the agent closes its connection to the app)."""
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.stream.close()
        self._on_close(self)

    def get_extra_info(self, info: str) -> Any:
        """``is_readable``: the app closed an idle stream (or sent something unasked): do not reuse it."""
        if info == "is_readable":
            return self._eof or not self._queue.empty()
        return None


class AgentBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network for tunnels: "connecting" to ``(tunnel id, port)`` opens an agent stream.

    Args:
        hub: the connected agents.
        host_of: the host ID of a tunnel ID (None: the tunnel is gone).
        track, forget: called with the tunnel ID and each socket it opens / once it closed (so the
            proxy can end a tunnel's sockets).
    """

    def __init__(
        self,
        hub: Hub,
        host_of: Callable[[str], str | None],
        track: Callable[[str, Closable], None],
        forget: Callable[[str, Closable], None],
    ) -> None:
        self.hub = hub
        self.host_of = host_of
        self.track = track
        self.forget = forget
        self.connects = 0  # streams opened so far (a reused one is not counted again)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """A new stream to ``127.0.0.1:port`` on the tunnel's host.

        Raises:
            ApiProblem: the hub's errors (host offline, the agent's NOT_LISTENING …), 404 tunnel gone.
        """
        host_id = self.host_of(host)
        if host_id is None:
            raise ApiProblem(404, ErrorCode.NOT_FOUND, "the tunnel was deleted")
        _, stream = await self.hub.open_stream(host_id, protocol.TunnelConnect(port=port))
        self.connects += 1
        socket = AgentSocket(stream, lambda closed: self.forget(host, closed))
        self.track(host, socket)
        return socket

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        """Not used by tunnels."""
        raise httpcore.ConnectError("tunnels connect to TCP ports only")

    async def sleep(self, seconds: float) -> None:
        """Sleep (httpcore's retry back-off)."""
        await asyncio.sleep(seconds)


# --- the proxy ---------------------------------------------------------------------------------------


class Proxy:
    """Serves tunnels: auth, the HTTP pool over agent streams, WebSocket relays, and ending them.

    Args:
        store: the tunnel records.
        hub: the connected agents.
        hosts: the host records (``row(host_id)``, for the host's name and status).
        db: the database (API tokens, for ``tenant_only``).
        data_dir: where the login cookies' signing key is kept.
        public_scheme: ``http`` or ``https``, the scheme of the server's public URL (X-Forwarded-Proto).
    """

    def __init__(
        self, store: TunnelStore, hub: Hub, hosts: Any, db: Any, data_dir: Path, public_scheme: str
    ) -> None:
        self.store = store
        self.hub = hub
        self.hosts = hosts
        self.db = db
        self.public_scheme = public_scheme
        self._open: dict[str, set[Closable]] = {}
        self._failures: dict[str, collections.deque[float]] = {}
        self._cookie_key = _cookie_key(data_dir)
        self.inspector = Inspector()
        self.backend = AgentBackend(hub, self._host_of, self._track, self._forget)
        self.pool = httpcore.AsyncConnectionPool(
            network_backend=self.backend,
            max_connections=POOL_CONNECTIONS,
            max_keepalive_connections=POOL_IDLE,
            keepalive_expiry=IDLE_EXPIRY,
        )

    def _host_of(self, tunnel_id: str) -> str | None:
        row = self.db.one("SELECT host_id FROM tunnels WHERE id = ?", (tunnel_id,))
        return None if row is None else str(row["host_id"])

    def _track(self, tunnel_id: str, item: Closable) -> None:
        self._open.setdefault(tunnel_id, set()).add(item)

    def _forget(self, tunnel_id: str, item: Closable) -> None:
        items = self._open.get(tunnel_id)
        if items is not None:
            items.discard(item)
            if not items:
                del self._open[tunnel_id]

    def open_count(self, tunnel_id: str) -> int:
        """Streams (HTTP, idle or busy, and WebSocket relays) open for the tunnel now."""
        return len(self._open.get(tunnel_id, ()))

    async def end(self, tunnel_id: str) -> None:
        """End every connection of the tunnel: requests in flight break, WebSockets close.
        (Its inspector records stay, unless the tunnel is deleted: :meth:`forget`.)"""
        for item in list(self._open.pop(tunnel_id, ())):
            with contextlib.suppress(Exception):
                await item.aclose()

    async def forget(self, tunnel_id: str) -> None:
        """The tunnel was deleted: end its connections and drop its inspector records and readers."""
        await self.end(tunnel_id)
        self.inspector.forget(tunnel_id)

    async def host_revoked(self, host_id: str) -> None:
        """Hub hook: the host was revoked: its tunnels are disabled and their connections end."""
        for tunnel_id in self.store.disable_host(host_id):
            await self.end(tunnel_id)

    async def close(self) -> None:
        """Close the pool (server stopping)."""
        await self.pool.aclose()

    # --- auth ----------------------------------------------------------------------------------------

    def _cookie_value(self, tunnel: dict[str, Any], tenant_id: str) -> str:
        expires = int(time.time()) + COOKIE_TTL
        payload = f"{tunnel['id']}.{tenant_id}.{expires}"
        return f"{payload}.{self._sign(payload)}"

    def _sign(self, payload: str) -> str:
        return hmac.new(self._cookie_key, payload.encode(), hashlib.sha256).hexdigest()

    def _cookie_ok(self, tunnel: dict[str, Any], value: str) -> bool:
        payload, _, signature = value.rpartition(".")
        tunnel_id, _, rest = payload.partition(".")
        tenant_id, _, expires = rest.partition(".")
        return (
            hmac.compare_digest(self._sign(payload), signature)
            and tunnel_id == tunnel["id"]
            and tenant_id == tunnel["tenant_id"]
            and expires.isdigit()
            and int(expires) > time.time()
        )

    def _too_many_failures(self, address: str) -> bool:
        failures = self._failures.get(address)
        if not failures:
            return False
        horizon = time.monotonic() - FAILURE_WINDOW
        while failures and failures[0] < horizon:
            failures.popleft()
        if not failures:
            del self._failures[address]
        return len(failures) >= FAILURES_ALLOWED

    def _failed(self, address: str) -> None:
        failures = self._failures.setdefault(address, collections.deque(maxlen=FAILURES_ALLOWED))
        failures.append(time.monotonic())
        if len(self._failures) > 10_000:  # bounded: forget the oldest addresses
            self._failures.pop(next(iter(self._failures)))

    async def authorize(
        self, tunnel: dict[str, Any], headers: list[tuple[str, str]], address: str, wants_html: bool
    ) -> tuple[Response | None, list[tuple[str, str]]]:
        """Check the request's credentials for the tunnel.

        Returns:
            ``(None, headers without the tunnel's credentials)`` when allowed, else ``(the refusal,
            headers)``: 401 (a login redirect for a browser in ``tenant_only``), 429 after too many
            wrong passwords.
        """
        mode = tunnel["auth_mode"]
        if mode == "public":
            return None, headers
        authorization = next((v for k, v in headers if k == "authorization"), "")
        if mode == "tenant_only":
            token = bearer(authorization)
            if token and tenant_for_token(self.db, token) == tunnel["tenant_id"]:
                return None, [(k, v) for k, v in headers if k != "authorization"]
            cookies = [v for k, v in headers if k == "cookie"]
            kept, found = _take_cookie(cookies, COOKIE)
            if found and self._cookie_ok(tunnel, found):
                return None, [(k, v) for k, v in headers if k != "cookie"] + [("cookie", c) for c in kept]
            if wants_html:
                return RedirectResponse(f"{PREFIX}/{tunnel['slug']}{LOGIN_PATH}", status_code=303), headers
            return problem(401, "UNAUTHORIZED", "this tunnel needs the tenant's API token", False), headers
        # password
        if self._too_many_failures(address):
            response = problem(429, "RATE_LIMITED", "too many wrong passwords; wait a minute", wants_html)
            response.headers["Retry-After"] = str(int(FAILURE_WINDOW))
            return response, headers
        password = _basic_password(authorization)
        if password is not None and await self.store.password_ok(tunnel, password):
            return None, [(k, v) for k, v in headers if k != "authorization"]
        if password is not None:
            self._failed(address)
        response = problem(401, "UNAUTHORIZED", "this tunnel needs its password", wants_html)
        response.headers["WWW-Authenticate"] = f'Basic realm="tunnel {tunnel["slug"]}", charset="UTF-8"'
        return response, headers

    async def login(self, request: Request, tunnel: dict[str, Any]) -> Response:
        """The ``tenant_only`` login page: a form for the API token; a right one sets the cookie."""
        action = f"{PREFIX}/{tunnel['slug']}{LOGIN_PATH}"
        error = ""
        if request.method == "POST":
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_LOGIN_BODY:
                    return problem(413, ErrorCode.PAYLOAD_TOO_LARGE, "login form too large", True)
            token = (parse_qs(body.decode("utf-8", "replace")).get("token") or [""])[0].strip()
            if token and tenant_for_token(self.db, token) == tunnel["tenant_id"]:
                response = RedirectResponse(f"{PREFIX}/{tunnel['slug']}/", status_code=303)
                response.set_cookie(
                    COOKIE,
                    self._cookie_value(tunnel, tunnel["tenant_id"]),
                    max_age=COOKIE_TTL,
                    path=f"{PREFIX}/{tunnel['slug']}",
                    httponly=True,
                    samesite="lax",
                    secure=self.public_scheme == "https",
                )
                return response
            error = "<p class=error>That token does not open this tunnel.</p>"
        page = (
            "<!doctype html><meta charset=utf-8><title>Sign in</title>"
            "<style>body{font:16px system-ui;max-width:30em;margin:4em auto}.error{color:#b00}</style>"
            f"<h1>{html.escape(tunnel['slug'])}</h1><p>This tunnel is for its tenant only. "
            f"Paste an API token of the tenant.</p>{error}"
            f"<form method=post action='{html.escape(action)}'>"
            "<input name=token type=password autofocus size=40> <button>Sign in</button></form>"
        )
        return HTMLResponse(page, status_code=401 if error else 200)

    # --- serving -------------------------------------------------------------------------------------

    def forwarded_headers(
        self, headers: list[tuple[str, str]], slug: str, client: str, port: int
    ) -> list[tuple[str, str]]:
        """The request's headers as the app gets them: hop-by-hop ones (and those the Connection
        header names) and incoming X-Forwarded-* dropped; Host the app's own; X-Forwarded-* ours."""
        named = {token.strip().lower() for k, v in headers if k == "connection" for token in v.split(",")}
        original_host = next((v for k, v in headers if k == "host"), "")
        kept = [(k, v) for k, v in headers if k not in HOP_BY_HOP and k not in named and k not in FORWARDED]
        return [
            ("host", f"127.0.0.1:{port}"),
            *kept,
            ("x-forwarded-for", client),
            ("x-forwarded-proto", self.public_scheme),
            ("x-forwarded-host", original_host),
            ("x-forwarded-prefix", f"{PREFIX}/{slug}"),
        ]

    def _lookup(self, slug: str, wants_html: bool) -> tuple[dict[str, Any] | None, Response | None]:
        tunnel = self.store.by_slug(slug)
        if tunnel is None:
            return None, problem(404, ErrorCode.NOT_FOUND, f"no tunnel named {slug!r}", wants_html)
        return tunnel, None

    def _unavailable(self, tunnel: dict[str, Any], wants_html: bool) -> Response | None:
        """503 when the tunnel is disabled; 502 when its host is revoked or offline."""
        if not tunnel["enabled"]:
            message = f"tunnel {tunnel['slug']} is disabled; its owner can enable it again"
            return problem(503, "TUNNEL_DISABLED", message, wants_html)
        host = self.hosts.row(tunnel["host_id"]) or {}
        name = f"{host.get('name') or '?'} ({tunnel['host_id']})"
        if host.get("status") == "revoked":
            return problem(502, ErrorCode.HOST_REVOKED, f"host {name} is revoked", wants_html)
        if not self.hub.is_online(tunnel["host_id"]):
            return problem(502, ErrorCode.HOST_OFFLINE, f"host {name} is offline", wants_html)
        return None

    def _failure(self, tunnel: dict[str, Any], exc: Exception, wants_html: bool) -> Response:
        host = self.hosts.row(tunnel["host_id"]) or {}
        where = f"host {host.get('name') or '?'} ({tunnel['host_id']})"
        if isinstance(exc, ApiProblem):
            message = exc.message.replace("of the host", f"of {where}")
            status = exc.status if exc.status in (404, 502, 503) else 502
            return problem(status, exc.code, message, wants_html)
        return problem(
            502, ErrorCode.AGENT_UNREACHABLE, f"the connection to the app on {where} failed", wants_html
        )

    async def serve_http(self, request: Request, slug: str) -> Response:
        """One HTTP request to a tunnel, answered by the app (or by a page saying why not)."""
        wants_html = "text/html" in request.headers.get("accept", "")
        tunnel, refusal = self._lookup(slug, wants_html)
        if tunnel is None:
            assert refusal is not None
            return refusal
        target = _target(request.scope, slug)
        if target is None:  # /t/<slug> without the slash: the app's root is /t/<slug>/
            query = request.scope.get("query_string", b"").decode("latin-1")
            return RedirectResponse(f"{PREFIX}/{slug}/" + (f"?{query}" if query else ""), status_code=308)
        if tunnel["auth_mode"] == "tenant_only" and target.split("?")[0] == LOGIN_PATH:
            return await self.login(request, tunnel)
        client = request.client.host if request.client else ""
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]]
        refusal, headers = await self.authorize(tunnel, headers, client, wants_html)
        if refusal is None:
            refusal = self._unavailable(tunnel, wants_html)
        if refusal is not None:
            return refusal
        self.store.hit(tunnel["id"])
        forwarded = self.forwarded_headers(headers, slug, client, tunnel["target_port"])
        has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
        if has_body and "content-length" not in request.headers:
            forwarded.append(("transfer-encoding", "chunked"))
        record = self.inspector.start(tunnel["id"], request.method, target, client, forwarded)
        content = _tee(request.stream(), record.request) if has_body else b""
        try:
            response = await self._send(tunnel, request.method, target, forwarded, content)
        except (ApiProblem, httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException) as exc:
            answer = self._failure(tunnel, exc, wants_html)
            self.inspector.finished(record, error=_why(exc), status=answer.status_code)
            return answer
        headers_out = _response_headers(response)
        self.inspector.answered(record, response.status, headers_out)
        return UpstreamResponse(response, headers_out, self.inspector, record)

    async def _send(
        self,
        tunnel: dict[str, Any],
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        content: bytes | AsyncIterator[bytes],
    ) -> httpcore.Response:
        """One request to the tunnel's app through the pool (a reused stream, or a new one); returns
        once the response head is in, its body still to read."""
        upstream = httpcore.Request(
            method,
            httpcore.URL(scheme="http", host=tunnel["id"], port=tunnel["target_port"], target=target),
            headers=headers,
            content=content,
            extensions={"timeout": {"connect": None, "read": None, "write": None, "pool": None}},
        )
        return await self.pool.handle_async_request(upstream)

    async def replay(self, tunnel: dict[str, Any], original: Record, timeout: float) -> Record:
        """Send a kept request to the app again (same method, target, headers and body); its exchange is
        kept as a new record (``replay_of``), whose response body is read for at most ``timeout`` s.

        Raises:
            ApiProblem: 409 CONFLICT the body was not kept whole (over 10 KiB); 409 the host is offline;
                502 the app could not be reached.
        """
        if not original.request.whole:
            raise ApiProblem(
                409, ErrorCode.CONFLICT, "its body was larger than 10 KiB and was not kept whole"
            )
        if not self.hub.is_online(tunnel["host_id"]):
            raise HostOffline()
        record = self.inspector.start(
            tunnel["id"], original.method, original.target, "replay", list(original.headers)
        )
        record.replay_of = original.id
        body = bytes(original.request.head)
        record.request.take(body)
        headers = [(k, v) for k, v in original.headers if k != "transfer-encoding"]
        if original.request.size and not any(k == "content-length" for k, _ in headers):
            headers.append(("content-length", str(len(body))))
        try:
            response = await self._send(tunnel, original.method, original.target, headers, body)
        except (ApiProblem, httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException) as exc:
            failure = self._failure(tunnel, exc, False)
            self.inspector.finished(record, error=_why(exc), status=failure.status_code)
            raise ApiProblem(failure.status_code, ErrorCode.AGENT_UNREACHABLE, _why(exc)) from None
        self.inspector.answered(record, response.status, _response_headers(response))
        error: str | None = None
        try:
            async with asyncio.timeout(timeout):
                async for chunk in _chunks(response):
                    record.response.take(chunk)
        except TimeoutError:
            error = f"still sending after {timeout:g} s: cut off"
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException) as exc:
            error = _why(exc)
        finally:
            await response.aclose()
        self.inspector.finished(record, error=error)
        return record

    async def serve_websocket(self, ws: WebSocket, slug: str) -> None:
        """A WebSocket to a tunnel: relayed message by message through the agent to the app's."""
        tunnel, refusal = self._lookup(slug, False)
        target = _target(ws.scope, slug) or "/"
        client = ws.client.host if ws.client else ""
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in ws.scope["headers"]]
        if tunnel is not None:
            refusal, headers = await self.authorize(tunnel, headers, client, False)
            refusal = refusal or self._unavailable(tunnel, False)
        if tunnel is None or refusal is not None:
            assert refusal is not None
            await ws.send_denial_response(refusal)
            return
        self.store.hit(tunnel["id"])
        forwarded = [
            (k, v)
            for k, v in self.forwarded_headers(headers, slug, client, tunnel["target_port"])
            if k not in WS_HANDSHAKE and k != "host"
        ]
        call = protocol.TunnelWebSocket(
            port=tunnel["target_port"],
            target=target,
            headers=forwarded,
            subprotocols=list(ws.scope.get("subprotocols") or []),
        )
        try:
            result, stream = await self.hub.open_stream(tunnel["host_id"], call)
        except ApiProblem as exc:
            await ws.send_denial_response(self._failure(tunnel, exc, False))
            return
        relay = WebSocketRelay(ws, stream)
        self._track(tunnel["id"], relay)
        try:
            await ws.accept(subprotocol=(result or {}).get("subprotocol"))
            await relay.run()
        finally:
            self._forget(tunnel["id"], relay)


class UpstreamResponse(Response):
    """The app's response, streamed to the client chunk by chunk as it arrives (SSE event by event).

    The client going away ends the upstream request; the upstream breaking (the tunnel was deleted)
    cuts the client's connection rather than pretending the body was complete.
    """

    def __init__(
        self,
        upstream: httpcore.Response,
        headers: list[tuple[str, str]],
        inspector: Inspector,
        record: Record,
    ) -> None:
        super().__init__(status_code=upstream.status)
        self.upstream = upstream
        self.inspector = inspector
        self.record = record
        self.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the status and headers, then the body; stop when either side is done."""
        complete = False
        why = "the client went away"
        async with anyio.create_task_group() as group:

            async def listen() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            async def stream() -> None:
                nonlocal complete, why
                await send(
                    {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
                )
                try:
                    async for chunk in _chunks(self.upstream):
                        self.record.response.take(chunk)
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    complete = True
                except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException) as exc:
                    why = _why(exc)
                    log.info("a tunnel response broke off: %s", why)
                if complete:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                group.cancel_scope.cancel()

            group.start_soon(listen)
            group.start_soon(stream)
        with anyio.CancelScope(shield=True):
            await self.upstream.aclose()
        self.inspector.finished(self.record, error=None if complete else why)


class WebSocketRelay:
    """A client's WebSocket joined to the agent's stream of the app's WebSocket, message for message."""

    def __init__(self, ws: WebSocket, stream: AgentStream) -> None:
        self.ws = ws
        self.stream = stream

    async def run(self) -> None:
        """Relay until either side closes; then close the other."""

        async def to_app() -> None:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is not None:
                    await self.stream.send_bytes(message["bytes"])
                elif message.get("text") is not None:
                    await self.stream.send_text(message["text"])

        async def to_client() -> None:
            while (frame := await self.stream.receive_frame()) is not None:
                if isinstance(frame, bytes):
                    await self.ws.send_bytes(frame)
                else:
                    await self.ws.send_text(frame)

        try:
            await until_first_ends(to_app(), to_client(), ignore=STREAM_ERRORS)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close both sides (the app's close code reaches the client when there is one)."""
        code = self.stream.close_code if self.stream.close_code in (1000, 1001) else 1000
        await self.stream.close()
        with contextlib.suppress(*STREAM_ERRORS):
            await self.ws.close(code)


# --- helpers -----------------------------------------------------------------------------------------


def _chunks(response: httpcore.Response) -> AsyncIterator[bytes]:
    body: AsyncIterator[bytes] = response.aiter_stream()
    return body


async def _tee(body: AsyncIterator[bytes], capture: Body) -> AsyncIterator[bytes]:
    """``body`` passed through, counted and its head kept by the inspector."""
    async for chunk in body:
        capture.take(chunk)
        yield chunk


def _why(exc: Exception) -> str:
    return exc.message if isinstance(exc, ApiProblem) else str(exc) or type(exc).__name__


def _response_headers(response: httpcore.Response) -> list[tuple[str, str]]:
    """The app's response headers as the client gets them: hop-by-hop ones dropped, and ``Date`` and
    ``Server``, which the control plane's own server sends (one of each)."""
    return [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in response.headers
        if k.decode("latin-1").lower() not in RESPONSE_DROPPED
    ]


def problem(status: int, code: str, message: str, wants_html: bool) -> Response:
    """The proxy's own answer: a small HTML page for a browser, else the API's error body."""
    if not wants_html:
        return error_response(status, code, message)
    page = (
        f"<!doctype html><meta charset=utf-8><title>Tunnel: {status}</title>"
        "<style>body{font:16px system-ui;max-width:40em;margin:4em auto}</style>"
        f"<h1>{status}</h1><p>{html.escape(message)}</p>"
    )
    return HTMLResponse(page, status_code=status)


def _target(scope: Scope, slug: str) -> str | None:
    """The app's request target (path and query, as the client sent them) under ``/t/<slug>``; None
    when the path is ``/t/<slug>`` itself."""
    raw = scope.get("raw_path") or scope["path"].encode()
    raw = raw.split(b"?", 1)[0]
    prefix = f"{PREFIX}/{slug}".encode()
    rest = raw[len(prefix) :] if raw.startswith(prefix) else b""
    if not rest:
        return None
    query = scope.get("query_string", b"")
    return (rest + (b"?" + query if query else b"")).decode("latin-1")


def _basic_password(authorization: str) -> str | None:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


def _take_cookie(headers: list[str], name: str) -> tuple[list[str], str | None]:
    """The Cookie headers without cookie ``name``, and its value (None when absent)."""
    kept, found = [], None
    for header in headers:
        parts = []
        for part in header.split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                found = value
            elif part.strip():
                parts.append(part.strip())
        if parts:
            kept.append("; ".join(parts))
    return kept, found


def _cookie_key(data_dir: Path) -> bytes:
    """The login cookies' HMAC key, made once and kept in ``DATA_DIR/tunnel-cookie-key`` (0600)."""
    path = data_dir / COOKIE_KEY_FILE
    with contextlib.suppress(OSError):
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    key = secrets.token_bytes(32)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
