"""The local control plane: this machine's own embedded server and agent, started and looked after by
the TUI.

``LocalControlPlane`` reuses an embedded server already running on its data dir (someone ran ``oc-server``,
or another ``oc-tui`` is open) or starts one as a child process; it registers this machine once as a
host and runs its ``oc-agent`` as a child, and restarts either when it dies. While another agent
serves this host (another ``oc-tui``), it stands by instead of fighting it for the host. Children write
to ``DATA_DIR/logs/*.log``: the terminal belongs to the TUI.

Layout of ``DATA_DIR``::

    server/             the embedded server's data dir (server.json, admin-token, database)
    local-host.json     {"host_id", "host_key"} of this machine (0600)
    logs/server.log     logs/agent.log
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Self

import httpx

from . import config
from .api import errors
from .api.backoff import backoff_delay
from .api.client import OpenComputersClient

EventCallback = Callable[[str, str], None]

#: Exit status of ``oc-agent`` when the server refused it (unknown key, revoked, or replaced by another).
AGENT_REFUSED = 2
#: Seconds a starting server has to write its ``server.json`` and answer ``/healthz``.
READY_TIMEOUT = 30.0
#: Seconds a child has to exit after SIGTERM before it gets SIGKILL.
STOP_GRACE = 5.0
#: Seconds a child must have run before dying to be restarted without waiting (its backoff starts over).
STABLE_AFTER = 30.0


def describe_exit(code: int) -> str:
    """How a child ended, in words: ``exited with status 1``, or ``was killed by SIGKILL`` for the
    negative return code ``subprocess`` gives a child a signal ended."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class LocalControlPlaneError(Exception):
    """The local control plane could not be started; the message says why (and where the log is)."""


