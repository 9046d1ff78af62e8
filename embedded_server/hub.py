"""Connected agents: who is online, typed calls to an agent, request streams, and each channel's lifecycle.

Routes never touch an agent's socket; they ask the hub. One control channel per host: a newer agent
with the same key replaces the older one (4409), a revoked host's channel is closed for good (4403).

The hub knows no section. Sections register what they need: hooks run when an agent says hello, when
its channel drops and when its host is revoked (:meth:`Hub.on_hello`, :meth:`Hub.on_disconnect`,
:meth:`Hub.on_revoke`), and handlers for the durable streams agents dial on their own
(``STREAM_PATH?job_id=…``: :meth:`Hub.handle_streams`). Hosts are looked up through the
:class:`HostRegistry` the application gives it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, Self

from fastapi import FastAPI
from starlette.websockets import WebSocket, WebSocketDisconnect

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import format_timestamp, utcnow

from . import __version__, identity, protocol
from .auth import bearer
from .crypto import hash_secret, new_token
from .errors import ApiProblem
from .ids import new_id
from .settings import Settings

log = logging.getLogger("oc_server.hub")
STREAM_KEY_PREFIX = "sk_"
"""The stream key a welcome hands the agent: its stream dials' bearer token while its channel lives."""

AGENT_INFO_FIELDS = ("hostname", "os", "os_release", "arch", "agent_version", "python")
MAX_FACT = 256
"""Characters kept of each agent fact (hostname, os, …): every host read carries them."""
MAX_HELLO = 1 << 20
"""Bytes of the hello message above which the agent is refused (4400): facts plus the jobs it has."""
LAST_SEEN_WRITE_EVERY = 30.0  # seconds: heartbeats refresh last_seen_at in the DB at most this often

HelloHook = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Runs when a host's agent said hello (before the welcome): ``(host_id, hello message)``."""
HostHook = Callable[[str], Awaitable[None]]
"""Runs with a host ID when its agent's channel dropped, or when the host was revoked."""
StreamHandler = Callable[[WebSocket, str, str], Awaitable[None]]
"""Serves a durable stream an agent dialled: ``(accepted websocket, host_id, owner id)``."""


class HostRegistry(Protocol):
    """What the hub needs of the host records (the hosts section's store provides it)."""

    def by_key(self, host_key: str) -> dict[str, Any] | None:
        """The host row a host key belongs to (revoked ones included), or None."""
        ...

    def row(self, host_id: str) -> dict[str, Any] | None:
        """The host's row, or None."""
        ...

    def set_status(
        self, host_id: str, status: str, *, agent: dict[str, Any] | None = None, seen_at: str | None = None
    ) -> None:
        """Move the host to ``status`` (revoked is final), with the agent's facts and last-seen time."""
        ...

    def touch(self, host_id: str, seen_at: str) -> None:
        """Store the host's last-seen time."""
        ...

    def pin_identity(self, host_id: str, public_key: str, remote_addr: str | None) -> bool:
        """Pin ``public_key`` as the host's identity if it has none yet; whether ``public_key`` is the
        host's identity now (False: another machine's key is pinned, and the refusal is recorded)."""
        ...


class HostOffline(ApiProblem):
    """409 HOST_OFFLINE: the host's agent is not connected."""

    def __init__(self) -> None:
        super().__init__(409, ErrorCode.HOST_OFFLINE, "host is offline; its agent is not connected")


class AgentUnreachable(ApiProblem):
    """502 AGENT_UNREACHABLE: the agent did not answer, or failed; ``why`` says which."""

    def __init__(self, why: str) -> None:
        super().__init__(502, ErrorCode.AGENT_UNREACHABLE, f"host agent is unreachable: {why}")


