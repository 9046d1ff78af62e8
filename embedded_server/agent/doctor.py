"""``oc-agent doctor``: what this machine can offer its oc-server (terminal, desktop, which shells, a
service manager, a state dir) and, for what it cannot, why and how to fix it.

Every check asks the machine itself (opens a PTY, connects to the VNC server, looks the shells up), as
the agent would when serving the request; nothing is changed.
"""

from __future__ import annotations

import os
import platform as stdlib_platform
import shutil
import sys
import tempfile
from pathlib import Path

from ..protocol import AgentError
from . import platform
from .platform import Offer
from .vnc import VncTarget, connect

SERVICE_TOOLS = {"win32": "schtasks", "darwin": "launchctl"}  # anything else: systemd


async def desktop_offer(target: VncTarget) -> Offer:
    """Whether the VNC server at ``target`` answers and accepts the agent (version, security type and
    password, as for a desktop session: :func:`.vnc.connect`), or why not."""
    try:
        _reader, writer = await connect(target)
    except AgentError as exc:
        return Offer("desktop", False, exc.message)
    writer.close()
    password = "with its password" if target.password is not None else "without a password"
    return Offer("desktop", True, f"VNC server at {target.address}, {password}")


def shell_offers() -> list[Offer]:
    """For each job ``shell`` (docs/api.md): what runs a command under it here, or why it cannot."""
    offers = []
    for shell in platform.SHELLS:
        try:
            launch = platform.job_launch("exit", [], shell)
        except platform.NoSuchShell as exc:
            offers.append(Offer(f"shell {shell}", False, str(exc)))
            continue
        program = os.environ.get("ComSpec", "cmd.exe") if launch.shell else str(launch.args[0])
        offers.append(Offer(f"shell {shell}", True, program))
    return offers


SYSTEMD_RUNNING = Path("/run/systemd/system")
"""Exists when systemd is the running init (the test of ``sd_booted(3)``): ``systemctl`` alone can be
installed in a container or a chroot where no systemd runs."""


def service_offer(systemd_running: Path = SYSTEMD_RUNNING) -> Offer:
    """Whether ``oc-agent install`` can install a service here: its service manager's tool is found and,
    on Linux, systemd is the running init (``systemd_running`` exists)."""
    tool = SERVICE_TOOLS.get(sys.platform, "systemctl")
    found = shutil.which(tool)
    if not found:
        return Offer("service", False, f"{tool} not found: start oc-agent from your own init system")
    if tool == "systemctl" and not systemd_running.is_dir():
        return Offer(
            "service",
            False,
            f"{tool} is installed but systemd is not running here (no {systemd_running}): start oc-agent "
            "from this machine's own init system or container entry point",
        )
    if tool == "systemctl":
        return Offer(
            "service",
            True,
            f"{tool} ({found}): oc-agent install (a user service runs while you are logged in; "
            "`loginctl enable-linger` keeps it running, from boot; --system installs it for the machine)",
        )
    return Offer("service", True, f"{tool} ({found}): oc-agent install")


def state_offer(state_dir: Path) -> Offer:
    """Whether the state dir can be written (the identity key, spools and journal live there)."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=state_dir, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Offer("state dir", False, f"{state_dir}: {exc.strerror or exc}")
    return Offer("state dir", True, str(state_dir))


async def offers(target: VncTarget, state_dir: Path) -> list[Offer]:
    """Everything :func:`report` lists, in its order."""
    user = platform.current_user()
    return [
        platform.terminal_offer(user),
        await desktop_offer(target),
        *shell_offers(),
        service_offer(),
        state_offer(state_dir),
    ]


def report(found: list[Offer]) -> str:
    """The doctor's text: a header with the machine, then one line per offer (``yes``/``no``)."""
    user = platform.current_user()
    lines = [
        f"oc-agent doctor: {stdlib_platform.system()} {stdlib_platform.release()} {stdlib_platform.machine()}, "
        f"Python {stdlib_platform.python_version()}, user {user.name}"
    ]
    width = max(len(offer.name) for offer in found)
    for offer in found:
        lines.append(f"  {'yes' if offer.ok else 'no ':3}  {offer.name:<{width}}  {offer.detail}")
    return "\n".join(lines)
