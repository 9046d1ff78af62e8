"""Fan-out: ``true`` on N hosts at once, until every host's result is back, against 100 concurrent
``ssh host true`` over one shared (ControlMaster) connection.

The N hosts are simulated agents (bench.plane.SimulatedAgents: real WebSocket connections speaking the
agent protocol; a job "runs" ``true`` and exits 0 at once), all connected to one control plane. The
client is the real ``oc_tui.api`` client, in three ways:

- **as the TUI does it** (oc_tui/screens/fanout.py ``FanoutScreen.run_all``): one ``POST /fanouts``
  with every host (the server starts each job, the agents answering with the inline result), then the
  one combined SSE stream (``fanout_output``) until its ``fanout_end``: every exit code known;
- **per host** (the TUI's fallback against a server without ``/fanouts``, ``FanoutScreen.run_on``):
  ``run_job(..., wait=INLINE_WAIT)``; a job that ended by then comes back with its output, one that did
  not is followed through its SSE stream, then ``get_job`` for the final record;
- **streamed**: ``run_job``, the SSE stream to its ``exit`` event, ``get_job`` — three requests and one
  agent stream per host.

Per host, at most ``STARTS_AT_ONCE`` starts are in flight at once, as in the TUI. Without a bound 1,000
requests queue in httpcore's pool, whose scheduling walks the whole queue on every change: the inline
fan-out to 1,000 hosts then took 20-40 s instead of 3-6 s (2026-11-29, this machine).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable

from bench.harness import Context, Row, Samples
from bench.plane import SimulatedAgents
from oc_tui.api import OpenComputersClient
from oc_tui.api.streams import FanOutEnd
from oc_tui.screens.fanout import INLINE_WAIT, STARTS_AT_ONCE

SSH_CONCURRENT = 100
CONCURRENCY = STARTS_AT_ONCE
TARGET_S = 1.0  # fan-out to 1,000 hosts


def sizes(ctx: Context) -> list[int]:
    if ctx.smoke:
        return [10]
    if ctx.quick:
        return [100]
    return [100, 1000, 10000] if ctx.full else [100, 1000]


async def one_request(client: OpenComputersClient, host_ids: list[str]) -> None:
    """What FanoutScreen.run_all does: one fan-out request, then its combined stream to the end."""
    fan = await client.start_fanout("true", host_ids=host_ids)
    async with client.fanout_output(fan.id) as output:
        async for _host_id, item in output:
            if isinstance(item, FanOutEnd):
                if item.summary != {"exit 0": len(host_ids)}:
                    raise RuntimeError(f"fan-out ended {item.summary}")
                return
    raise RuntimeError("the fan-out stream ended without its end")


async def _fan_out_once(base_url: str, token: str, host_ids: list[str], runs: int) -> list[float]:
    """Seconds per fan-out to every host through the server's fan-out, after one warm-up."""
    values = []
    async with OpenComputersClient(base_url, token, timeout=120) as client:
        for i in range(runs + 1):
            start = time.perf_counter()
            await one_request(client, host_ids)
            if i:
                values.append(time.perf_counter() - start)
    return values


async def _follow(client: OpenComputersClient, host_id: str, job_id: str) -> None:
    """Follow a job's output to its end, then check its final record."""
    async with client.job_events(host_id, job_id) as stream:
        async for _event in stream:
            pass
    final = await client.get_job(host_id, job_id)
    if final.status != "completed":
        raise RuntimeError(f"fan-out job on {host_id} ended {final.status}: {final.error}")


async def streamed(client: OpenComputersClient, host_id: str) -> None:
    """Start, follow the output to the end, final record."""
    job = await client.run_job(host_id, "true")
    await _follow(client, host_id, job.id)


async def as_the_tui(client: OpenComputersClient, host_id: str) -> None:
    """What FanoutScreen.run_on does for one host: start with ?wait, stream only if it still runs."""
    job = await client.run_job(host_id, "true", wait=INLINE_WAIT)
    if job.status in ("queued", "running"):
        await _follow(client, host_id, job.id)
    elif job.status != "completed":
        raise RuntimeError(f"fan-out job on {host_id} ended {job.status}: {job.error}")


async def _fan_out(
    base_url: str, token: str, host_ids: list[str], one: Callable[[OpenComputersClient, str], Awaitable[None]],
    runs: int,
) -> list[float]:  # fmt: skip
    """Seconds per fan-out to every host, after one warm-up; one client, as the TUI keeps one."""
    values = []
    limit = asyncio.Semaphore(CONCURRENCY)

    async def bounded(client: OpenComputersClient, host_id: str) -> None:
        async with limit:
            await one(client, host_id)

    async with OpenComputersClient(base_url, token, timeout=60) as client:
        for i in range(runs + 1):
            start = time.perf_counter()
            await asyncio.gather(*(bounded(client, host_id) for host_id in host_ids))
            if i:
                values.append(time.perf_counter() - start)
    return values


def ssh_fan_out(ctx: Context, runs: int) -> list[float]:
    """Seconds until 100 concurrent ``ssh host true`` over the shared connection have all exited."""
    argv = ctx.sshd.ssh("true", shared=True)
    values = []
    for i in range(runs + 1):
        start = time.perf_counter()
        procs = [subprocess.Popen(argv, stdout=subprocess.DEVNULL) for _ in range(SSH_CONCURRENT)]
        codes = [proc.wait() for proc in procs]
        if any(codes):
            raise RuntimeError(f"ssh fan-out: exit codes {sorted(set(codes))}")
        if i:
            values.append(time.perf_counter() - start)
    return values


def run(ctx: Context) -> list[Row]:
    plane = ctx.plane
    runs = 2 if ctx.smoke else 3 if ctx.quick else 5
    ssh = Samples(ssh_fan_out(ctx, runs), "s")
    rows: list[Row] = []
    for n in sizes(ctx):
        hosts = [plane.register(f"fan-{n}-{i}") for i in range(n)]
        with SimulatedAgents(plane.base_url, [key for _, key in hosts]) as sims:
            sims.wait_welcomed(timeout=max(60, n / 50))
            while plane.online_count() < n:  # the hosts of earlier cases are offline by now
                time.sleep(0.1)
            ids = [host_id for host_id, _ in hosts]
            target = f"1000 hosts ≤ {TARGET_S:g} s" if n == 1000 else ""
            ours = Samples(asyncio.run(_fan_out_once(plane.base_url, plane.token, ids, runs)), "s")
            met = ours.median <= TARGET_S if n == 1000 else None
            label = f"fan-out `true` to {n} hosts (as the TUI: one request + combined stream) vs {SSH_CONCURRENT} ssh"
            rows.append(Row(label, ours, ssh, target=target, met=met))
            ways = (("per host: start ?wait", as_the_tui), ("streamed: start + stream + record", streamed))
            for label, one in ways if n <= 1000 else ():
                ours = Samples(asyncio.run(_fan_out(plane.base_url, plane.token, ids, one, runs)), "s")
                rows.append(Row(f"fan-out `true` to {n} hosts ({label}) vs {SSH_CONCURRENT} ssh", ours, ssh))
    return rows
