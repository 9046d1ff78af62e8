"""Fixtures that run the REAL embedded server and REAL agents as subprocesses (no mocks of our code).

- ``server``: one ``python -m embedded_server serve --port 0`` process for the whole session, seen by
  each test through a fresh tenant of its own (so lists start empty and tests cannot see each other).
  ``server.token``/``server.tenant_id`` belong to that tenant; ``server.admin_token`` is the first one.
  ``server.restart()`` restarts the process on the same data dir and port (agents redial it).
- ``extra_server(**env)``: another server process with extra environment, for one test.
- ``start_agent(host_key, **env)``: a ``python -m embedded_server.agent`` process against the server
  (``OC_SERVER_URL`` may be overridden), its job spools in a temporary state dir, killed at teardown. Works in sync tests and as ``await start_agent(key)`` in async ones.
- ``server.register(name)`` registers a host over plain httpx; ``await server.wait_for_status(host_id,
  "online")`` polls until the host has that status.

Short heartbeats (``OC_HEARTBEAT_INTERVAL``) and call timeouts keep agent tests fast.

Helpers that several test modules share (``online_host``, ``api``, ``error``, ``rss``, ``serve_http`` and
the Pilot helpers ``make_app``, ``wait_until``, ``rows``, ``notifications``) are at the end of this file;
import them with ``from conftest import …``.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from embedded_server.auth import create_tenant
from embedded_server.db import Database
from oc_tui.api import OpenComputersClient

if TYPE_CHECKING:
    from textual.pilot import Pilot

    from oc_tui.app import OcTuiApp

ROOT = Path(__file__).resolve().parent.parent
API = "/api/v1/opencomputers"

TEST_HOME = Path(tempfile.mkdtemp(prefix="oc-test-home-"))
os.environ["HOME"] = str(TEST_HOME)
"""The session's home, for this process and every server, agent and shell it starts: the login shells of
the terminal tests read no dotfiles of the machine's user (a ``pyenv rehash`` in ~/.bashrc, killed
mid-way by a test, left a lock that made every later login shell wait 60 s), and no test reads or writes
the user's own config, data or ~/Pictures."""
TEST_ENV = {
    "OC_HEARTBEAT_INTERVAL": "0.5",  # silence for 1.5 s drops an agent
    "OC_CALL_TIMEOUT": "3",
    "OC_SSE_KEEPALIVE": "1",
    "OC_CLUSTER_HEALTH_INTERVAL": "0.3",  # inference clusters re-check their hosts' engines this often
    "PYTHONUNBUFFERED": "1",
}

_children: list[subprocess.Popen[bytes]] = []


@atexit.register
def _kill_leftovers() -> None:
    """Last line of defence: no child outlives the test session, even after an interrupt."""
    for child in _children:
        if child.poll() is None:
            child.kill()
            child.wait()


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        child = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    _children.append(child)
    return child


def _stop(child: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
    if child.poll() is None:
        if sig != signal.SIGKILL:
            os.kill(child.pid, signal.SIGCONT)  # a SIGSTOPped child cannot act on SIGTERM
        child.send_signal(sig)
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return child.returncode


def _environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OC_", "MIOSA_"))}
    return {**env, **TEST_ENV, **extra}


class ServerProcess:
    """The real ``oc-server`` on a temporary data dir; restartable on the same port."""

    def __init__(
        self, data_dir: Path, log: Path, env: dict[str, str] | None = None, bind: str = "127.0.0.1"
    ) -> None:
        self.data_dir = data_dir
        self.log = log
        self.env = env or {}
        self.bind = bind
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.bind}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        args = ["-m", "embedded_server", "serve", "--data-dir", str(self.data_dir), "--port", str(self.port)]
        args += ["--bind", self.bind]
        self.process = _spawn(args, _environ(**self.env), self.log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"oc-server exited with {self.process.returncode}:\n{self.log.read_text()}"
                )
            for line in self.log.read_text()[offset:].splitlines():
                if line.startswith("oc-server listening on "):
                    self.port = int(line.rsplit(":", 1)[1])
                    if self._healthy():
                        return
            time.sleep(0.05)
        raise RuntimeError(f"oc-server did not start within {timeout} s:\n{self.log.read_text()}")

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        return _stop(self.process, sig)

    def restart(self, kill: bool = False) -> None:
        """Stop (SIGTERM, or SIGKILL when ``kill``) and start again on the same data dir and port."""
        self.stop(signal.SIGKILL if kill else signal.SIGTERM)
        self.start()

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    def new_tenant(self, name: str = "test") -> tuple[str, str]:
        """Written straight into the server's DB (as ``oc-server tenant add`` does), fast.

        The connection is closed at once: a connection kept open in this process would lose its
        POSIX locks whenever a test reads the DB files, and SQLite would then corrupt its view.
        """
        db = Database(self.data_dir / "oc-server.db")
        try:
            return create_tenant(db, name)
        finally:
            db.close()


