"""``oc-agent --server URL --host-key-file FILE``: run the host agent until stopped or refused.

``oc-agent install`` installs it as a service of this machine, ``oc-agent doctor`` says what the
machine can offer (:mod:`.install`).

The host key is read from a file (``--host-key-file``, ``OC_HOST_KEY_FILE``) or the environment
(``OC_HOST_KEY``). ``--host-key`` still works but is not advertised: argv is visible to every user.

Exit status: 0 when stopped by SIGTERM/SIGINT, 2 when the server refuses the key (or the arguments
are wrong), so supervisors can tell "restart me" from "fix me".
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import warnings
from pathlib import Path

from . import platform
from .connection import Agent, Refused
from .install import doctor_main, install_main
from .vnc import VncTarget, read_password_file

EXIT_OK = 0
EXIT_REFUSED = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oc-agent",
        description="Connect this machine to an oc-server. Also: oc-agent install (as a service), "
        "oc-agent doctor (what this machine offers).",
    )
    parser.add_argument(
        "--server", default=os.environ.get("OC_SERVER_URL"), help="server root URL (env OC_SERVER_URL)"
    )
    parser.add_argument(
        "--host-key-file",
        metavar="FILE",
        default=os.environ.get("OC_HOST_KEY_FILE"),
        help="a file holding the host key hk_… from registration (env OC_HOST_KEY_FILE, or the key itself "
        "in OC_HOST_KEY); after the first connection this machine proves itself with its own key pair",
    )
    parser.add_argument("--host-key", default=os.environ.get("OC_HOST_KEY"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--state-dir",
        default=os.environ.get("OC_AGENT_STATE_DIR"),
        help="this machine's identity key and running jobs' output spools (env OC_AGENT_STATE_DIR; "
        "default: the user state dir)",
    )
    parser.add_argument(
        "--vnc",
        metavar="HOST:PORT",
        default=os.environ.get("OC_VNC_ADDR"),
        help="the VNC server the Desktop tab shows (env OC_VNC_ADDR; default 127.0.0.1:5900)",
    )
    parser.add_argument(
        "--vnc-password-file",
        metavar="FILE",
        default=os.environ.get("OC_VNC_PASSWORD_FILE"),
        help="its password: a text file or a vncpasswd file (env OC_VNC_PASSWORD_FILE, or OC_VNC_PASSWORD)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    return parser


async def _run(agent: Agent) -> int:
    """Run the agent until a stop signal (exit 0) or a refusal (exit 2)."""
    stop = asyncio.Event()
    platform.on_stop_signals(asyncio.get_running_loop(), stop.set)
    work = asyncio.create_task(agent.run_forever())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not work.done():
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        agent.close()
        logging.getLogger("oc_agent").info("stopped")
        return EXIT_OK
    try:
        work.result()
    except Refused as exc:
        agent.close()
        print(f"oc-agent: {exc}", file=sys.stderr, flush=True)
        return EXIT_REFUSED
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """``oc-agent``: parse ``argv`` (default sys.argv), run the agent; returns the exit status (0 or 2).

    ``oc-agent install …`` and ``oc-agent doctor …`` are the service installer and the machine's
    check (:mod:`.install`)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["install"]:
        return install_main(argv[1:])
    if argv[:1] == ["doctor"]:
        return doctor_main(argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="oc-agent: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    if args.host_key_file and not args.host_key:
        try:
            args.host_key = Path(args.host_key_file).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            print(f"oc-agent: cannot read the host key file: {exc}", file=sys.stderr)
            return EXIT_REFUSED
    if not args.server or not args.host_key:
        print(
            "oc-agent: --server and --host-key-file (or OC_SERVER_URL and OC_HOST_KEY_FILE / OC_HOST_KEY) "
            "are required",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    if not args.host_key.startswith("hk_"):
        print("oc-agent: a host key starts with hk_ (see the register response)", file=sys.stderr)
        return EXIT_REFUSED
    try:
        vnc_target = _vnc_target(args)
        agent = Agent(
            args.server, args.host_key, Path(args.state_dir) if args.state_dir else None, vnc_target
        )
    except (ValueError, OSError) as exc:
        print(f"oc-agent: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    _fast_child_watcher()
    return asyncio.run(_run(agent))


def _vnc_target(args: argparse.Namespace) -> VncTarget:
    """--vnc and its password: OC_VNC_PASSWORD, else the password file; ValueError/OSError if bad."""
    password = os.environ.get("OC_VNC_PASSWORD") or None
    if password is None and args.vnc_password_file:
        password = read_password_file(Path(args.vnc_password_file))
    if password is None:
        password = platform.desktop_password()  # macOS Screen Sharing's, when readable (root)
    return VncTarget.parse(args.vnc, password)


def _fast_child_watcher() -> None:
    """Learn of a job's exit through a pidfd (Linux ≥ 5.3) instead of a waiting thread per process:
    quicker, and no thread per job. Python 3.12+ does this by itself."""
    if sys.version_info >= (3, 12) or not sys.platform.startswith("linux"):
        return
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_child_watcher(asyncio.PidfdChildWatcher())