class _Child:
    """A child process we started, with the log it writes to."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log
        self.started = time.monotonic()


class LocalControlPlane:
    """This machine's embedded control plane and agent (see the module docstring).

    Args:
        data_dir: where the server's data, this machine's host key and the children's logs live.
        port: the TCP port on 127.0.0.1 to start the server on the first time. When it is taken (another
            program, or another data dir's control plane), another free port is chosen, said so
            (event ``port_taken``) and kept for this data dir (``port``), so that the agent command
            handed out stays right from one start to the next.
        on_event: called as ``on_event(kind, message)`` on every state change (see :attr:`on_event`).
        hostname: the name this machine registers under (default: its host name, cut to 64 characters).
        bind: the address the server listens on (``0.0.0.0`` to let other machines' agents in).
        public_url: the server root other machines reach it at (the ``--server`` handed to agents).

    Use it as ``async with LocalControlPlane(dir) as plane:`` or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        data_dir: Path | str,
        port: int = 8787,
        *,
        on_event: EventCallback | None = None,
        hostname: str | None = None,
        bind: str = "127.0.0.1",
        public_url: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.bind = bind
        self.public_url = public_url
        self.on_event = on_event
        """Called as ``on_event(kind, message)`` on every state change: server_reused, server_started,
        server_died, server_failed, port_taken, host_registered, host_revoked, agent_started, agent_standby
        (another agent serves this host), agent_died, agent_refused, supervisor_failed."""
        self.hostname = hostname or socket.gethostname()
        self.base_url: str | None = None
        """The server root, once started."""
        self.token: str | None = None
        """The admin token of the local server, once started."""
        self.host_id: str | None = None
        """This machine's host id, once registered."""
        self.host_name: str | None = None
        """This machine's host name (as the fleet shows it), once known."""
        self.server_reused = False
        """True when the server was already running and is not ours to stop."""
        self.host_revoked = False
        """True when this machine's host is revoked: no agent runs until it is registered again."""
        self.agent_refused: str | None = None
        """The agent's reason when the server refused it (it is not restarted), else None."""
        self.poll_interval = 2.0
        """How often to check on what is not ours: a reused server, another agent serving this host."""
        self.events: deque[tuple[str, str]] = deque(maxlen=100)
        """The latest ``(kind, message)`` events, oldest first."""
        self._server: _Child | None = None
        self._agent: _Child | None = None
        self._host_key: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def server_dir(self) -> Path:
        """The embedded server's own data dir (``server.json``, ``admin-token``, the database)."""
        return self.data_dir / "server"

    @property
    def logs_dir(self) -> Path:
        """Where the server and agent children write their logs (``server.log``, ``agent.log``)."""
        return self.data_dir / "logs"

    @property
    def host_file(self) -> Path:
        """``local-host.json``: this machine's ``host_id`` and ``host_key`` (mode 0600)."""
        return self.data_dir / "local-host.json"

    @property
    def port_file(self) -> Path:
        """``port``: the TCP port this data dir's server listens on, kept from one start to the next."""
        return self.data_dir / "port"  # read by config.kept_local_port

    def _kept_port(self) -> int | None:
        return config.kept_local_port(self.data_dir)

    @property
    def server_pid(self) -> int | None:
        """The pid of the server child we run (None when reusing someone else's, or stopped)."""
        return self._server.proc.pid if self._server is not None else None

    @property
    def agent_pid(self) -> int | None:
        """The pid of this machine's agent child (None when it is not running)."""
        return self._agent.proc.pid if self._agent is not None else None

    def _emit(self, kind: str, message: str) -> None:
        self.events.append((kind, message))
        if self.on_event is not None:
            self.on_event(kind, message)

    # --- start / stop ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bring the server and this machine's agent up, and keep them up; idempotent.

        Reuses a healthy server already running on the data dir, else starts one (waiting up to
        ``READY_TIMEOUT`` seconds); registers this machine as a host the first time.

        Raises:
            LocalControlPlaneError: the server did not start, or this machine could not be registered
                (the message names the log to read). Whatever was started is stopped again.
            OSError: the data dir cannot be created.
        """
        if self.base_url is not None:
            return
        self._stopping = False
        self.server_reused = self.host_revoked = False
        self.agent_refused = None
        try:
            await asyncio.to_thread(self._make_dirs)
            external = await self._running_server()
            if external is not None:
                self.base_url = external
                self.server_reused = True
                self._emit("server_reused", f"using the embedded server already running at {external}")
            else:
                kept: int | None = await asyncio.to_thread(self._kept_port)
                await self._start_server(kept or self.port)
            self.token = await asyncio.to_thread(self._read_token)
            status = await self._ensure_host()
            if status == "online":
                self._emit("agent_standby", f"another agent serves {self._host_label}; standing by")
            elif status != "revoked":
                await self._start_agent()
        except BaseException:
            await self.stop()
            raise
        self._watch("server", self._supervise_server())
        if not self.host_revoked:
            self._watch("agent", self._supervise_agent())

    def _watch(self, name: str, supervisor: Coroutine[Any, Any, None]) -> None:
        """Run a supervisor (``name`` is what it looks after); if it fails, say so instead of dying silently."""

        def done(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is not None:
                self._emit("supervisor_failed", f"{task.get_name()} stopped: {task.exception()}")

        task = asyncio.create_task(supervisor, name=f"local-control-plane {name} supervisor")
        task.add_done_callback(done)
        self._tasks.append(task)

    async def stop(self) -> None:
        """Stop the children this control plane started (agent first); a reused server is left running.

        Each child gets SIGTERM and ``STOP_GRACE`` seconds before SIGKILL. Never raises for a child
        that is already gone.
        """
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._agent is not None:
            await _terminate(self._agent.proc)
            self._agent = None
        if self._server is not None:
            await _terminate(self._server.proc)
            self._server = None
        self.base_url = None

    async def __aenter__(self) -> Self:
        """:meth:`start` it; raises what :meth:`start` raises."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """:meth:`stop` it."""
        await self.stop()

    def client(self) -> OpenComputersClient:
        """A client of the local server with its admin token (the caller closes it).

        Raises:
            LocalControlPlaneError: the control plane is not started.
        """
        if self.base_url is None:
            raise LocalControlPlaneError("the local control plane is not started")
        return OpenComputersClient(self.base_url, self.token)

    # --- server ------------------------------------------------------------------------------------

    def _make_dirs(self) -> None:
        for path in (self.data_dir, self.server_dir, self.logs_dir):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _server_info(self) -> dict[str, Any] | None:
        try:
            info = json.loads((self.server_dir / "server.json").read_text())
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    async def _running_server(self) -> str | None:
        """The URL of a healthy server of our data dir already running (server.json can be stale)."""
        info = await asyncio.to_thread(self._server_info)
        if not info or not isinstance(info.get("base_url"), str) or not _pid_alive(info.get("pid")):
            return None
        return info["base_url"] if await _healthy(info["base_url"]) else None

    async def _start_server(self, port: int) -> None:
        """Spawn the server on ``port`` — another free one, said so and kept, when it is taken — and wait
        until it is ready."""
        candidates = [port, 0] if port and _port_free(port) else [0]
        for candidate in candidates:
            child = await self._spawn(
                "server",
                [
                    "-m",
                    "embedded_server",
                    "serve",
                    "--data-dir",
                    str(self.server_dir),
                    "--port",
                    str(candidate),
                    "--bind",
                    self.bind,
                    *(["--public-url", self.public_url] if self.public_url else []),
                ],
                env={},
            )
            url = await self._wait_ready(child)
            if url is not None:
                self._server = child
                self.base_url = url
                self._emit("server_started", f"embedded server started at {url} (pid {child.proc.pid})")
                listening = httpx.URL(url).port
                if port and listening != port:
                    self._emit(
                        "port_taken",
                        f"port {port} is taken by another program (or another oc-tui's control plane); "
                        f"this control plane listens on port {listening} instead, and keeps it: agents "
                        f"of other machines must use --server with port {listening}",
                    )
                if listening:
                    await asyncio.to_thread(self.port_file.write_text, f"{listening}\n")
                return
        raise LocalControlPlaneError(
            f"the embedded server did not start; see {self.logs_dir / 'server.log'}: {_last_line(child.log)}"
        )

    async def _wait_ready(self, child: _Child) -> str | None:
        """The server's URL once its server.json names it and /healthz answers; None if it exits."""
        deadline = time.monotonic() + READY_TIMEOUT
        try:
            while time.monotonic() < deadline:
                if child.proc.returncode is not None:
                    return None
                info = await asyncio.to_thread(self._server_info)
                if info and info.get("pid") == child.proc.pid and await _healthy(str(info.get("base_url"))):
                    return str(info["base_url"])
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(child.proc.wait(), 0.1)
        except BaseException:  # cancelled (stop() during a restart): do not leave it behind
            await _terminate(child.proc)
            raise
        await _terminate(child.proc)
        return None

    async def _supervise_server(self) -> None:
        """Restart the server when it dies (with backoff), or start ours when a reused one goes away."""
        failures = 0
        while not self._stopping:
            stable = await self._server_gone()
            failures = 0 if stable else failures + 1
            old_url = self.base_url or ""
            while True:
                await asyncio.sleep(backoff_delay(failures - 1, cap=10.0, floor=0.25) if failures else 0)
                try:
                    await self._start_server(httpx.URL(old_url).port or self.port)
                    break
                except LocalControlPlaneError as exc:
                    failures += 1
                    self._emit("server_failed", str(exc))
            self.server_reused = False
            if self.base_url != old_url and self._agent is not None:
                await _terminate(self._agent.proc)  # its supervisor restarts it on the new URL

    async def _server_gone(self) -> bool:
        """Wait until the server is gone: ours exited, or a reused one stopped answering.

        Returns whether it had been up long enough (``STABLE_AFTER``) to restart it without delay.
        """
        if self._server is None:
            # two misses in a row: one slow answer is not a dead server
            while await _healthy(self.base_url or "") or await _healthy(self.base_url or ""):
                await asyncio.sleep(self.poll_interval)
            self._emit(
                "server_died", f"the embedded server at {self.base_url} stopped answering; starting one"
            )
            return True
        code = await self._server.proc.wait()
        stable = time.monotonic() - self._server.started > STABLE_AFTER
        self._server = None
        self._emit("server_died", f"the embedded server {describe_exit(code)}; restarting it")
        return stable

    # --- this machine's host ----------------------------------------------------------------------

    def _read_token(self) -> str:
        path = self.server_dir / "admin-token"
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise LocalControlPlaneError(f"cannot read the local admin token at {path}: {exc}") from exc

    def _read_host_file(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self.host_file.read_text())
        except (OSError, ValueError):
            return None
        if (
            isinstance(state, dict)
            and isinstance(state.get("host_id"), str)
            and isinstance(state.get("host_key"), str)
        ):
            return state
        return None

    def _write_host_file(self, state: dict[str, str]) -> None:
        tmp = self.host_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(state, handle)
        os.replace(tmp, self.host_file)

    async def _ensure_host(self) -> str:
        """Reuse the host registered for this machine, or register it (again, if the server forgot it).

        Returns the host's status.
        """
        state = await asyncio.to_thread(self._read_host_file)
        async with self.client() as client:
            if state is not None:
                try:
                    host = await client.get_host(state["host_id"])
                except errors.NotFoundError:
                    state = None
                except errors.OpenComputersError as exc:
                    raise LocalControlPlaneError(f"cannot look up this machine's host: {exc}") from exc
                else:
                    self.host_id, self._host_key = host.id, state["host_key"]
                    self.host_name = host.name
                    if host.status == "revoked":
                        self._revoked()
                    return host.status
            try:
                reg = await client.register_host(self.hostname[:64], labels={"os": platform.system().lower()})
            except errors.OpenComputersError as exc:
                raise LocalControlPlaneError(f"cannot register this machine: {exc}") from exc
        await asyncio.to_thread(self._write_host_file, {"host_id": reg.id, "host_key": reg.host_key})
        self.host_id, self._host_key = reg.id, reg.host_key
        self.host_name = reg.name
        self._emit("host_registered", f"registered this machine as {reg.name} ({reg.id})")
        return reg.status

    @property
    def _host_label(self) -> str:
        """This machine's host as the fleet names it (its name; the id until the name is known)."""
        return self.host_name or self.host_id or "this machine"

    def _revoked(self) -> None:
        self.host_revoked = True
        self._emit(
            "host_revoked", f"this machine's host {self._host_label} is revoked; its agent does not run"
        )

    async def _host_status(self) -> str | None:
        """This machine's host status; None when the server cannot tell (restarting, or forgot it)."""
        try:
            async with self.client() as client:
                return (await client.get_host(self.host_id or "")).status
        except (errors.OpenComputersError, LocalControlPlaneError):
            return None

    # --- agent -------------------------------------------------------------------------------------

    async def _start_agent(self) -> None:
        assert self.base_url is not None and self._host_key is not None
        self._agent = await self._spawn(
            "agent",
            ["-m", "embedded_server.agent", "--server", self.base_url],
            env={"OC_HOST_KEY": self._host_key},
        )
        self._emit("agent_started", f"agent for {self._host_label} started (pid {self._agent.proc.pid})")

    async def _supervise_agent(self) -> None:
        """Keep an agent serving this machine: restart ours when it dies; stand by while another one
        serves the host (another oc-tui, or an oc-agent someone started); stop when the server refuses
        ours for good (unknown key or revoked: exit status 2)."""
        failures = 0
        while not self._stopping:
            if self._agent is None:
                await self._stand_by()
                if self.host_revoked:
                    return
                await self._start_agent()
            assert self._agent is not None
            code = await self._agent.proc.wait()
            child, self._agent = self._agent, None
            if code == AGENT_REFUSED:
                status = await self._host_status()
                if status == "online":  # replaced by another agent with our key
                    self._emit("agent_standby", f"another agent took over {self._host_label}; standing by")
                    continue
                self.agent_refused = await asyncio.to_thread(_last_line, child.log) or "refused by the server"
                self._emit(
                    "agent_refused", f"the agent was refused and is not restarted: {self.agent_refused}"
                )
                if status == "revoked":
                    self._revoked()
                return
            self._emit("agent_died", f"the agent {describe_exit(code)}; restarting it")
            failures = 0 if time.monotonic() - child.started > STABLE_AFTER else failures + 1
            await asyncio.sleep(backoff_delay(failures - 1, cap=10.0, floor=0.25) if failures else 0)
            await self._start_agent()

    async def _stand_by(self) -> None:
        """Wait while another agent serves this host; return when none does (or the host is revoked)."""
        while True:
            status = await self._host_status()
            if status == "revoked":
                self._revoked()
                return
            if status is not None and status != "online":
                return
            await asyncio.sleep(self.poll_interval)

    # --- processes ---------------------------------------------------------------------------------

    async def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> _Child:
        log = self.logs_dir / f"{name}.log"
        handle = await asyncio.to_thread(open, log, "ab")
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-P",  # no working directory on sys.path: the installed package runs, not a look-alike here
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=handle,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            )
        finally:
            handle.close()
        return _Child(proc, log)


async def _healthy(base_url: str) -> bool:
    """Whether an embedded server answers ``/healthz`` at ``base_url``."""
    try:
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as http:
            response = await http.get(base_url.rstrip("/") + "/healthz")
            return response.status_code == 200 and response.json().get("status") == "ok"
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def _port_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port`` (SO_REUSEADDR, like the server's own bind)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


def _last_line(path: Path) -> str:
    """The last non-empty line of a log (where a child says why it stopped)."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - 4096))
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


async def _terminate(proc: asyncio.subprocess.Process, grace: float = STOP_GRACE) -> None:
    """SIGTERM, then SIGKILL if the process is still there after ``grace`` seconds."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
