"""Control-plane scale: many idle agents connected to one server.

Registers N hosts, connects N simulated agents (real WebSocket connections speaking the agent
protocol), and measures how long until all are online, the server's memory and CPU while they idle,
and ``GET /hosts`` latency meanwhile. OpenSSH has no equivalent (it keeps no fleet), so these rows
carry absolute targets instead of ratios.
"""

from __future__ import annotations

import time

from bench.harness import Context, Row, Samples, measure
from bench.plane import SimulatedAgents


def sizes(ctx: Context) -> list[int]:
    if ctx.smoke:
        return [20]
    if ctx.quick:
        return [200]
    return [1000, 10000] if ctx.full else [1000]


def run(ctx: Context) -> list[Row]:
    plane = ctx.plane
    rows: list[Row] = []
    for n in sizes(ctx):
        keys = [plane.register(f"sim-{n}-{i}")[1] for i in range(n)]
        rss_before = plane.server_rss_mib()
        start = time.monotonic()
        with SimulatedAgents(plane.base_url, keys) as sims:
            sims.wait_welcomed(timeout=max(60, n / 50))
            while plane.online_count() < n:
                time.sleep(0.2)
            connect_s = time.monotonic() - start
            time.sleep(2 if ctx.quick else 5)
            cpu0, t0 = plane.server_cpu_seconds(), time.monotonic()
            time.sleep(3 if ctx.quick else 10)
            cpu_pct = 100 * (plane.server_cpu_seconds() - cpu0) / (time.monotonic() - t0)
            rss = plane.server_rss_mib()
            lat = Samples(measure(lambda: plane.http.get("/hosts", params={"per_page": 100}).raise_for_status(),
                                  ctx.repeats, warmup=2), "ms")  # fmt: skip
        per_agent_kib = (rss - rss_before) * 1024 / n
        projected_10k = rss_before + per_agent_kib * 10000 / 1024  # target: 10,000 idle agents in ≤ 1 GiB
        rows += [
            Row(f"{n} agents: connect until all online", Samples([connect_s], "s")),
            Row(f"{n} idle agents: server RSS", Samples([rss], "MiB"),
                target="10k agents ≤ 1024 MiB", met=projected_10k <= 1024,
                note=f"{per_agent_kib:.0f} KiB per connected agent; {projected_10k:.0f} MiB projected at 10k"),
            Row(f"{n} idle agents: server CPU", Samples([cpu_pct], "%")),
            Row(f"GET /hosts?per_page=100 with {n} online", lat),
        ]  # fmt: skip
    return rows