class AgentChannel:
    """One agent's control WebSocket, with its calls in flight."""

    def __init__(self, ws: WebSocket, host_id: str) -> None:
        self.ws = ws
        self.host_id = host_id
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.last_heard = time.monotonic()
        self.last_written = time.monotonic()
        self.seen_at = format_timestamp(utcnow())
        self.stream_key_hash = ""
        self._send_lock = asyncio.Lock()

    def heard(self) -> bool:
        """Note that the agent spoke; True when last_seen_at is due to be written to the DB."""
        self.last_heard = time.monotonic()
        self.seen_at = format_timestamp(utcnow())
        if self.last_heard - self.last_written >= LAST_SEEN_WRITE_EVERY:
            self.last_written = self.last_heard
            return True
        return False

    async def send(self, text: str) -> None:
        """Send a text frame (one writer at a time)."""
        async with self._send_lock:
            await self.ws.send_text(text)

    async def close(self, code: int) -> None:
        """Fail the calls in flight and close the channel with ``code``."""
        self.fail_pending("its connection closed before it answered")
        try:
            await self.ws.close(code)
        except (RuntimeError, OSError):  # already closed by the peer or the server
            pass

    def fail_pending(self, why: str) -> None:
        """Fail every call in flight with 502 AGENT_UNREACHABLE (``why``)."""
        for future in self.pending.values():
            if not future.done():
                future.set_exception(AgentUnreachable(why))

    def resolve(self, message: dict[str, Any]) -> None:
        """Hand a response to the call waiting for its ``id``."""
        future = self.pending.get(str(message.get("id")))
        if future is not None and not future.done():
            future.set_result(message)


