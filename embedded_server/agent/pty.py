"""The agent's terminals: ``pty.open`` runs the user's login shell on a new PTY and serves it on a stream.

The shell is the leader of a session of its own with the PTY as its controlling terminal, so job
control, ctrl+c and SIGWINCH work as they do over ssh. The stream's framing (docs/protocol.md): binary
frames carry the PTY's bytes both ways; text frames are JSON, ``{"type": "resize", "cols", "rows"}`` from
the client and, once the shell has exited, ``{"type": "exit", "exit_code", "signal"}`` from us before we
close with 1000. When the other side goes away first, the shell is hung up: SIGHUP to its process group
and the terminal's foreground group, SIGKILL 2 s later if they are still there.

Output is read only while the previous frame has been handed to the WebSocket: a slow client slows the
reader, the PTY's buffer fills and the program writing (``cat`` of a huge file) blocks, as it would on a
slow serial line, instead of the agent buffering without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import pwd
import signal
import struct
import subprocess
import termios
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from .. import protocol
from ..protocol import AgentError
from .capabilities import Capability, StreamReply
from .system import work_env

log = logging.getLogger("oc_agent.pty")

FRAME_MAX = 64 * 1024  # bytes of output gathered into one frame at most
KILL_GRACE = 2.0  # seconds between SIGHUP and SIGKILL when the client goes away
DRAIN_GRACE = 0.25  # seconds to collect what the shell wrote just before it exited
MAX_CELLS = protocol.MAX_CELLS  # columns or rows


# --- the shell ---------------------------------------------------------------------------------------


def login_shell() -> tuple[str, str]:
    """The user's login shell and home: ``$SHELL`` when it names an executable, else the password
    entry's shell, else ``/bin/sh``."""
    try:
        entry: pwd.struct_passwd | None = pwd.getpwuid(os.getuid())
    except KeyError:
        entry = None
    home = os.environ.get("HOME") or (entry.pw_dir if entry else "/")
    for shell in (os.environ.get("SHELL"), entry.pw_shell if entry else None, "/bin/sh"):
        if shell and os.path.isabs(shell) and os.access(shell, os.X_OK):
            return shell, home
    return "/bin/sh", home


def shell_env(shell: str, home: str) -> dict[str, str]:
    """The agent's environment minus its own settings (the host key stays with the agent), plus what a
    terminal session needs."""
    env = work_env()
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    env.update(HOME=home, SHELL=shell, USER=user, LOGNAME=user, TERM="xterm-256color", COLORTERM="truecolor")
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    if not any(env.get(k) for k in ("LC_ALL", "LC_CTYPE", "LANG")):
        env["LANG"] = "C.UTF-8"  # the client renders UTF-8; a POSIX locale would garble non-ASCII
    return env


