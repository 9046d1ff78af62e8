"""The agent's own machine: its live facts (``sys.info``), the hello it introduces itself with, the
environment work starts from and where the agent keeps its state."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import psutil

from .. import __version__, protocol
from . import platform as host_platform
from .capabilities import Capability


def sys_info(_: protocol.SysInfo) -> dict[str, Any]:
    """``sys.info``: hostname, OS, CPU count, load, memory (bytes) and uptime (seconds) of this machine,
    as psutil reads them on each OS (``/proc`` on Linux, ``sysctl`` on macOS, the Win32 API on Windows;
    Windows has no load average: psutil's emulation of it, zeros for its first 5 seconds)."""
    try:
        memory = psutil.virtual_memory()
        mem_total: int | None = memory.total
        mem_available: int | None = memory.available
    except (OSError, RuntimeError):
        mem_total = mem_available = None
    try:
        load_avg: list[float] | None = list(psutil.getloadavg())
    except (AttributeError, OSError, RuntimeError):
        load_avg = None
    try:
        uptime: float | None = max(0.0, time.time() - psutil.boot_time())
    except (OSError, RuntimeError):
        uptime = None
    return {
        "hostname": socket.gethostname(),
        "os": platform.system(),
        "os_release": platform.release(),
        "arch": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_avg": load_avg,
        "mem_total": mem_total,
        "mem_available": mem_available,
        "uptime_s": uptime,
        "agent_version": __version__,
        "python": platform.python_version(),
    }


def capability() -> Capability:
    """The ``sys.info`` method (run in a worker thread: it reads /proc or asks the system)."""
    return Capability("system", {protocol.SysInfo: sys_info})


def work_env() -> dict[str, str]:
    """The environment jobs and shells start from: the agent's own, minus its ``OC_*`` settings, so the
    host key and the VNC password stay with the agent and never reach a job's environment or output."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OC_")}


def default_state_dir() -> Path:
    """Where the agent keeps its state (:func:`.platform.state_dir`): ``$OC_AGENT_STATE_DIR``, else the
    per-user state dir of oc-tui + ``/agent``: the machine's identity key (which must outlive cache
    cleaning), job output spools, the upload journal."""
    return host_platform.state_dir()


CARRIED_OVER = ("identity.key", "control-plane")
"""What a host's own state dir takes from the shared one an earlier version used: the identity the
control plane pinned, and the control plane's identity."""


def host_state_dir(host_key: str) -> Path:
    """The state dir of the agent of the host ``host_key`` names, when none is given: ``$OC_AGENT_STATE_DIR``
    as it is, else :func:`default_state_dir` + ``/host-`` and 16 hex digits of the key's SHA-256. Two
    agents of two hosts on one machine (oc-tui's own and one started by hand or as a service) then never
    share job supervisors, spools or identity: an agent adopts every job of its state dir, and would end
    the other's. The first time, the identity and control-plane files an earlier version kept in the
    shared dir are copied in, so an enrolled host keeps the identity its control plane pinned.

    Raises:
        OSError: the dir cannot be made.
    """
    if os.environ.get("OC_AGENT_STATE_DIR"):
        return default_state_dir()
    shared = default_state_dir()
    own = shared / f"host-{hashlib.sha256(host_key.encode()).hexdigest()[:16]}"
    if not own.is_dir():
        shared.mkdir(mode=0o700, parents=True, exist_ok=True)  # as the agent's own state dir always was
        own.mkdir(mode=0o700, exist_ok=True)
        for name in CARRIED_OVER:
            if (shared / name).is_file() and not (own / name).exists():
                shutil.copy2(shared / name, own / name)  # keeps its 0600
    return own


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
