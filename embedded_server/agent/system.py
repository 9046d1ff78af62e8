"""The agent's own machine: its live facts (``sys.info``), the hello it introduces itself with, the
environment work starts from and where the agent keeps its state."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path
from typing import Any

from .. import __version__, protocol
from .capabilities import Capability


def _meminfo() -> dict[str, int]:
    """``/proc/meminfo`` in bytes (Linux); empty elsewhere."""
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return {}
    values = {}
    for line in lines:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name] = int(parts[0]) * 1024
    return values


def _uptime() -> float | None:
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def sys_info(_: protocol.SysInfo) -> dict[str, Any]:
    """``sys.info``: hostname, OS, CPU count, load, memory (bytes) and uptime (seconds) of this machine."""
    mem = _meminfo()
    mem_total = mem.get("MemTotal")
    if mem_total is None and hasattr(os, "sysconf"):
        try:
            mem_total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            mem_total = None
    try:
        load_avg: list[float] | None = list(os.getloadavg())
    except (AttributeError, OSError):
        load_avg = None
    return {
        "hostname": socket.gethostname(),
        "os": platform.system(),
        "os_release": platform.release(),
        "arch": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_avg": load_avg,
        "mem_total": mem_total,
        "mem_available": mem.get("MemAvailable"),
        "uptime_s": _uptime(),
        "agent_version": __version__,
        "python": platform.python_version(),
    }


def capability() -> Capability:
    """The ``sys.info`` method (run in a worker thread: it reads /proc)."""
    return Capability("system", {protocol.SysInfo: sys_info})


def work_env() -> dict[str, str]:
    """The environment jobs and shells start from: the agent's own, minus its ``OC_*`` settings, so the
    host key and the VNC password stay with the agent and never reach a job's environment or output."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OC_")}


def default_state_dir() -> Path:
    """``$OC_AGENT_STATE_DIR``, else the per-user state dir of oc-tui + ``/agent``: the machine's identity
    key (which must outlive cache cleaning), job output spools, the upload journal."""
    env = os.environ.get("OC_AGENT_STATE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_state_dir

    return Path(user_state_dir("oc-tui")) / "agent"


def hello(capabilities: list[str]) -> dict[str, Any]:
    """The facts the agent introduces itself with (protocol ``hello``); ``capabilities``: the methods it
    serves (:meth:`.capabilities.Registry.methods`)."""
    return {
        "agent_version": __version__,
        "hostname": socket.gethostname(),
        "os": platform.system(),
        "os_release": platform.release(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "pid": os.getpid(),
        "capabilities": capabilities,
    }