def _take_terminal() -> None:
    """Runs in the child after ``setsid()``: make the PTY (already on fd 0) its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def set_size(fd: int, cols: int, rows: int) -> None:
    """TIOCSWINSZ; the kernel sends SIGWINCH to the foreground process group when the size changes."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _cells(value: Any, default: int, name: str) -> int:
    """A resize's ``cols`` or ``rows``: ``default`` for null, else an integer 1 … MAX_CELLS."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CELLS:
        raise AgentError("VALIDATION_ERROR", f"{name} must be an integer from 1 to {MAX_CELLS}")
    return value


def _kill_groups(pgids: set[int], sig: int) -> None:
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


class _Exit(asyncio.SubprocessProtocol):
    def __init__(self) -> None:
        self.exited: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


# --- one terminal ------------------------------------------------------------------------------------


class PtySession:
    """A login shell on a PTY, and the pumps between its master side and one stream."""

    def __init__(self, transport: asyncio.SubprocessTransport, protocol: _Exit, master: int, shell: str):
        self.transport = transport
        self.exited = protocol.exited
        self.master = master
        self.shell = shell
        self.pid = transport.get_pid()
        self._groups = {self.pid}  # process groups to hang up: the shell's, and the foreground job's

    @classmethod
    async def start(cls, cols: int, rows: int) -> PtySession:
        """The login shell on a new PTY of ``cols`` x ``rows`` cells; AgentError PTY_FAILED if it cannot start."""
        shell, home = login_shell()
        master, slave = os.openpty()
        try:
            set_size(slave, cols, rows)
            os.set_blocking(master, False)
            transport, protocol = await asyncio.get_running_loop().subprocess_exec(
                _Exit,
                shell,
                "-l",
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=home if os.path.isdir(home) else "/",
                env=shell_env(shell, home),
                start_new_session=True,
                preexec_fn=_take_terminal,
            )
        except (OSError, subprocess.SubprocessError) as exc:  # the latter: TIOCSCTTY failed in the child
            os.close(master)
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise AgentError("PTY_FAILED", f"could not start {shell}: {why}") from None
        finally:
            os.close(slave)  # the shell has its own copies; ours would keep the master from seeing EOF
        log.info("terminal: %s -l as pid %d (%dx%d)", shell, transport.get_pid(), cols, rows)
        return cls(transport, protocol, master, shell)

    # --- serving the stream --------------------------------------------------------------------------

    async def serve(self, ws: ClientConnection) -> None:
        """Pump until the shell exits (then report it and close 1000) or the stream ends (hang up)."""
        output = asyncio.create_task(self._pump_output(ws))
        inputs = asyncio.create_task(self._pump_input(ws))
        try:
            waiting: set[asyncio.Future[Any]] = {self.exited, inputs, output}
            while True:
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if self.exited in done:
                    await self._report_exit(ws, output)
                    return
                if inputs in done or (output in done and output.exception() is not None):
                    return  # the client closed the stream, or it was lost: hang up (finally)
                waiting.discard(output)  # the PTY reached EOF before the exit was noticed: wait for it
        finally:
            for task in (output, inputs):
                task.cancel()
            await asyncio.gather(output, inputs, return_exceptions=True)  # off the PTY before it closes
            await self._hang_up()

    async def _report_exit(self, ws: ClientConnection, output: asyncio.Task[None]) -> None:
        with contextlib.suppress(TimeoutError, ConnectionClosed):
            await asyncio.wait_for(asyncio.shield(output), DRAIN_GRACE)  # ends at the PTY's EOF
        code = self.transport.get_returncode()
        exit_code = code if code is not None and code >= 0 else None
        signum = -code if code is not None and code < 0 else None
        log.info("terminal: pid %d exited (code %s, signal %s)", self.pid, exit_code, signum)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps({"type": "exit", "exit_code": exit_code, "signal": signum}))
            await ws.close(1000, "shell exited")

    async def _pump_output(self, ws: ClientConnection) -> None:
        """PTY → binary frames. Returns at the PTY's EOF (no process holds its other side any more)."""
        while True:
            data, eof = self._read_available()
            if data:
                await ws.send(data)  # waits while the socket's buffer is full: no reading meanwhile
            if eof:
                return
            if not data:
                await self._ready(write=False)

    def _read_available(self) -> tuple[bytes, bool]:
        """What the PTY has now, up to FRAME_MAX; and whether it reached EOF (EIO on Linux)."""
        chunks: list[bytes] = []
        size = 0
        while size < FRAME_MAX:
            try:
                chunk = os.read(self.master, FRAME_MAX - size)
            except BlockingIOError:
                return b"".join(chunks), False
            except OSError:
                return b"".join(chunks), True
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), False

    async def _ready(self, *, write: bool) -> None:
        """Wait until the PTY's master side is readable (or writable)."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        fd = self.master

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        (loop.add_writer if write else loop.add_reader)(fd, wake)
        try:
            await ready
        finally:
            (loop.remove_writer if write else loop.remove_reader)(fd)

    async def _pump_input(self, ws: ClientConnection) -> None:
        """Binary frames → PTY; text frames are control messages. Returns when the stream ends."""
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                if isinstance(message, bytes):
                    await self._write(message)
                else:
                    self._control(message)

    async def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.master, view) :]
            except BlockingIOError:  # the shell is not reading: wait, and stop taking frames meanwhile
                await self._ready(write=True)
            except OSError:
                return  # the terminal is gone; the exit is reported by serve()

    def _control(self, text: str) -> None:
        try:
            message = json.loads(text)
            if message.get("type") == "resize":
                set_size(
                    self.master, _cells(message["cols"], 80, "cols"), _cells(message["rows"], 24, "rows")
                )
            else:
                log.debug("terminal: ignored a %r message", message.get("type"))
        except (ValueError, KeyError, AttributeError, AgentError, OSError) as exc:
            log.debug("terminal: ignored a malformed control message: %s", exc)

    # --- ending ----------------------------------------------------------------------------------------

    def _foreground_group(self) -> None:
        with contextlib.suppress(OSError):
            self._groups.add(os.tcgetpgrp(self.master))

    async def _hang_up(self) -> None:
        """SIGHUP the shell's group and the foreground job's; SIGKILL them if they outlive the grace."""
        if not self.exited.done():
            self._foreground_group()
            _kill_groups(self._groups, signal.SIGHUP)
            _kill_groups(self._groups, signal.SIGCONT)  # a stopped job must run to see its SIGHUP
        self._close_master()
        try:
            await asyncio.wait_for(asyncio.shield(self.exited), KILL_GRACE)
        except TimeoutError:
            log.info("terminal: pid %d ignored SIGHUP: killing it", self.pid)
            _kill_groups(self._groups, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.exited), KILL_GRACE)
        finally:
            self.transport.close()

    def abandon(self) -> None:
        """The stream could not be dialled: nobody will ever use this shell."""
        self._foreground_group()
        _kill_groups(self._groups, signal.SIGKILL)
        self._close_master()
        self.transport.close()  # reaped by the loop's child watcher

    def _close_master(self) -> None:
        if self.master >= 0:
            with contextlib.suppress(OSError):
                os.close(self.master)
            self.master = -1


async def open_pty(call: protocol.PtyOpen) -> StreamReply:
    """``pty.open``: start the login shell on a PTY of ``cols`` x ``rows``; the stream carries it."""
    session = await PtySession.start(call.cols, call.rows)  # 1 … MAX_CELLS, checked by the model
    return StreamReply({"pid": session.pid, "shell": session.shell}, session.serve, release=session.abandon)


def capability() -> Capability:
    """The terminal method (absent where this module cannot be imported: no POSIX PTYs)."""
    return Capability("pty", {protocol.PtyOpen: open_pty})
