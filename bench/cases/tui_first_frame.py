"""Time from starting ``oc-tui`` to the first frame with hosts drawn, as a person sees it.

oc-tui runs in a detached tmux session against the benchmark control plane; the clock stops when
``tmux capture-pane`` first shows a registered host's name. That includes Python start-up, imports,
the first API call and the first render.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.harness import Context, Row, Samples

SESSION = f"oc-bench-first-frame-{os.getpid()}"  # concurrent runs must not share it
HOST_NAME = "bench-first-frame"


def _tmux(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", *args], capture_output=True, text=True)


def one_run(plane, timeout: float = 20) -> float:
    _tmux("kill-session", "-t", SESSION)
    start = time.perf_counter()
    _tmux(
        "new-session", "-d", "-s", SESSION, "-x", "120", "-y", "40",
        "-e", f"OC_TUI_BASE_URL={plane.base_url}", "-e", f"OC_TUI_TOKEN={plane.token}",
        f"{sys.executable} -m oc_tui.cli",
    )  # fmt: skip
    try:
        while time.perf_counter() - start < timeout:
            if HOST_NAME in _tmux("capture-pane", "-p", "-t", SESSION).stdout:
                return time.perf_counter() - start
            time.sleep(0.005)
        raise TimeoutError("oc-tui showed no host")
    finally:
        _tmux("kill-session", "-t", SESSION)


def run(ctx: Context) -> list[Row]:
    ctx.plane.register(HOST_NAME)
    one_run(ctx.plane)  # warm-up: the OS file cache, .pyc files
    runs = 3 if ctx.quick else 7
    values = [one_run(ctx.plane) for _ in range(runs)]
    samples = Samples(values, "s")
    return [
        Row("oc-tui start to first frame with hosts", samples, target="≤ 0.6 s", met=samples.median <= 0.6)
    ]
