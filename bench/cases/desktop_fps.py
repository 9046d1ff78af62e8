"""Desktop frame rate and update latency: an 800×600 Xvnc whose whole screen changes colour ``RATE``
times a second, watched by the ``oc_tui.api`` desktop client (asyncvnc) straight over TCP and through
the control plane (client → oc-server WebSocket → agent stream → Xvnc), one after the other in the
same run.

There is no OpenSSH equivalent, so the table's OpenSSH column carries the direct asyncvnc→Xvnc figure:
the ratio is then "through the control plane ÷ direct". Each change paints colour #nnnnnn for change
number n (``xsetroot -solid``, timed once it returns, when the X server has done it); the client reads
the top-left pixel after each update, so the latency is from the screen changing to the client holding
the new pixels. Every change repaints 800×600 pixels, which Xvnc sends Raw (asyncvnc reads only Raw
and ZLib; TigerVNC does not offer ZLib): 1.9 MB a frame, the worst case for a desktop.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.harness import Context, Row, Samples
from bench.system import free_port, install_missing

GEOMETRY = (800, 600)
RATE = 30  # screen changes a second
PACKAGES = {"Xvnc": "tigervnc-standalone-server", "xsetroot": "x11-xserver-utils"}


class Xvnc:
    """A throw-away Xvnc on a free display, no password, loopback only."""

    def __init__(self, workdir: Path) -> None:
        self.display = next(
            n
            for n in range(60, 300)
            if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists()
        )
        self.port = free_port()
        width, height = GEOMETRY
        self.proc = subprocess.Popen(
            ["Xvnc", f":{self.display}", "-rfbport", str(self.port), "-geometry", f"{width}x{height}",
             "-depth", "24", "-localhost", "-SecurityTypes", "None", "-AlwaysShared", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL, stderr=open(workdir / "xvnc.log", "wb"),  # noqa: SIM115
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                if Path(f"/tmp/.X11-unix/X{self.display}").exists():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("Xvnc did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Painter(threading.Thread):
    """Paints change n as colour #nnnnnn, RATE times a second, and notes when each was done."""

    def __init__(self, display: int) -> None:
        super().__init__(daemon=True)
        self.env = os.environ | {"DISPLAY": f":{display}"}
        self.painted: dict[int, float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        n, tick = 0, time.monotonic()
        while not self.stopping.is_set():
            n = n % 0xFFFFFF + 1
            subprocess.run(["xsetroot", "-solid", f"#{n:06x}"], env=self.env, check=False)
            self.painted[n] = time.monotonic()
            tick += 1 / RATE
            time.sleep(max(0.0, tick - time.monotonic()))


async def _watch(session, painter: Painter, seconds: float) -> tuple[list[float], list[float]]:
    """Per-second frame counts and per-change latencies (ms) while watching ``session``."""
    latencies: list[float] = []
    seen: set[int] = set()
    start = time.monotonic()
    first_frames = session.stats.frames
    per_second: list[float] = []
    mark, mark_frames = start, first_frames
    while (now := time.monotonic()) - start < seconds:
        try:
            await session.next_update(timeout=max(0.05, seconds - (now - start)))
        except TimeoutError:
            break
        got = time.monotonic()
        r, g, b = session.framebuffer[0, 0].tolist()
        n = (r << 16) | (g << 8) | b
        if n not in seen and n in painter.painted:
            seen.add(n)
            latencies.append((got - painter.painted[n]) * 1000)
        if got - mark >= 1.0:
            per_second.append((session.stats.frames - mark_frames) / (got - mark))
            mark, mark_frames = got, session.stats.frames
    if not per_second:
        per_second.append((session.stats.frames - first_frames) / max(1e-6, time.monotonic() - start))
    return per_second, latencies


async def _measure(ctx: Context, xvnc: Xvnc, painter: Painter, seconds: float) -> dict[str, tuple]:
    from oc_tui.api import OpenComputersClient
    from oc_tui.api.desktop import open_direct

    plane = ctx.plane
    host_id, key = plane.register("bench-desktop")
    agent = subprocess.Popen(
        [sys.executable, "-m", "embedded_server.agent", "--server", plane.base_url],
        env=os.environ | {"OC_HOST_KEY": key, "OC_VNC_ADDR": f"127.0.0.1:{xvnc.port}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    plane.agents.append(agent)  # the plane stops it
    await asyncio.to_thread(plane.wait_status, host_id, "online")
    results: dict[str, tuple] = {}
    direct = await open_direct("127.0.0.1", xvnc.port)
    try:
        await direct.next_update(timeout=10)
        results["direct"] = await _watch(direct, painter, seconds)
    finally:
        await direct.close()
    async with OpenComputersClient(plane.base_url, plane.token) as client:
        session = await client.open_desktop(host_id)
        try:
            await session.next_update(timeout=10)
            results["plane"] = await _watch(session, painter, seconds)
        finally:
            await session.close()
    return results


def run(ctx: Context) -> list[Row]:
    install_missing(PACKAGES)
    seconds = 2.0 if ctx.smoke else 4.0 if ctx.quick else 8.0
    workdir = Path(tempfile.mkdtemp(prefix="oc-bench-desktop-"))
    xvnc = Xvnc(workdir)
    painter = Painter(xvnc.display)
    painter.start()
    try:
        results = asyncio.run(_measure(ctx, xvnc, painter, seconds))
    finally:
        painter.stopping.set()
        painter.join(5)
        xvnc.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    (fps_plane, lat_plane), (fps_direct, lat_direct) = results["plane"], results["direct"]
    fps_ours, fps_base = Samples(fps_plane, "fps"), Samples(fps_direct, "fps")
    lat_ours, lat_base = Samples(lat_plane, "ms"), Samples(lat_direct, "ms")
    ok_fps = bool(fps_plane and fps_direct) and statistics.median(fps_plane) >= 0.8 * statistics.median(
        fps_direct
    )
    ok_lat = (
        bool(lat_plane and lat_direct) and statistics.median(lat_plane) <= statistics.median(lat_direct) + 50
    )
    note = (
        f"OpenSSH column: asyncvnc straight to Xvnc; screen repainted {RATE}×/s (800×600 Raw, 1.9 MB a frame)"
    )
    return [
        Row(f"desktop 800×600 @{RATE} changes/s: frames/s vs direct", fps_ours, fps_base, lower_is_better=False,
            target="≥ 0.8× direct", met=ok_fps, note=note),
        Row("desktop update latency vs direct", lat_ours, lat_base, target="≤ direct + 50 ms", met=ok_lat),
    ]  # fmt: skip
