"""Connected agents: who is online, request/response calls to an agent, and each channel's lifecycle.

Routes never touch an agent's socket; they ask the hub. One control channel per host: a newer agent
with the same key replaces the older one (4409), a revoked host's channel is closed for good (4403).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import format_timestamp, utcnow

from . import __version__, protocol
from .auth import bearer, host_for_key
from .errors import ApiProblem
from .hosts import LAST_SEEN_WRITE_EVERY, HostStore
from .ids import new_id
from .jobs import JobStore, describe_exit
from .settings import Settings

log = logging.getLogger("oc_server.hub")

AGENT_INFO_FIELDS = ("hostname", "os", "os_release", "arch", "agent_version", "python")


class HostOffline(ApiProblem):
    def __init__(self) -> None:
        super().__init__(409, ErrorCode.HOST_OFFLINE, "host is offline; its agent is not connected")


class AgentUnreachable(ApiProblem):
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
        async with self._send_lock:
            await self.ws.send_text(text)

    async def close(self, code: int) -> None:
        self.fail_pending("its connection closed before it answered")
        try:
            await self.ws.close(code)
        except (RuntimeError, OSError):  # already closed by the peer or the server
            pass

    def fail_pending(self, why: str) -> None:
        for future in self.pending.values():
            if not future.done():
                future.set_exception(AgentUnreachable(why))

    def resolve(self, message: dict[str, Any]) -> None:
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

    async def __aenter__(self) -> AgentStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def receive(self) -> bytes | dict[str, Any] | None:
        """The next frame: bytes, a decoded JSON message, or None when the stream has ended."""
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
            return frame["bytes"]
        try:
            return protocol.decode(frame.get("text") or "")
        except ValueError:
            return {"type": "malformed"}

    async def send_bytes(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def send_message(self, type_: str, **fields: Any) -> None:
        await self.ws.send_text(protocol.encode(type_, **fields))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.finished.is_set():
            self.finished.set()
            try:
                await self.ws.close(code, reason)
            except (RuntimeError, OSError, WebSocketDisconnect):  # the agent closed it first
                pass


class Hub:
    def __init__(self, hosts: HostStore, settings: Settings, jobs: JobStore) -> None:
        self.hosts = hosts
        self.jobs = jobs
        self.settings = settings
        self.channels: dict[str, AgentChannel] = {}
        self.pending_streams: dict[str, tuple[str, asyncio.Future[AgentStream]]] = {}
        self._request_ids = itertools.count(1)

    async def call(self, host_id: str, method: str, params: dict[str, Any] | None = None) -> Any:
        """Ask the host's agent to run ``method``; 409 if it is not connected, 502 if it does not answer."""
        channel = self.channels.get(host_id)
        if channel is None:
            raise HostOffline()
        request_id = f"r{next(self._request_ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        channel.pending[request_id] = future
        timeout = self.settings.call_timeout
        try:
            await channel.send(
                protocol.encode(protocol.REQUEST, id=request_id, method=method, params=params or {})
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

    async def open_stream(
        self, host_id: str, method: str, params: dict[str, Any] | None = None
    ) -> tuple[Any, AgentStream]:
        """Call ``method`` with a fresh ``stream_id`` and wait for the agent to dial that stream back.

        The agent answers the call first (an error there means no stream is opened) and then dials
        ``STREAM_PATH?stream_id=…``. Use the stream as an async context manager: leaving it closes the
        agent's WebSocket, which tells the agent the other end is done.
        """
        stream_id = new_id("stream")
        arrived: asyncio.Future[AgentStream] = asyncio.get_running_loop().create_future()
        self.pending_streams[stream_id] = (host_id, arrived)
        try:
            result = await self.call(host_id, method, {**(params or {}), "stream_id": stream_id})
            try:
                async with asyncio.timeout(self.settings.call_timeout):
                    stream = await arrived
            except TimeoutError:
                raise AgentUnreachable("it did not open the stream in time") from None
        finally:
            self.pending_streams.pop(stream_id, None)
            if not arrived.done():
                arrived.cancel()
        return result, stream

    async def disconnect(self, host_id: str, code: int) -> None:
        """Close the host's channel (revocation: 4403) without marking the host offline."""
        channel = self.channels.pop(host_id, None)
        if channel is not None:
            await channel.close(code)

    async def serve(self, ws: WebSocket) -> None:
        """The whole life of one agent connection: authenticate, hello/welcome, then messages."""
        await ws.accept()
        row = host_for_key(self.hosts.db, bearer(ws.headers.get("authorization")) or "")
        if row is None:
            await ws.close(protocol.CLOSE_UNKNOWN_KEY)
            return
        if row["status"] == "revoked":
            await ws.close(protocol.CLOSE_REVOKED)
            return
        try:
            async with asyncio.timeout(protocol.HELLO_TIMEOUT):
                hello = protocol.decode(await ws.receive_text())
            if hello["type"] != protocol.HELLO:
                raise ValueError("first frame is not a hello")
        except WebSocketDisconnect:
            return
        except (TimeoutError, ValueError, KeyError):
            await ws.close(protocol.CLOSE_BAD_HELLO)
            return
        await self._attach(ws, row["id"], hello)

    async def _attach(self, ws: WebSocket, host_id: str, hello: dict[str, Any]) -> None:
        current = self.hosts.row(host_id)
        if current is None or current["status"] == "revoked":  # revoked while we waited for the hello
            await ws.close(protocol.CLOSE_REVOKED)
            return
        channel = AgentChannel(ws, host_id)
        previous = self.channels.get(host_id)
        self.channels[host_id] = channel
        agent = {k: str(hello[k]) for k in AGENT_INFO_FIELDS if hello.get(k) is not None}
        agent["remote_addr"] = ws.client.host if ws.client else None
        self.hosts.set_status(host_id, "online", agent=agent, seen_at=channel.seen_at)
        log.info("agent of %s connected from %s", host_id, agent["remote_addr"])
        try:
            if isinstance(hello.get("jobs"), list):  # jobs the agent no longer has are lost
                await self.jobs.reconcile(host_id, [str(j) for j in hello["jobs"]])
            if previous is not None:
                await previous.close(protocol.CLOSE_REPLACED)
            await channel.send(
                protocol.encode(
                    protocol.WELCOME,
                    host_id=host_id,
                    heartbeat_interval=self.settings.heartbeat_interval,
                    server_version=__version__,
                )
            )
            await self._receive(channel)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            channel.fail_pending("its connection closed before it answered")
            if self.channels.get(host_id) is channel:
                del self.channels[host_id]
                self.hosts.set_status(host_id, "offline", seen_at=channel.seen_at)
                log.info("agent of %s disconnected", host_id)

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
        """A stream WebSocket dialled by an agent: a job's output (``?job_id=``) or a request's (``?stream_id=``)."""
        await ws.accept()
        host = host_for_key(self.hosts.db, bearer(ws.headers.get("authorization")) or "")
        if host is None or host["status"] == "revoked":
            await ws.close(protocol.CLOSE_UNKNOWN_KEY if host is None else protocol.CLOSE_REVOKED)
            return
        if "stream_id" in ws.query_params:
            await self._hand_over(ws, host["id"], ws.query_params["stream_id"])
        else:
            await self._serve_job_stream(ws, host)

    async def _hand_over(self, ws: WebSocket, host_id: str, stream_id: str) -> None:
        """Give the stream to the request waiting for it, and keep the socket open until it is done."""
        waiting = self.pending_streams.get(stream_id)
        if waiting is None or waiting[0] != host_id or waiting[1].done():
            await ws.close(protocol.CLOSE_UNKNOWN_STREAM)
            return
        stream = AgentStream(ws)
        waiting[1].set_result(stream)
        await stream.finished.wait()

    async def _serve_job_stream(self, ws: WebSocket, host: dict[str, Any]) -> None:
        """One job's output from its agent (docs/protocol.md): resume offset, bytes, exit, done."""
        row = self.jobs.row(host["id"], ws.query_params.get("job_id", ""))
        if row is None:
            await ws.close(protocol.CLOSE_UNKNOWN_JOB)
            return
        out = self.jobs.output(row)
        try:
            if out.finished:  # over already (its exit is stored, or it was cancelled or lost meanwhile)
                await ws.send_text(protocol.encode(protocol.JOB_DONE))
                await ws.close()
                return
            out.generation += 1
            generation = out.generation
            await ws.send_text(protocol.encode(protocol.JOB_RESUME, offset=out.received))
            while True:
                frame = await ws.receive()
                if frame["type"] == "websocket.disconnect":
                    return
                if out.generation != generation or out.finished:  # a newer connection took over
                    await ws.close()
                    return
                data = frame.get("bytes")
                if data is not None:
                    if len(data) > 1:
                        await out.feed(data[0], memoryview(data)[1:])
                    continue
                message = protocol.decode(frame.get("text") or "")
                if message["type"] == protocol.JOB_EXIT:
                    status, exit_code, error = describe_exit(message, row["timeout"])
                    await self.jobs.finish(row, status, exit_code, error, message)
                    await ws.send_text(protocol.encode(protocol.JOB_DONE))
                    await ws.close()
                    return
        except (WebSocketDisconnect, RuntimeError, OSError, ValueError):
            pass
