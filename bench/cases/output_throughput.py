"""Output throughput: a job writing N bytes of zeros, received in full by the client through the job's
stream (the ``oc_tui.api`` client, which asks for its binary frames; decoding every event), against
``ssh host 'head -c N /dev/zero' > /dev/null``."""

from __future__ import annotations

import asyncio
import subprocess
import time

from bench.harness import Context, CpuMeter, Row, Samples, cpu_note
from oc_tui.api import OpenComputersClient, job_output_bytes


def size(ctx: Context) -> int:
    return (1 << 20) if ctx.smoke else (64 << 20) if ctx.quick else (1 << 30)


async def _stream_job(plane, host_id: str, n: int) -> float:
    async with OpenComputersClient(plane.base_url, plane.token, stream_read_timeout=120) as client:
        start = time.perf_counter()
        job = await client.run_job(host_id, f"head -c {n} /dev/zero", timeout=600)
        received = 0
        async for event in client.job_events(host_id, job.id, reconnect=False):
            if event.type in ("stdout", "stderr"):
                received += len(job_output_bytes(event))
        elapsed = time.perf_counter() - start
    if received != n:
        raise RuntimeError(f"received {received} of {n} bytes")
    return n / elapsed / 1e6


def run(ctx: Context) -> list[Row]:
    plane, sshd = ctx.plane, ctx.sshd
    host_id = plane.local_host()
    n = size(ctx)
    runs = 2 if ctx.smoke else 3
    meters = [CpuMeter(plane, "job-output") for _ in range(runs)]
    mine = []
    for meter in meters:
        with meter:
            mine.append(asyncio.run(_stream_job(plane, host_id, n)))
    ssh = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(sshd.ssh(f"head -c {n} /dev/zero"), check=True, stdout=subprocess.DEVNULL)
        ssh.append(n / (time.perf_counter() - start) / 1e6)
    ours_s, ssh_s = Samples(mine, "MB/s"), Samples(ssh, "MB/s")
    label = f"{n >> 20} MiB" if n < (1 << 30) else "1 GiB"
    return [
        Row(f"job output {label} through the stream vs ssh", ours_s, ssh_s, lower_is_better=False,
            target="≥ 1.0× ssh", met=ours_s.median >= ssh_s.median, note=cpu_note(meters, n / (1 << 30), "GiB")),
    ]  # fmt: skip