class AgentStream:
    """A stream WebSocket an agent dialled back for one request (a file body, a PTY, an RFB session).

    Binary frames carry the bytes; text frames are small JSON control messages whose shape the request's
    method defines. ``receive()`` returns ``None`` once the agent has closed it.
    """

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.finished = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def receive_frame(self) -> bytes | str | None:
        """The next frame as it came: bytes, text (not decoded), or None when the stream has ended
        (``close_code``/``close_reason`` then say how the agent closed it)."""
        if self.finished.is_set():
            return None
        try:
            frame = await self.ws.receive()
        except (RuntimeError, OSError, WebSocketDisconnect):
            frame = {"type": "websocket.disconnect"}
        if frame["type"] == "websocket.disconnect":
            self.close_code = frame.get("code")
            self.close_reason = frame.get("reason") or ""
            self.finished.set()
            return None
        if frame.get("bytes") is not None:
            data: bytes = frame["bytes"]
            return data
        return str(frame.get("text") or "")

    async def receive(self) -> bytes | dict[str, Any] | None:
        """The next frame: bytes, a decoded JSON message, or None when the stream has ended."""
        frame = await self.receive_frame()
        if frame is None or isinstance(frame, bytes):
            return frame
        try:
            return protocol.decode(frame)
        except ValueError:
            return {"type": "malformed"}

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary frame (raises RuntimeError/OSError/WebSocketDisconnect once it is closed)."""
        await self.ws.send_bytes(data)

    async def send_text(self, text: str) -> None:
        """Send a text frame as it is (the bridge relays a client's control messages with it)."""
        await self.ws.send_text(text)

    async def send_message(self, type_: str, **fields: Any) -> None:
        """Send a JSON control message ``{"type": type_, **fields}``."""
        await self.ws.send_text(protocol.encode(type_, **fields))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the stream (the agent then stops its side); closing twice is harmless."""
        if not self.finished.is_set():
            self.finished.set()
            try:
                await self.ws.close(code, reason)
            except (RuntimeError, OSError, WebSocketDisconnect):  # the agent closed it first
                pass


class Hub:
    """The connected agents. Sections call agents through it and register hooks on it.

    Args:
        hosts: the host records (presence is written there: online, offline, last seen).
        settings: the server's settings (call timeout, heartbeat interval).
    """

    def __init__(self, hosts: HostRegistry, settings: Settings) -> None:
        self.hosts = hosts
        self.settings = settings
        self._channels: dict[str, AgentChannel] = {}
        self._pending_streams: dict[str, tuple[str, asyncio.Future[AgentStream]]] = {}
        self._request_ids = itertools.count(1)
        self._hello_hooks: list[HelloHook] = []
        self._disconnect_hooks: list[HostHook] = []
        self._revoke_hooks: list[HostHook] = []
        self._purge_hooks: list[HostHook] = []
        self._stream_handlers: dict[str, StreamHandler] = {}
        self._stream_keys: dict[str, str] = {}  # hash of a connected channel's stream key -> host id

    # --- what sections register ------------------------------------------------------------------------

    def on_hello(self, hook: HelloHook) -> None:
        """Run ``hook(host_id, hello)`` each time a host's agent connects, before it is welcomed."""
        self._hello_hooks.append(hook)

    def on_disconnect(self, hook: HostHook) -> None:
        """Run ``hook(host_id)`` each time a host's agent channel ends (the host is offline then)."""
        self._disconnect_hooks.append(hook)

    def on_revoke(self, hook: HostHook) -> None:
        """Run ``hook(host_id)`` when a host is revoked (after its channel was closed for good)."""
        self._revoke_hooks.append(hook)

    def on_purge(self, hook: HostHook) -> None:
        """Run ``hook(host_id)`` when a revoked host is purged, before its records are deleted (a
        section removes what it keeps outside the database: job output files …)."""
        self._purge_hooks.append(hook)

    def handle_streams(self, param: str, handler: StreamHandler) -> None:
        """Serve the durable streams agents dial as ``STREAM_PATH?{param}=<owner id>`` with ``handler``.

        Args:
            param: the query parameter that names the stream's owner (``"job_id"`` for jobs).
            handler: ``handler(ws, host_id, owner_id)``; the WebSocket is accepted and the agent's key
                checked; the handler owns the socket until it returns.
        """
        self._stream_handlers[param] = handler

    def install(self, app: FastAPI) -> None:
        """Add the agents' WebSocket endpoints (control channel and dialled-back streams) to ``app``."""

        @app.websocket(protocol.AGENT_PATH)
        async def agent_channel(ws: WebSocket) -> None:
            await self.serve(ws)

        @app.websocket(protocol.STREAM_PATH)
        async def agent_stream(ws: WebSocket) -> None:
            await self.serve_stream(ws)

    # --- what routes use -------------------------------------------------------------------------------

    def is_online(self, host_id: str) -> bool:
        """True while the host's agent has a control channel open."""
        return host_id in self._channels

    async def call(self, host_id: str, call: protocol.Call) -> Any:
        """Ask the host's agent to run ``call`` and return its result (JSON).

        Raises:
            HostOffline: 409, the agent is not connected.
            AgentUnreachable: 502, it did not answer within ``settings.call_timeout`` seconds, its channel
                closed, or it failed in a way that is not the request's fault.
            ApiProblem: the agent's own verdict on the request (404 no such file, 400 …), see
                ``protocol.AGENT_ERROR_STATUS``.
        """
        channel = self._channels.get(host_id)
        if channel is None:
            raise HostOffline()
        request_id = f"r{next(self._request_ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        channel.pending[request_id] = future
        timeout = self.settings.call_timeout
        try:
            await channel.send(
                protocol.encode(protocol.REQUEST, id=request_id, method=call.METHOD, params=call.params())
            )
            async with asyncio.timeout(timeout):
                reply = await future
        except TimeoutError:
            raise AgentUnreachable(f"no answer within {timeout:g} s") from None
        except (RuntimeError, OSError, WebSocketDisconnect):
            raise AgentUnreachable("its connection is closing") from None
        finally:
            channel.pending.pop(request_id, None)
        if "error" in reply:
            error = reply["error"] if isinstance(reply["error"], dict) else {}
            code, message = str(error.get("code", "")), str(error.get("message", "unknown error"))
            status = protocol.AGENT_ERROR_STATUS.get(code)
            if status is not None:  # the agent's own verdict on the request (no such file, …)
                raise ApiProblem(status, code, message)
            raise AgentUnreachable(f"the agent failed: {message}")
        return reply.get("result")

    async def open_stream(self, host_id: str, call: protocol.StreamCall) -> tuple[Any, AgentStream]:
        """Send ``call`` with a fresh ``stream_id`` and wait for the agent to dial that stream back.

        The agent answers the call first (an error there means no stream is opened) and then dials
        ``STREAM_PATH?stream_id=…``. Use the stream as an async context manager: leaving it closes the
        agent's WebSocket, which tells the agent the other end is done.

        Returns:
            ``(the call's result, the stream)``.

        Raises:
            The errors of :meth:`call`; AgentUnreachable also when the stream is not dialled in time.
        """
        stream_id = new_id("stream")
        arrived: asyncio.Future[AgentStream] = asyncio.get_running_loop().create_future()
        self._pending_streams[stream_id] = (host_id, arrived)
        try:
            result = await self.call(host_id, call.model_copy(update={"stream_id": stream_id}))
            try:
                async with asyncio.timeout(self.settings.call_timeout):
                    stream = await arrived
            except TimeoutError:
                raise AgentUnreachable("it did not open the stream in time") from None
        finally:
            self._pending_streams.pop(stream_id, None)
            if not arrived.done():
                arrived.cancel()
        return result, stream

    async def revoke(self, host_id: str) -> None:
        """The host was revoked: close its channel for good (4403, without marking it offline), then
        run the sections' revoke hooks (jobs fail, sessions end …)."""
        channel = self._channels.pop(host_id, None)
        if channel is not None:
            await channel.close(protocol.CLOSE_REVOKED)
        for hook in self._revoke_hooks:
            await hook(host_id)

    async def purge(self, host_id: str) -> None:
        """A revoked host is being purged: run the sections' purge hooks."""
        for hook in self._purge_hooks:
            await hook(host_id)

    # --- the agents' side --------------------------------------------------------------------------------

    async def serve(self, ws: WebSocket) -> None:
        """The whole life of one agent connection: authenticate, hello/welcome, then messages."""
        await ws.accept()
        row = self.hosts.by_key(bearer(ws.headers.get("authorization")) or "")
        if row is None:  # the reason names this plane: an agent of another plane keeps retrying
            await ws.close(protocol.CLOSE_UNKNOWN_KEY, protocol.plane_reason(self.settings.plane_id))
            return
        if row["status"] == "revoked":
            await ws.close(protocol.CLOSE_REVOKED)
            return
        nonce = identity.new_nonce()
        try:
            await ws.send_text(protocol.encode(protocol.CHALLENGE, nonce=nonce))
            async with asyncio.timeout(protocol.HELLO_TIMEOUT):
                text = await ws.receive_text()
            if len(text) > MAX_HELLO:
                raise ValueError("hello too large")
            hello = protocol.decode(text)
            if hello["type"] != protocol.HELLO:
                raise ValueError("first frame is not a hello")
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        except (TimeoutError, ValueError, KeyError):
            await ws.close(protocol.CLOSE_BAD_HELLO)
            return
        public_key = identity.verify(hello.get("identity"), nonce)
        if public_key is None:
            await ws.close(protocol.CLOSE_BAD_HELLO, "no valid identity proof in the hello")
            return
        remote_addr = ws.client.host if ws.client else None
        if not self.hosts.pin_identity(row["id"], public_key, remote_addr):
            log.warning("refused an agent of %s from %s: its host key is enrolled on another machine",
                        row["id"], remote_addr)  # fmt: skip
            await ws.close(protocol.CLOSE_OTHER_MACHINE)
            return
        await self._attach(ws, row["id"], hello)

    async def _attach(self, ws: WebSocket, host_id: str, hello: dict[str, Any]) -> None:
        current = self.hosts.row(host_id)
        if current is None or current["status"] == "revoked":  # revoked while we waited for the hello
            await ws.close(protocol.CLOSE_REVOKED)
            return
        channel = AgentChannel(ws, host_id)
        previous = self._channels.get(host_id)
        self._channels[host_id] = channel
        stream_key = new_token(STREAM_KEY_PREFIX)
        channel.stream_key_hash = hash_secret(stream_key)
        self._stream_keys[channel.stream_key_hash] = host_id
        agent: dict[str, str | None] = {
            k: str(hello[k])[:MAX_FACT] for k in AGENT_INFO_FIELDS if hello.get(k) is not None
        }
        agent["remote_addr"] = ws.client.host if ws.client else None
        self.hosts.set_status(host_id, "online", agent=agent, seen_at=channel.seen_at)
        log.info("agent of %s connected from %s", host_id, agent["remote_addr"])
        try:
            for hook in self._hello_hooks:
                await hook(host_id, hello)
            if previous is not None:
                await previous.close(protocol.CLOSE_REPLACED)
            await channel.send(
                protocol.encode(
                    protocol.WELCOME,
                    host_id=host_id,
                    heartbeat_interval=self.settings.heartbeat_interval,
                    server_version=__version__,
                    plane_id=self.settings.plane_id,
                    stream_key=stream_key,
                )
            )
            await self._receive(channel)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            channel.fail_pending("its connection closed before it answered")
            self._stream_keys.pop(channel.stream_key_hash, None)
            if self._channels.get(host_id) is channel:
                del self._channels[host_id]
                self.hosts.set_status(host_id, "offline", seen_at=channel.seen_at)
                log.info("agent of %s disconnected", host_id)
                for disconnected in self._disconnect_hooks:
                    await disconnected(host_id)

    async def _receive(self, channel: AgentChannel) -> None:
        silence = self.settings.heartbeat_interval * protocol.MISSED_HEARTBEATS
        while True:
            try:
                async with asyncio.timeout(silence):
                    frame = await channel.ws.receive()
            except TimeoutError:
                log.info("agent of %s silent for %.1f s: dropping it", channel.host_id, silence)
                await channel.close(protocol.CLOSE_HEARTBEAT_LOST)
                return
            if frame["type"] == "websocket.disconnect":
                return
            if channel.heard():
                self.hosts.touch(channel.host_id, channel.seen_at)
            try:
                message = protocol.decode(frame.get("text") or frame.get("bytes") or b"")
            except ValueError:
                log.warning("agent of %s sent a malformed frame; ignored", channel.host_id)
                continue
            if message["type"] == protocol.PING:
                await channel.send(protocol.encode(protocol.PONG, t=message.get("t")))
            elif message["type"] == protocol.RESPONSE:
                channel.resolve(message)

    async def serve_stream(self, ws: WebSocket) -> None:
        """A stream WebSocket dialled by an agent: a request's (``?stream_id=``), or a durable stream
        whose owner a section handles (``?job_id=`` …, see :meth:`handle_streams`)."""
        await ws.accept()
        host_id = self._stream_keys.get(hash_secret(bearer(ws.headers.get("authorization")) or ""))
        host = self.hosts.row(host_id) if host_id is not None else None
        if host is None:  # not (or no longer) a connected agent's key: redial after the next welcome
            await ws.close(protocol.CLOSE_STALE_STREAM_KEY)
            return
        if host["status"] == "revoked":
            await ws.close(protocol.CLOSE_REVOKED)
            return
        query = ws.query_params
        if "stream_id" in query:
            await self._hand_over(ws, host["id"], query["stream_id"])
            return
        for param, handler in self._stream_handlers.items():
            if param in query:
                await handler(ws, host["id"], query[param])
                return
        await ws.close(protocol.CLOSE_UNKNOWN_STREAM)

    async def _hand_over(self, ws: WebSocket, host_id: str, stream_id: str) -> None:
        """Give the stream to the request waiting for it, and keep the socket open until it is done."""
        waiting = self._pending_streams.get(stream_id)
        if waiting is None or waiting[0] != host_id or waiting[1].done():
            await ws.close(protocol.CLOSE_UNKNOWN_STREAM)
            return
        stream = AgentStream(ws)
        waiting[1].set_result(stream)
        await stream.finished.wait()
