"""An inference cluster over two hosts: through the cluster's endpoint (control plane → agent → engine)
against straight to the same engine, in one run — the latency the cluster adds to a non-streamed
completion (p50, p99), the time to first token of a streamed one, and requests/s with 1 and 2 hosts
when the engines are the bottleneck.

The engines are tests/fake_engine.py (the OpenAI wire format): one per host, each on its own port (both
hosts are agents on this machine). For the latency rows they answer at once; for requests/s each
generates one answer at a time (``--slots 1``, as ``llama-server --parallel 1``), 5 tokens 20 ms apart,
and N clients ask at once.
"""

from __future__ import annotations

import asyncio
import importlib.util
import statistics
import subprocess
import time
from pathlib import Path

import httpx

from bench.harness import Context, Row, Samples
from bench.system import free_port

ENGINE = Path(__file__).resolve().parents[2] / "tests" / "fake_engine.py"
CLIENTS = 8  # concurrent clients for requests/s
TOKEN_DELAY = 0.02  # seconds between two tokens of the slow engines
BODY = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


def start_engine(port: int) -> subprocess.Popen[bytes]:
    """A fake engine (one slot) on ``port``, ready."""
    spec = importlib.util.spec_from_file_location("fake_engine", ENGINE)
    assert spec is not None and spec.loader is not None
    engine = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(engine)
    child: subprocess.Popen[bytes] = engine.launch(port, "--slots", "1")
    return child


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def latencies(url: str, headers: dict[str, str], count: int, stream: bool) -> list[float]:
    """Milliseconds of ``count`` sequential requests: to the end of the answer, or (``stream``) to its
    first SSE event."""
    values = []
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        for i in range(count + 3):
            start = time.perf_counter()
            if stream:
                elapsed = 0.0
                async with client.stream("POST", url, json={**BODY, "stream": True}) as response:
                    async for line in response.aiter_lines():
                        if line.startswith("data: ") and not elapsed:
                            elapsed = time.perf_counter() - start
            else:
                (await client.post(url, json=BODY)).raise_for_status()
                elapsed = time.perf_counter() - start
            if i >= 3:  # warm-up
                values.append(elapsed * 1000)
    return values


async def throughput(url: str, headers: dict[str, str], seconds: float) -> float:
    """Requests/s of :data:`CLIENTS` clients asking back to back for ``seconds``."""
    done = 0
    deadline = time.monotonic() + seconds

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            (await client.post(url, json=BODY)).raise_for_status()
            done += 1

    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(headers=headers, timeout=30, limits=limits) as client:
        started = time.monotonic()
        await asyncio.gather(*(client_loop(client) for _ in range(CLIENTS)))
        return done / (time.monotonic() - started)


def run(ctx: Context) -> list[Row]:
    plane = ctx.plane
    count = 30 if ctx.smoke else 100 if ctx.quick else 300
    seconds = 2.0 if ctx.smoke else 4.0 if ctx.quick else 10.0
    rounds = 1 if ctx.smoke else 3
    ports = [free_port(), free_port()]
    engines = [start_engine(port) for port in ports]
    cluster_ids: list[str] = []
    try:
        a = plane.local_host()
        b, key = plane.register("bench-second")
        plane.start_agent(key)
        plane.wait_status(b, "online")
        auth = {"Authorization": f"Bearer {plane.token}"}

        def make(name: str, hosts: list[str]) -> str:
            body = {
                "name": name,
                "model": "tiny",
                "host_ids": hosts,
                "engine": {"kind": "openai", "port": ports[0]},
                "host_ports": {h: p for h, p in zip([a, b], ports, strict=True) if h in hosts},
            }
            made = plane.http.post("/clusters", json=body).json()
            cluster_ids.append(made["id"])
            deadline = time.monotonic() + 20
            while plane.http.get(f"/clusters/{made['id']}").json()["status"] != "active":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cluster {name} never became active")
                time.sleep(0.05)
            return f"{made['inference_url']}/chat/completions"

        both = make("bench-both", [a, b])
        one = make("bench-one", [a])
        direct = f"http://127.0.0.1:{ports[0]}/v1/chat/completions"
        mine, theirs, ttft, ttft_direct = [], [], [], []
        for _ in range(rounds):  # interleaved, so drift on a shared machine hits both alike
            mine += asyncio.run(latencies(one, auth, count, stream=False))
            theirs += asyncio.run(latencies(direct, {}, count, stream=False))
            ttft += asyncio.run(latencies(one, auth, count // 2, stream=True))
            ttft_direct += asyncio.run(latencies(direct, {}, count // 2, stream=True))
        for port in ports:
            httpx.post(f"http://127.0.0.1:{port}/_control", json={"delay": TOKEN_DELAY}).raise_for_status()
        rate_one, rate_two = [], []
        for _ in range(rounds):
            rate_one.append(asyncio.run(throughput(one, auth, seconds)))
            rate_two.append(asyncio.run(throughput(both, auth, seconds)))
    finally:
        for cluster_id in cluster_ids:
            plane.http.delete(f"/clusters/{cluster_id}")
        for engine in engines:
            engine.terminate()
            engine.wait(10)
    added_p50 = percentile(mine, 50) - percentile(theirs, 50)
    added_p99 = percentile(mine, 99) - percentile(theirs, 99)
    p50, p50_direct = Samples([percentile(mine, 50)], "ms"), Samples([percentile(theirs, 50)], "ms")
    p99, p99_direct = Samples([percentile(mine, 99)], "ms"), Samples([percentile(theirs, 99)], "ms")
    first, first_direct = (
        Samples([statistics.median(ttft)], "ms"),
        Samples([statistics.median(ttft_direct)], "ms"),
    )
    one_host, two_hosts = Samples(rate_one, "req/s"), Samples(rate_two, "req/s")
    gain = two_hosts.median / one_host.median if one_host.median else 0.0
    return [
        Row("cluster: completion p50 vs the engine direct", p50, p50_direct, target="≤ +2 ms",
            met=added_p50 <= 2.0, note=f"added {added_p50:.2f} ms at p50 ({len(mine)} requests)"),
        Row("cluster: completion p99 vs the engine direct", p99, p99_direct,
            note=f"added {added_p99:.2f} ms at p99"),
        Row("cluster: time to first token vs direct", first, first_direct),
        Row(f"cluster: requests/s, 2 hosts vs 1 ({CLIENTS} clients, engine-bound)", two_hosts, one_host,
            lower_is_better=False, target="≥ 1.8×", met=gain >= 1.8,
            note="the OpenSSH column is the same cluster with 1 host"),
    ]  # fmt: skip