class Server:
    """What a test sees: the shared server process through a tenant of its own."""

    def __init__(self, proc: ServerProcess) -> None:
        self._proc = proc
        self.tenant_id, self.token = proc.new_tenant()

    base_url = property(lambda self: self._proc.base_url)
    api_url = property(lambda self: self._proc.base_url + API)
    data_dir = property(lambda self: self._proc.data_dir)
    process = property(lambda self: self._proc.process)
    admin_token = property(lambda self: self._proc.admin_token)
    log = property(lambda self: self._proc.log)

    def new_tenant(self, name: str = "other") -> tuple[str, str]:
        """Another tenant: ``(tenant_id, token)``."""
        return self._proc.new_tenant(name)

    def restart(self, kill: bool = False) -> None:
        self._proc.restart(kill)

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, headers=self.headers(token), timeout=15)

    def register(self, name: str = "box", token: str | None = None, **fields: Any) -> dict[str, Any]:
        """Register a host; returns the registration JSON (with ``host_key``)."""
        with self.client(token) as client:
            response = client.post("/hosts", json={"name": name, **fields})
        assert response.status_code == 201, response.text
        return response.json()

    def get_host(self, host_id: str, token: str | None = None) -> dict[str, Any]:
        with self.client(token) as client:
            response = client.get(f"/hosts/{host_id}")
        assert response.status_code == 200, response.text
        return response.json()

    async def wait_for_status(self, host_id: str, status: str, timeout: float = 10.0) -> dict[str, Any]:
        """Poll until the host has ``status``; returns the host JSON, or fails the test after ``timeout``."""
        deadline = time.monotonic() + timeout
        host: dict[str, Any] = {}
        async with httpx.AsyncClient(base_url=self.api_url, headers=self.headers(), timeout=5) as client:
            while time.monotonic() < deadline:
                response = await client.get(f"/hosts/{host_id}")
                host = response.json()
                if host.get("status") == status:
                    return host
                await asyncio.sleep(0.05)
        raise AssertionError(f"host {host_id} did not become {status} in {timeout} s; last: {host}")


class AgentProcess:
    """A real ``oc-agent`` subprocess; its stderr is kept in ``log``."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    def __await__(self) -> Generator[Any, None, AgentProcess]:
        """Lets async tests write ``agent = await start_agent(key)``; the agent is already running."""
        yield from ()
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> str:
        return self.log.read_text()

    def wait(self, timeout: float = 10.0) -> int:
        return self.process.wait(timeout)

    async def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait for the agent to exit without blocking the test's event loop."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"agent still running after {timeout} s:\n{self.output}")
            await asyncio.sleep(0.05)
        return self.process.returncode

    def send_signal(self, sig: int) -> None:
        os.kill(self.process.pid, sig)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return _stop(self.process, sig)


@pytest.fixture(scope="session")
def server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("oc-server")
    proc = ServerProcess(base / "data", base / "server.log")
    proc.start()
    yield proc
    if proc.process is not None:
        proc.stop()


@pytest.fixture
def server(server_process: ServerProcess) -> Server:
    if server_process.process is None or server_process.process.poll() is not None:
        server_process.start()  # a test that stopped it for good must not break the next one
    return Server(server_process)


@pytest.fixture
def extra_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Factory: ``extra_server(**env)`` starts a server process of its own with extra environment
    (for example a small ``OC_JOB_OUTPUT_CAP``), stopped at teardown."""
    procs: list[ServerProcess] = []

    def start(**env: str) -> Server:
        n = len(procs)
        proc = ServerProcess(tmp_path / f"server-{n}", tmp_path / f"server-{n}.log", env=env)
        procs.append(proc)
        proc.start()
        return Server(proc)

    yield start
    for proc in procs:
        if proc.process is not None:
            proc.stop()


