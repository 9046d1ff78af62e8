"""``oc-agent install`` and ``oc-agent doctor``: the agent as a service of this machine, and what the
machine can offer (see :mod:`.platform.service` and :mod:`.doctor`).

``install`` copies the host key into the state dir (0600, so the service does not depend on where the
key was downloaded), writes the service definition (systemd unit, launchd plist or Task Scheduler task)
and has the service manager start it, then prints how to remove it. ``--dry-run`` changes nothing: it
prints all three definitions for this machine's settings and what it would do here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from . import doctor, platform
from .dial import agent_url
from .platform import service
from .vnc import VncTarget

KEY_FILE = "host-key"  # the key's copy in the state dir
EXIT_OK, EXIT_FAILED = 0, 1


def system_state_dir(target: str) -> str:
    """A machine-wide service's state dir on ``target`` (``sys.platform``'s value)."""
    if target == "win32":
        return os.path.join(os.environ.get("ProgramData", r"C:\ProgramData"), "oc-agent")
    if target == "darwin":
        return "/Library/Application Support/oc-agent"
    return "/var/lib/oc-agent"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oc-agent install",
        description="Install oc-agent as a service of this machine (systemd, launchd or Task Scheduler).",
    )
    parser.add_argument("--server", default=os.environ.get("OC_SERVER_URL"), help="server root URL")
    parser.add_argument(
        "--host-key-file", metavar="FILE", default=os.environ.get("OC_HOST_KEY_FILE"), help="the hk_… key"
    )
    parser.add_argument(
        "--state-dir", help="the service's state dir (default: the agent's, or the machine's)"
    )
    parser.add_argument("--vnc", metavar="HOST:PORT", help="passed on to the agent")
    parser.add_argument("--vnc-password-file", metavar="FILE", help="passed on to the agent")
    parser.add_argument(
        "--system", action="store_true", help="a machine-wide service (root/SYSTEM, at boot), not the user's"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the definitions; change nothing")
    return parser


def install_main(argv: list[str]) -> int:
    """``oc-agent install``; returns the exit status (0, 1 when a step failed, 2 for bad arguments)."""
    args = _parser().parse_args(argv)
    if not args.server or not args.host_key_file:
        print("oc-agent install: --server and --host-key-file are required", file=sys.stderr)
        return 2
    try:
        agent_url(args.server)
        key = Path(args.host_key_file).read_text().strip()
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        print(f"oc-agent install: {exc}", file=sys.stderr)
        return 2
    if not key.startswith("hk_"):
        print("oc-agent install: a host key starts with hk_ (see the register response)", file=sys.stderr)
        return 2
    state = args.state_dir or (system_state_dir(sys.platform) if args.system else str(platform.state_dir()))
    state = os.path.abspath(state)
    key_file = os.path.join(state, KEY_FILE)
    argv_agent = [sys.executable, "-m", "embedded_server.agent", "--server", args.server]
    argv_agent += ["--host-key-file", key_file, "--state-dir", state]
    if args.vnc:
        argv_agent += ["--vnc", args.vnc]
    if args.vnc_password_file:
        argv_agent += ["--vnc-password-file", os.path.abspath(args.vnc_password_file)]
    spec = service.ServiceSpec(
        argv_agent, state, system=args.system, home=os.path.expanduser("~"), uid=_uid()
    )
    try:
        here = service.plan(spec, sys.platform)
    except ValueError as exc:
        print(f"oc-agent install: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.dry_run:
        print(dry_run(spec, here, key_file))
        return EXIT_OK
    return _install(here, key, key_file)


def dry_run(spec: service.ServiceSpec, here: service.Plan, key_file: str) -> str:
    """The three definitions for ``spec``, then what installing would do on this machine."""
    blocks = [
        f"==> systemd unit ({service.systemd_path(spec)})\n{service.systemd_unit(spec)}",
        f"==> launchd plist ({service.launchd_path(spec)})\n{service.launchd_plist(spec)}",
        f"==> Task Scheduler task ({service.task_path(spec)})\n{service.task_xml(spec)}",
        f"==> on this machine ({here.kind}), oc-agent install would:\n"
        f"  copy the host key to {key_file} (0600)\n"
        f"  write {here.path}\n" + "".join(f"  run: {_shown(command)}\n" for command in here.commands),
        "==> and to remove it:\n" + "".join(f"  {_shown(command)}\n" for command in here.remove),
    ]
    return "\n".join(blocks).rstrip("\n")


def _install(here: service.Plan, key: str, key_file: str) -> int:
    state = os.path.dirname(key_file)
    try:
        os.makedirs(state, exist_ok=True)
        platform.secure_dir(state)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        service.write_definition(here)
    except OSError as exc:
        print(f"oc-agent install: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {key_file} and {here.path}")
    for command in here.commands:
        if shutil.which(command[0]) is None:
            why = f"{command[0]} not found; run it yourself: {_shown(command)}"
        else:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode == 0:
                print(f"ran: {_shown(command)}")
                continue
            why = f"{_shown(command)} failed: {(done.stderr or done.stdout).strip()}"
        print(f"oc-agent install: {why}", file=sys.stderr)
        print(f"the {here.kind} service is not running. To remove what was written:", file=sys.stderr)
        print(f"  rm {_shown([key_file, here.path])}", file=sys.stderr)
        return EXIT_FAILED
    print(f"oc-agent runs as a {here.kind} service. To remove it:")
    for command in here.remove:
        print(f"  {_shown(command)}")
    return EXIT_OK


def doctor_main(argv: list[str]) -> int:
    """``oc-agent doctor [--vnc HOST:PORT] [--state-dir DIR]``: print what this machine offers; exit 0."""
    parser = argparse.ArgumentParser(prog="oc-agent doctor", description="What this machine can offer.")
    parser.add_argument("--vnc", metavar="HOST:PORT", default=os.environ.get("OC_VNC_ADDR"))
    parser.add_argument("--state-dir", default=None)
    args = parser.parse_args(argv)
    try:
        target = VncTarget.parse(args.vnc, platform.desktop_password() or os.environ.get("OC_VNC_PASSWORD"))
    except ValueError as exc:
        print(f"oc-agent doctor: {exc}", file=sys.stderr)
        return 2
    state = Path(args.state_dir) if args.state_dir else platform.state_dir()
    print(doctor.report(asyncio.run(doctor.offers(target, state))))
    return EXIT_OK


def _shown(command: list[str]) -> str:
    """A command as the user would type it here."""
    return subprocess.list2cmdline(command) if sys.platform == "win32" else shlex.join(command)


def _uid() -> int:
    if sys.platform == "win32":
        return 0
    return os.getuid()
