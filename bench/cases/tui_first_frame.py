"""Time from starting ``oc-tui`` to the first frame with hosts drawn, as a person sees it.

oc-tui runs in a detached tmux session against the benchmark control plane; the clock stops when
``tmux capture-pane`` first shows a registered host's name. That includes Python start-up, imports,
the first render and, on the very first start, the first API call (later starts draw the fleet from
the host list the previous one kept in the data dir, and then ask the control plane). The warm-up
start fills that cache, the OS file cache and the ``.pyc`` files, as a person's earlier session and
the package's installation would.

Beside the wall clock, the note gives oc-tui's own CPU time (user + system, from ``/proc``) up to the
first frame: on a shared machine the wall clock includes waiting for a core, the CPU time does not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench.harness import Context, Row, Samples

SESSION = f"oc-bench-first-frame-{os.getpid()}"  # concurrent runs must not share it
HOST_NAME = "bench-first-frame"


def _tmux(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", *args], capture_output=True, text=True)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(plane, data_dir: str, timeout: float = 60) -> tuple[float, float]:
    """(wall seconds, CPU seconds of oc-tui) from start to the first frame showing the host."""
    _tmux("kill-session", "-t", SESSION)
    start = time.perf_counter()
    _tmux(
        "new-session", "-d", "-s", SESSION, "-x", "120", "-y", "40",
        "-e", f"OC_TUI_BASE_URL={plane.base_url}", "-e", f"OC_TUI_TOKEN={plane.token}",
        "-e", f"OC_TUI_DATA_DIR={data_dir}",
        # .pyc files as an installed oc-tui has them, even where the environment says not to write any
        f"exec env -u PYTHONDONTWRITEBYTECODE {sys.executable} -m oc_tui.cli",
    )  # fmt: skip
    try:
        pid = int(_tmux("display-message", "-p", "-t", SESSION, "#{pane_pid}").stdout.strip() or 0)
        while time.perf_counter() - start < timeout:
            if HOST_NAME in _tmux("capture-pane", "-p", "-t", SESSION).stdout:
                return time.perf_counter() - start, _cpu_seconds(pid)
            time.sleep(0.005)
        raise TimeoutError("oc-tui showed no host")
    finally:
        _tmux("kill-session", "-t", SESSION)


def run(ctx: Context) -> list[Row]:
    ctx.plane.register(HOST_NAME)
    data_dir = tempfile.mkdtemp(prefix="oc-bench-first-frame-")
    try:
        one_run(ctx.plane, data_dir)  # warm-up: the OS file cache, .pyc files, the last host list
        runs = 3 if ctx.quick else 7
        results = [one_run(ctx.plane, data_dir) for _ in range(runs)]
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    samples = Samples([wall for wall, _ in results], "s")
    cpu = Samples([cpu for _, cpu in results], "s")
    return [
        Row(
            "oc-tui start to first frame with hosts",
            samples,
            target="≤ 0.6 s",
            met=samples.median <= 0.6,
            note=f"oc-tui's own CPU until then: {cpu.describe()}; load average {os.getloadavg()[0]:.1f}",
        )
    ]
