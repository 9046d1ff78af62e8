"""Keystroke echo: one byte typed into a terminal session until it comes back, against ``ssh -tt``.

Both sides run ``stty raw -echo; cat`` on a PTY, so every byte is echoed by a process (as a shell's
line editor does), not by the kernel's line discipline. Ours: the ``oc_tui.api`` client's
:class:`TerminalSession` → control plane → agent → PTY → ``cat`` → and back the same way. Theirs: ``ssh
-tt`` with its stdin and stdout as pipes, on a connection of its own (the target's baseline: what
``ssh -tt host`` does) and through the ControlMaster connection (one more process on the path).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import time

from bench.harness import Context, Row, Samples
from oc_tui.api import OpenComputersClient

COMMAND = "stty raw -echo; printf 'R%sY\\n' EAD; exec cat"
READY = b"READY"
KEYS = b"abcdefghijklmnopqrstuvwxyz"
WARMUP = 20


def samples(ctx: Context) -> int:
    return 50 if ctx.smoke else 300 if ctx.quick else 1000


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else values[0]


async def _ours(plane, host_id: str, n: int) -> list[float]:
    async with OpenComputersClient(plane.base_url, plane.token) as client:
        async with await client.open_terminal(host_id, 80, 24) as term:
            await term.send(COMMAND.encode() + b"\r")
            seen = b""
            async with asyncio.timeout(20):
                async for chunk in term:
                    seen += chunk
                    if READY in seen:
                        break
            chunks = aiter(term)
            with contextlib.suppress(TimeoutError):  # drop the rest of the start-up output
                while True:
                    await asyncio.wait_for(anext(chunks), 0.2)
            values = []
            for i in range(n + WARMUP):
                key = KEYS[i % len(KEYS) : i % len(KEYS) + 1]
                start = time.perf_counter()
                await term.send(key)
                got = b""
                while key not in got:
                    got = await anext(chunks)
                if i >= WARMUP:
                    values.append((time.perf_counter() - start) * 1000)
            return values


def _ssh(sshd, n: int, shared: bool) -> list[float]:
    argv = sshd.ssh(COMMAND, shared=shared, tty=True)
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    assert proc.stdin is not None and proc.stdout is not None
    out, inp = proc.stdout.fileno(), proc.stdin.fileno()
    try:
        seen = b""
        deadline = time.monotonic() + 20
        while READY not in seen:
            if time.monotonic() > deadline:
                raise RuntimeError(f"ssh -tt did not start cat: {seen!r}")
            seen += os.read(out, 4096)
        time.sleep(0.2)
        os.set_blocking(out, False)
        try:
            while os.read(out, 65536):  # drop what is left of the start-up output
                pass
        except BlockingIOError:
            pass
        os.set_blocking(out, True)
        values = []
        for i in range(n + WARMUP):
            key = KEYS[i % len(KEYS) : i % len(KEYS) + 1]
            start = time.perf_counter()
            os.write(inp, key)
            got = b""
            while key not in got:
                got = os.read(out, 4096)
            if i >= WARMUP:
                values.append((time.perf_counter() - start) * 1000)
        return values
    finally:
        proc.kill()
        proc.wait()


def run(ctx: Context) -> list[Row]:
    plane, sshd = ctx.plane, ctx.sshd
    host_id = plane.local_host()
    n = samples(ctx)
    ours = asyncio.run(_ours(plane, host_id, n))
    ssh = _ssh(sshd, n, shared=False)
    muxed = _ssh(sshd, n, shared=True)
    mine, theirs = Samples(ours, "ms"), Samples(ssh, "ms")
    return [
        Row(f"keystroke echo, median of {n} vs ssh -tt", mine, theirs, target="≤ 1.5× ssh -tt",
            met=mine.median <= 1.5 * theirs.median),
        Row(f"keystroke echo, p99 of {n} vs ssh -tt", Samples([p99(ours)], "ms"), Samples([p99(ssh)], "ms"),
            target="≤ 1.5× ssh -tt", met=p99(ours) <= 1.5 * p99(ssh)),
        Row("keystroke echo vs ssh -tt (shared conn)", mine, Samples(muxed, "ms")),
    ]  # fmt: skip
