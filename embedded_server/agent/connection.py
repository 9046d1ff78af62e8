"""The agent's control connection: dial, hello, heartbeats, answer requests, redial on loss.

Refusals (unknown key, revoked, replaced) end the agent: retrying could never succeed. Any other loss
is retried with exponential backoff and full jitter, so a fleet does not stampede a restarted server.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.uri import parse_uri

from oc_tui.api.backoff import backoff_delay

from .. import protocol
from . import fs, vnc
from .handlers import HANDLERS, default_state_dir, hello
from .jobs import JobManager
from .streams import StreamDialer

try:
    from . import pty
except ImportError:  # no POSIX terminals here (Windows): the host serves no terminal sessions
    pty = None  # type: ignore[assignment]

log = logging.getLogger("oc_agent")

CONNECT_TIMEOUT = 10.0


class Refused(Exception):
    """The server refused this agent for good; the message says why."""


def agent_url(server: str, path: str = protocol.AGENT_PATH) -> str:
    """The control WebSocket URL for a server root URL (http→ws, https→wss)."""
    given = server = server.strip().rstrip("/")
    for plain, secure in (("http://", "ws://"), ("https://", "wss://")):
        if server.startswith(plain):
            server = secure + server[len(plain) :]
    if not server.startswith(("ws://", "wss://")):
        raise ValueError(f"server URL must start with http:// or https://, not {server!r}")
    try:
        parse_uri(server + path)
    except (InvalidURI, ValueError):
        raise ValueError(f"server URL {given!r} is not a valid URL") from None
    return server + path


class Agent:
    def __init__(
        self,
        server: str,
        host_key: str,
        state_dir: Path | None = None,
        vnc_target: vnc.VncTarget | None = None,
    ) -> None:
        self.url = agent_url(server)
        self.host_key = host_key
        self.jobs = JobManager(
            state_dir or default_state_dir(), agent_url(server, protocol.STREAM_PATH), host_key
        )
        self.streams = StreamDialer(agent_url(server, protocol.STREAM_PATH), host_key)
        self.handlers: dict[str, Any] = {
            **HANDLERS,
            "job.start": self.jobs.start,
            "job.cancel": self.jobs.cancel,
            "job.list": lambda _params: {"jobs": self.jobs.known()},
            **fs.handlers(self.streams),
            **(pty.handlers(self.streams) if pty is not None else {}),
            **vnc.handlers(self.streams, vnc_target or vnc.VncTarget.from_env()),
        }

    def close(self) -> None:
        self.jobs.close()
        self.streams.close()

    async def run_forever(self) -> None:
        """Serve until refused (raises Refused); other failures are retried."""
        attempt = 0
        while True:
            try:
                if await self._session():
                    attempt = 0
                why = "reconnecting"
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, ValueError) as exc:
                why = f"cannot connect to {self.url}: {_describe(exc)}; retrying"
            delay = backoff_delay(attempt)
            attempt += 1
            log.warning("%s in %.1f s", why, delay)
            await asyncio.sleep(delay)

    async def _session(self) -> bool:
        """One connection, from dial to loss. True when the server welcomed us (resets the backoff)."""
        headers = {"Authorization": f"Bearer {self.host_key}"}
        welcomed = False
        try:
            async with connect(
                self.url,
                additional_headers=headers,
                open_timeout=CONNECT_TIMEOUT,
                ping_interval=None,
                max_size=2**22,
            ) as ws:
                await ws.send(
                    protocol.encode(protocol.HELLO, **hello(sorted(self.handlers)), jobs=self.jobs.known())
                )
                async with asyncio.timeout(protocol.HELLO_TIMEOUT):
                    welcome = protocol.decode(await ws.recv())
                if welcome["type"] != protocol.WELCOME:
                    raise ValueError(f"expected a welcome, got {welcome['type']!r}")
                welcomed = True
                log.info("connected to %s as %s", self.url, welcome.get("host_id"))
                await self._serve(ws, float(welcome.get("heartbeat_interval") or 3.0))
        except ConnectionClosed as exc:
            _raise_if_refused(exc)  # a refusal can arrive before, during or after the hello
            if not welcomed:
                raise
            log.warning("connection lost: %s", _describe(exc))
        return welcomed

    async def _serve(self, ws: ClientConnection, interval: float) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(ws, interval))
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                try:
                    async with asyncio.timeout(interval * protocol.MISSED_HEARTBEATS):
                        frame = await ws.recv()
                except TimeoutError:
                    log.warning("server silent for %.1f s: redialling", interval * protocol.MISSED_HEARTBEATS)
                    return
                try:
                    message = protocol.decode(frame)
                except ValueError:
                    log.warning("ignored a malformed frame from the server")
                    continue
                if message["type"] == protocol.REQUEST:
                    task = asyncio.create_task(self._answer(ws, message))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        finally:
            heartbeat.cancel()
            for task in tasks:
                task.cancel()

    async def _heartbeat(self, ws: ClientConnection, interval: float) -> None:
        try:
            while True:
                await ws.send(protocol.encode(protocol.PING, t=time.time()))
                await asyncio.sleep(interval)
        except ConnectionClosed:
            pass  # the receive loop sees the same loss and handles it

    async def _answer(self, ws: ClientConnection, request: dict[str, Any]) -> None:
        """Run a request in a worker thread, so a slow handler never delays heartbeats."""
        method, request_id = request.get("method"), request.get("id")
        handler = self.handlers.get(str(method))
        reply: dict[str, Any]
        if handler is None:
            reply = {"error": {"code": "UNKNOWN_METHOD", "message": f"unknown method {method!r}"}}
        else:
            try:
                params = request.get("params") or {}
                if inspect.iscoroutinefunction(handler):  # quick, loop-bound work (jobs)
                    reply = {"result": await handler(params)}
                elif method == "job.list":
                    reply = {"result": handler(params)}
                else:
                    reply = {"result": await asyncio.to_thread(handler, params)}
            except protocol.AgentError as exc:  # the handler's verdict on the request (no such file …)
                reply = {"error": {"code": exc.code, "message": exc.message}}
            except Exception as exc:  # a failing handler answers with an error, never kills the agent
                log.exception("%s failed", method)
                reply = {"error": {"code": "HANDLER_FAILED", "message": f"{type(exc).__name__}: {exc}"}}
        try:
            await ws.send(protocol.encode(protocol.RESPONSE, id=request_id, **reply))
        except ConnectionClosed:
            pass


def _raise_if_refused(exc: ConnectionClosed) -> None:
    code = exc.rcvd.code if exc.rcvd is not None else None
    if code in protocol.REFUSALS:
        raise Refused(protocol.REFUSALS[code]) from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd is not None else None
        return f"closed by the server ({code})" if code else "connection dropped"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
