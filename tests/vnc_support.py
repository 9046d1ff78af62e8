"""A real VNC server for the desktop tests: TigerVNC's ``Xvnc`` on a free display and port.

``start_xvnc(tmp_path, password=None)`` runs ``Xvnc :N -rfbport P -geometry 640x480 -localhost`` with
``-SecurityTypes None``, or ``VncAuth`` and a password file written by ``vncpasswd -f`` when a password
is given; it returns once the RFB port accepts connections. ``xvnc.run(*argv)`` runs an X client on
its display (xsetroot, xdotool …), ``xvnc.events()`` records what the X server receives (``xev -root``).
The ``xvnc`` fixture is a factory that stops every server it started. Xvnc and the X utilities come
from Debian packages that scripts/test installs; without them these tests are skipped.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

GEOMETRY = (640, 480)
TOOLS = ("Xvnc", "xsetroot", "xdotool", "xev", "vncpasswd", "xrandr")

needs_xvnc = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in TOOLS),
    reason="needs Xvnc, vncpasswd, xsetroot, xrandr, xdotool and xev (scripts/test installs them)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _free_display() -> int:
    for number in range(40, 200):
        if not Path(f"/tmp/.X{number}-lock").exists() and not Path(f"/tmp/.X11-unix/X{number}").exists():
            return number
    raise RuntimeError("no free X display number between :40 and :199")


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Xvnc:
    """One running Xvnc; ``address`` is what ``OC_VNC_ADDR`` should say."""

    def __init__(self, process: subprocess.Popen[bytes], display: int, port: int, log: Path) -> None:
        self.process = process
        self.display = display
        self.port = port
        self.log = log

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DISPLAY": f":{self.display}"}

    def run(self, *argv: str, timeout: float = 10.0) -> str:
        """Run an X client on this display; its stdout."""
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=True)
        return done.stdout

    def solid(self, colour: str) -> None:
        """Paint the whole root window one colour (``#rrggbb``)."""
        self.run("xsetroot", "-solid", colour)

    def events(self, path: Path) -> subprocess.Popen[bytes]:
        """Start ``xev -root`` recording key and button events to ``path`` (the caller stops it)."""
        out = open(path, "wb")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            ["xev", "-root", "-event", "keyboard", "-event", "button"],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not path.read_bytes():
            time.sleep(0.02)  # xev prints a blank line once it has selected its events
        time.sleep(0.1)
        return proc

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def write_password_file(path: Path, password: str) -> Path:
    """A vncpasswd file (what ``-PasswordFile`` reads), made by TigerVNC's own ``vncpasswd -f``."""
    done = subprocess.run(
        ["vncpasswd", "-f"], input=f"{password}\n".encode(), capture_output=True, check=True
    )
    path.write_bytes(done.stdout)
    path.chmod(0o600)
    return path


def start_xvnc(
    tmp_path: Path, password: str | None = None, geometry: tuple[int, int] = GEOMETRY, attempts: int = 5
) -> Xvnc:
    """Start Xvnc on a free display and port; wait until it listens."""
    width, height = geometry
    security = ["-SecurityTypes", "None"]
    if password is not None:
        passwd = write_password_file(tmp_path / f"vncpasswd-{time.monotonic_ns()}", password)
        security = ["-SecurityTypes", "VncAuth", "-PasswordFile", str(passwd)]
    last = ""
    for _ in range(attempts):
        display, port = _free_display(), free_port()
        log = tmp_path / f"xvnc-{display}.log"
        argv = ["Xvnc", f":{display}", "-rfbport", str(port), "-geometry", f"{width}x{height}", "-localhost"]
        argv += [*security, "-depth", "24", "-AlwaysShared", "-nolisten", "tcp"]
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            if _listening(port) and Path(f"/tmp/.X11-unix/X{display}").exists():
                return Xvnc(proc, display, port, log)
            time.sleep(0.05)
        last = log.read_text(errors="replace")
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    raise RuntimeError(f"Xvnc did not start:\n{last}")


@pytest.fixture
def xvnc(tmp_path: Path) -> Iterator[Callable[..., Xvnc]]:
    """Factory: ``xvnc(password=None)`` starts an Xvnc, stopped at teardown."""
    servers: list[Xvnc] = []

    def start(password: str | None = None, geometry: tuple[int, int] = GEOMETRY) -> Xvnc:
        server = start_xvnc(tmp_path, password, geometry)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
