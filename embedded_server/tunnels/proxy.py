"""The tunnel proxy: every request under ``/t/<slug>/…`` goes through the host's agent to
``127.0.0.1:<target_port>`` on the host.

HTTP: the control plane speaks HTTP/1.1 to the app itself over agent request streams, through the pool
of :mod:`embedded_server.agent_http` (keyed by tunnel ID): per-request flow control, idle streams reused,
bodies streamed both ways with back pressure.

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
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpcore
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.types import Scope
from starlette.websockets import WebSocket

from oc_tui.api.errors import ErrorCode

from .. import protocol
from ..agent_http import (
    HOP_BY_HOP,
    STREAM_ERRORS,
    UPSTREAM_ERRORS,
    AgentPool,
    UpstreamResponse,
    chunks,
    response_headers,
    why_failed,
)
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
FAILURES_ALLOWED = 10  # wrong passwords per client address per window, then 429
FAILURE_WINDOW = 60.0  # seconds

FORWARDED = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-prefix"})
WS_HANDSHAKE = frozenset(
    {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"}
)


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
        self._failures: dict[str, collections.deque[float]] = {}
        self._cookie_key = _cookie_key(data_dir)
        self.inspector = Inspector()
        self.agents = AgentPool(hub, self._host_of, "the tunnel was deleted")
        self.backend = self.agents.backend

    def _host_of(self, tunnel_id: str) -> str | None:
        row = self.db.one("SELECT host_id FROM tunnels WHERE id = ?", (tunnel_id,))
        return None if row is None else str(row["host_id"])

    def open_count(self, tunnel_id: str) -> int:
        """Streams (HTTP, idle or busy, and WebSocket relays) open for the tunnel now."""
        return self.agents.open_count(tunnel_id)

    async def end(self, tunnel_id: str) -> None:
        """End every connection of the tunnel: requests in flight break, WebSockets close.
        (Its inspector records stay, unless the tunnel is deleted: :meth:`forget`.)"""
        await self.agents.end(tunnel_id)

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
        await self.agents.close()

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
        except UPSTREAM_ERRORS as exc:
            answer = self._failure(tunnel, exc, wants_html)
            self.inspector.finished(record, error=why_failed(exc), status=answer.status_code)
            return answer
        headers_out = response_headers(response)
        self.inspector.answered(record, response.status, headers_out)
        return UpstreamResponse(
            response,
            headers_out,
            record.response.take,
            lambda error: self.inspector.finished(record, error=error),
        )

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
        return await self.agents.send(tunnel["id"], tunnel["target_port"], method, target, headers, content)

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
        except UPSTREAM_ERRORS as exc:
            failure = self._failure(tunnel, exc, False)
            self.inspector.finished(record, error=why_failed(exc), status=failure.status_code)
            raise ApiProblem(failure.status_code, ErrorCode.AGENT_UNREACHABLE, why_failed(exc)) from None
        self.inspector.answered(record, response.status, response_headers(response))
        error: str | None = None
        try:
            async with asyncio.timeout(timeout):
                async for chunk in chunks(response):
                    record.response.take(chunk)
        except TimeoutError:
            error = f"still sending after {timeout:g} s: cut off"
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException) as exc:
            error = why_failed(exc)
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
        self.agents.track(tunnel["id"], relay)
        try:
            await ws.accept(subprotocol=(result or {}).get("subprotocol"))
            await relay.run()
        finally:
            self.agents.forget(tunnel["id"], relay)


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


async def _tee(body: AsyncIterator[bytes], capture: Body) -> AsyncIterator[bytes]:
    """``body`` passed through, counted and its head kept by the inspector."""
    async for chunk in body:
        capture.take(chunk)
        yield chunk


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
