"""The embedded control plane and agents, started on loopback for the benchmarks.

Real agents are real ``oc-agent`` processes. For the scale cases (hundreds to thousands of hosts on a
2-core machine) ``SimulatedAgents`` holds many control connections in one process, speaking the agent
protocol of docs/protocol.md (hello, heartbeats, answering calls) — the server cannot tell them apart.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import websockets

from bench.service import Service
from embedded_server.identity import Identity

API = "/api/v1/opencomputers"


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class ControlPlane(Service):
    """A throw-away ``oc-server`` on 127.0.0.1 with its own data dir."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="oc-bench-plane-"))
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.token = ""
        self.agents: list[subprocess.Popen[bytes]] = []
        self.http: httpx.Client | None = None
        self._local_host: str | None = None

    def _start(self) -> None:
        _raise_fd_limit()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "embedded_server", "serve", "--data-dir", str(self.dir), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=open(self.dir / "server.log", "w"),  # noqa: SIM115 - lives as long as the server
            text=True,
            preexec_fn=_raise_fd_limit,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "http" not in line:
            raise RuntimeError(f"oc-server did not start: {line!r}; see {self.dir / 'server.log'}")
        self.base_url = line.strip().rsplit(" ", 1)[-1]
        self.token = (self.dir / "admin-token").read_text().strip()
        self.http = httpx.Client(
            base_url=self.base_url + API, headers={"Authorization": f"Bearer {self.token}"}, timeout=60
        )

    def register(self, name: str) -> tuple[str, str]:
        assert self.http
        resp = self.http.post("/hosts", json={"name": name})
        resp.raise_for_status()
        body = resp.json()
        return body["id"], body["host_key"]

    def start_agent(self, host_key: str) -> subprocess.Popen[bytes]:
        # A state dir of its own: agents sharing the default one (other benchmark runs, other users'
        # tests on this machine) sweep each other's job spools and upload temporary files at start.
        state = self.dir / f"agent-{len(self.agents)}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "embedded_server.agent", "--server", self.base_url],
            env=os.environ | {"OC_HOST_KEY": host_key, "OC_AGENT_STATE_DIR": str(state)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.agents.append(proc)
        return proc

    def local_host(self) -> str:
        """A host served by a real agent on this machine, registered and started once per run."""
        if self._local_host is None:
            host_id, key = self.register("bench-local")
            self.start_agent(key)
            self.wait_status(host_id, "online")
            self._local_host = host_id
        return self._local_host

    def wait_status(self, host_id: str, status: str, timeout: float = 20) -> None:
        assert self.http
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.http.get(f"/hosts/{host_id}").json().get("status") == status:
                return
            time.sleep(0.05)
        raise TimeoutError(f"{host_id} did not become {status}")

    def online_count(self) -> int:
        assert self.http
        count, page = 0, 1
        while True:
            body = self.http.get("/hosts", params={"page": page, "per_page": 100}).json()
            count += sum(1 for h in body["data"] if h["status"] == "online")
            if page * 100 >= body["meta"]["total"]:
                return count
            page += 1

    def server_rss_mib(self) -> float:
        assert self.proc
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def server_cpu_seconds(self) -> float:
        assert self.proc
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc: object) -> None:
        if self.http:
            self.http.close()
        for proc in [*self.agents, self.proc]:
            if proc and proc.poll() is None:
                proc.terminate()
        for proc in [*self.agents, self.proc]:
            if proc:
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class SimulatedAgents:
    """Many agent control connections held by one background thread's event loop."""

    def __init__(self, base_url: str, host_keys: list[str]) -> None:
        self.url = base_url.replace("http://", "ws://", 1) + "/opencomputers/ws/agent"
        self.keys = host_keys
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.welcomed = 0
        self.stream_keys: dict[str, str] = {}  # host key -> the stream key its welcome gave
        self.tasks: list[asyncio.Task[None]] = []
        self.streams: set[asyncio.Future[None]] = set()

    def __enter__(self) -> SimulatedAgents:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start_all(), self.loop)
        return self

    async def _start_all(self) -> None:
        limiter = asyncio.Semaphore(200)  # don't stampede the accept queue
        self.tasks = [asyncio.ensure_future(self._one(key, limiter)) for key in self.keys]

    async def _stop_all(self) -> None:
        tasks = [*self.tasks, *self.streams]
        for task in tasks:
            task.cancel()
        if tasks:  # a connection whose close handshake stalls is abandoned, not waited for forever
            await asyncio.wait(tasks, timeout=15)

    async def _one(self, key: str, limiter: asyncio.Semaphore) -> None:
        async with limiter:
            ws = await websockets.connect(
                self.url, additional_headers={"Authorization": f"Bearer {key}"}, ping_interval=None,
                max_queue=4, open_timeout=60,
            )  # fmt: skip
            challenge = json.loads(await ws.recv())
            proof = Identity.generate().proof(challenge["nonce"])  # each simulated host: its own machine
            await ws.send(json.dumps(self._hello() | {"identity": proof}))
            welcome = json.loads(await ws.recv())
            self.stream_keys[key] = welcome["stream_key"]
            self.welcomed += 1
        interval = float(welcome.get("heartbeat_interval", 3))
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=interval)
                except TimeoutError:
                    await ws.send(json.dumps({"type": "ping", "t": time.time()}))
                    continue
                msg = json.loads(raw)
                if msg.get("type") == "request":
                    result = self._answer(key, msg.get("method"), msg.get("params") or {})
                    await ws.send(json.dumps({"type": "response", "id": msg["id"], "result": result}))
        finally:
            await ws.close()

    def _answer(self, key: str, method: object, params: dict[str, object]) -> dict[str, object]:
        """``job.start`` runs nothing and ends at once with exit 0, as a real agent does for ``true``:
        with ``wait`` the whole result comes inline; without, the job's stream reports the exit."""
        if method != "job.start":
            return {}
        now = time.time()
        started: dict[str, object] = {"started": True, "pid": os.getpid(), "started_at": now}
        if params.get("wait"):
            exit_info = {"reason": "exited", "exit_code": 0, "signal": None, "finished_at": now}
            return started | {"exit": exit_info, "output": []}
        job = asyncio.ensure_future(self._job_stream(key, str(params.get("job_id"))))
        self.streams.add(job)
        job.add_done_callback(self.streams.discard)
        return started

    async def _job_stream(self, key: str, job_id: str) -> None:
        """Dial the job's stream (docs/protocol.md): after ``resume``, the exit frame; then ``done``."""
        url = self.url + f"/stream?job_id={job_id}"
        bearer = {"Authorization": f"Bearer {self.stream_keys[key]}"}  # a stream takes the welcome's key
        async with websockets.connect(
            url, additional_headers=bearer, ping_interval=None, open_timeout=60
        ) as ws:
            first = json.loads(await ws.recv())
            if first.get("type") != "resume":
                return
            exit_frame = {"type": "exit", "job_id": job_id, "output_bytes": first.get("offset", 0),
                          "reason": "exited", "exit_code": 0, "signal": None, "finished_at": time.time()}  # fmt: skip
            await ws.send(json.dumps(exit_frame))
            await ws.recv()  # done

    @staticmethod
    def _hello() -> dict[str, object]:
        return {
            "type": "hello",
            "agent_version": "bench",
            "hostname": "sim",
            "os": platform.system(),
            "arch": platform.machine(),
            "python": platform.python_version(),
            "pid": os.getpid(),
            "capabilities": [],
        }

    def wait_welcomed(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.welcomed < len(self.keys):
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.welcomed}/{len(self.keys)} simulated agents connected")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop_all(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
