"""The agent's control connection: dial, hello, heartbeats, answer requests, redial on loss.

Refusals (unknown key, revoked, replaced) end the agent: retrying could never succeed. Any other loss
is retried with exponential backoff and full jitter, so a fleet does not stampede a restarted server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from oc_tui.api.backoff import backoff_delay

from .. import protocol
from ..identity import Identity
from . import fs, pty, system, tunnels, vnc
from .capabilities import Capability, Registry
from .dial import agent_url, dial
from .job_runner import JobManager
from .streams import StreamDialer

__all__ = ["Agent", "Refused", "agent_url"]

log = logging.getLogger("oc_agent")

MAX_FRAME = 2**22  # bytes: the largest control frame accepted from the server


class Refused(Exception):
    """The server refused this agent for good; the message says why."""


class OtherPlane(Exception):
    """A control plane that is not this agent's own refused its key: retried (docs/protocol.md)."""

    def __init__(self, refusing: str, own: str) -> None:
        super().__init__(
            f"the server is another control plane ({refusing}) than the one this host belongs to ({own})"
        )


class Agent:
    """The host agent: one control connection to the server, and the capabilities it serves.

    Args:
        server: the server root URL (``http(s)://…``).
        host_key: the ``hk_…`` key from registration.
        state_dir: where job output is spooled (default :func:`.system.host_state_dir`).
        vnc_target: the VNC server the desktop relays (default from the environment).

    Raises:
        ValueError: the server URL is not usable.
    """

    def __init__(
        self,
        server: str,
        host_key: str,
        state_dir: Path | None = None,
        vnc_target: vnc.VncTarget | None = None,
    ) -> None:
        self.url = agent_url(server)
        self.host_key = host_key
        self.streams = StreamDialer(agent_url(server, protocol.STREAM_PATH))
        state_dir = state_dir or system.host_state_dir(host_key)
        self.identity = Identity.load_or_create(state_dir)
        self.jobs = JobManager(state_dir, self.streams)
        self._plane_file = state_dir / "control-plane"
        try:
            self.plane_id: str | None = self._plane_file.read_text().strip() or None
        except OSError:
            self.plane_id = None  # never welcomed yet: learnt at the first welcome
        capabilities: list[Capability] = [
            system.capability(),
            self.jobs.capability(),
            fs.capability(state_dir),
            vnc.capability(vnc_target or vnc.VncTarget.from_env()),
            tunnels.capability(),
            pty.capability(),
        ]
        self.registry = Registry(capabilities, self.streams)

    def close(self) -> None:
        """Stop the jobs (their trees are killed) and the request streams."""
        self.jobs.close()
        self.streams.close()

    async def run_forever(self) -> None:
        """Serve until refused (raises Refused); other failures are retried."""
        await self.jobs.resume()  # jobs a previous agent process left running, or ended meanwhile
        attempt = 0
        while True:
            try:
                if await self._session():
                    attempt = 0
                why = "reconnecting"
            except OtherPlane as exc:
                why = f"{exc}; retrying"
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, ValueError) as exc:
                why = f"cannot connect to {self.url}: {_describe(exc)}; retrying"
            delay = backoff_delay(attempt)
            attempt += 1
            log.warning("%s in %.1f s", why, delay)
            await asyncio.sleep(delay)

    async def _session(self) -> bool:
        """One connection, from dial to loss. True when the server welcomed us (resets the backoff)."""
        welcomed = False
        try:
            async with dial(self.url, self.host_key, max_size=MAX_FRAME, compress=True) as ws:
                async with asyncio.timeout(protocol.HELLO_TIMEOUT):
                    challenge = protocol.decode(await ws.recv())
                if challenge["type"] != protocol.CHALLENGE:
                    raise ValueError(f"expected a challenge, got {challenge['type']!r}")
                hello = system.hello(self.registry.methods())
                proof = self.identity.proof(str(challenge.get("nonce", "")))
                await ws.send(
                    protocol.encode(protocol.HELLO, **hello, jobs=self.jobs.known(), identity=proof)
                )
                async with asyncio.timeout(protocol.HELLO_TIMEOUT):
                    welcome = protocol.decode(await ws.recv())
                if welcome["type"] != protocol.WELCOME:
                    raise ValueError(f"expected a welcome, got {welcome['type']!r}")
                welcomed = True
                self.streams.key = str(welcome.get("stream_key") or "") or None
                self._learn_plane(welcome.get("plane_id"))
                log.info("connected to %s as %s", self.url, welcome.get("host_id"))
                await self._serve(ws, float(welcome.get("heartbeat_interval") or 3.0))
        except ConnectionClosed as exc:
            self._raise_if_refused(exc)  # a refusal can arrive before, during or after the hello
            if not welcomed:
                raise
            log.warning("connection lost: %s", _describe(exc))
        return welcomed

    def _learn_plane(self, plane_id: object) -> None:
        """Remember the identity of the control plane that welcomed this agent (its state dir)."""
        if not isinstance(plane_id, str) or not plane_id or plane_id == self.plane_id:
            return
        self.plane_id = plane_id
        try:
            self._plane_file.parent.mkdir(parents=True, exist_ok=True)
            self._plane_file.write_text(plane_id + "\n")
        except OSError as exc:
            log.warning("cannot remember the control plane's identity in %s: %s", self._plane_file, exc)

    def _raise_if_refused(self, exc: ConnectionClosed) -> None:
        """Raise Refused for a close that means "never retry", OtherPlane for an unknown key from a plane
        that is not this agent's own (another data dir's server now on the same URL)."""
        code = exc.rcvd.code if exc.rcvd is not None else None
        if code == protocol.CLOSE_UNKNOWN_KEY and self.plane_id is not None:
            refusing = protocol.refusing_plane(exc.rcvd.reason if exc.rcvd is not None else "")
            if refusing is not None and refusing != self.plane_id:
                raise OtherPlane(refusing, self.plane_id) from None
        if code in protocol.REFUSALS:
            raise Refused(protocol.REFUSALS[code]) from None

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
        """Answer one request (each in a task of its own, so a slow one never delays the others)."""
        reply = await self.registry.answer(request.get("method"), request.get("params"))
        try:
            await ws.send(protocol.encode(protocol.RESPONSE, id=request.get("id"), **reply))
        except ConnectionClosed:
            pass


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