@pytest.fixture
def start_agent(server: Server, tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    """Factory: ``start_agent(host_key, **env)`` runs a real agent against ``server`` (key via env).

    Agents of one host key share a state dir, so a second agent of a host is the same machine (the same
    identity key) coming back; pass ``OC_AGENT_STATE_DIR`` for another machine.
    """
    agents: list[AgentProcess] = []

    def start(host_key: str, **env: str) -> AgentProcess:
        log = tmp_path / f"agent-{len(agents)}.log"
        state = tmp_path / f"agent-state-{hashlib.sha256(host_key.encode()).hexdigest()[:12]}"
        agent_env = _environ(
            **{
                "OC_SERVER_URL": server.base_url,
                "OC_HOST_KEY": host_key,
                "OC_AGENT_STATE_DIR": str(state),
                **env,
            }
        )
        agent = AgentProcess(_spawn(["-m", "embedded_server.agent"], agent_env, log), log)
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.stop(signal.SIGKILL)


@pytest.fixture
async def client(server: Server) -> AsyncIterator[OpenComputersClient]:
    """The API client of this test's tenant."""
    async with OpenComputersClient(server.base_url, server.token) as client:
        yield client


@pytest.fixture
async def host(server: Server, start_agent: Callable[..., AgentProcess]) -> dict[str, Any]:
    """A registered host with a real agent, online (its registration: ``id``, ``host_key`` …)."""
    return await online_host(server, start_agent, "test-box")


# === Shared test helpers ===============================================================================
# Plain functions that several test modules use (``from conftest import …``); they were copies.


async def online_host(
    server: Server, start_agent: Callable[..., AgentProcess], name: str = "worker", **env: str
) -> dict[str, Any]:
    """Register a host named ``name``, run a real agent for it (``env`` added to the agent's
    environment) and wait up to 15 s until it is online; returns its registration (``id``,
    ``host_key`` …)."""
    registration = server.register(name)
    start_agent(registration["host_key"], **env)
    await server.wait_for_status(registration["id"], "online", timeout=15)
    return registration


async def online_host_id(
    server: Server, start_agent: Callable[..., AgentProcess], name: str = "worker", **env: str
) -> str:
    """:func:`online_host`, returning only the host's ID."""
    return (await online_host(server, start_agent, name, **env))["id"]


def api(server: Server, token: str | None = None, *, timeout: float = 60.0) -> httpx.AsyncClient:
    """Plain httpx against the API of ``server`` with this test's token (or ``token``); the caller
    closes it (``async with``). ``timeout`` in seconds."""
    return httpx.AsyncClient(base_url=server.api_url, headers=server.headers(token), timeout=timeout)


def error(response: httpx.Response, *, exact: bool = False) -> tuple[int, str]:
    """``(status, code)`` of an error answer, after checking it is ``{"error": {…}}`` with a message
    (and, with ``exact``, nothing but ``code`` and ``message`` in it)."""
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    if exact:
        assert set(body["error"]) == {"code", "message"}, body
    return response.status_code, body["error"]["code"]


def rss(pid: int) -> int:
    """The resident memory of process ``pid``, in bytes (0 when its status has none)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@contextmanager
def serve_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free port of 127.0.0.1 in a thread; yields the server's root URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


# --- the TUI driven with Pilot -------------------------------------------------------------------------

SIZE = (120, 40)
"""The terminal size most TUI tests run at, in cells."""


def make_app(server: Server) -> OcTuiApp:
    """The TUI against ``server`` with this test's token (no local control plane)."""
    from oc_tui.app import OcTuiApp
    from oc_tui.config import Profile

    profile = Profile(name="test", base_url=server.base_url, token=server.token, embedded=False)
    return OcTuiApp(profile)


async def wait_until(pilot: Pilot, condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    """Let the app run until ``condition()`` is true; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)


def rows(app: OcTuiApp) -> dict[str, str]:
    """What the fleet table shows: host name -> status word."""
    table = app.fleet.table
    shown = {}
    for host_id in table.shown_ids:
        _mark, status, name, *_ = (cell.plain for cell in table.cells(host_id))
        shown[name] = status.split()[-1]
    return shown


def notifications(app: OcTuiApp) -> list[tuple[str, str]]:
    """The app's notifications as ``(severity, message)``, oldest first."""
    return [(note.severity, note.message) for note in app._notifications]


# --- the in-process layer: route logic against create_app, no processes, no sockets ------------------


class InProcess:
    """``create_app`` served through ``httpx.ASGITransport``: ``api`` is an AsyncClient on the API prefix
    with a tenant's token (``tenant_id``, ``token``); ``other`` one with another tenant's token."""

    def __init__(self, app: Any, api: httpx.AsyncClient, other: httpx.AsyncClient, tenant_id: str) -> None:
        self.app, self.api, self.other, self.tenant_id = app, api, other, tenant_id


@pytest.fixture
async def inprocess(tmp_path: Path) -> AsyncIterator[InProcess]:
    """A fresh app on its own data dir, for route tests that need no agent (milliseconds each)."""
    from embedded_server.app import create_app
    from embedded_server.settings import Settings

    app = create_app(Settings(data_dir=tmp_path))
    tenant_id, token = create_tenant(app.state.db, "inprocess")
    _, other_token = create_tenant(app.state.db, "other")
    transport = httpx.ASGITransport(app=app)
    base = f"http://inprocess{API}"
    async with (
        httpx.AsyncClient(
            transport=transport, base_url=base, headers={"Authorization": f"Bearer {token}"}
        ) as api,
        httpx.AsyncClient(
            transport=transport, base_url=base, headers={"Authorization": f"Bearer {other_token}"}
        ) as other,
    ):
        yield InProcess(app, api, other, tenant_id)
    app.state.lifecycle.close()
    app.state.db.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``long`` first (the order is otherwise kept): with parallel workers that take a module
    at a time in this order, a two-minute module started last would leave one worker running it alone."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
