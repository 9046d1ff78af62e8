"""The platform layer on POSIX (Linux, macOS): process groups and signals, PTYs through ``openpty`` and
``termios``, the password database, directory file descriptors.

Terminals: the shell is the leader of a session of its own with the PTY as its controlling terminal, so
job control, ctrl+c and SIGWINCH work as they do over ssh. Hanging up sends SIGHUP to its process group
and the terminal's foreground group, SIGKILL 2 s later if they are still there.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pwd
import signal
import stat
import struct
import subprocess
import sys
import termios
from collections.abc import Callable, Mapping
from typing import Any

from .base import FRAME_MAX, Offer, ProcessTree, Terminal, User

assert sys.platform != "win32"  # mypy: this module is not checked for Windows; never imported there

KILL_GRACE = 2.0  # seconds between SIGHUP and SIGKILL when a terminal's client goes away
F_SETPIPE_SZ = 1031  # Linux's fcntl to grow a pipe's buffer

if sys.platform == "darwin":
    FALLBACK_SHELLS: tuple[str, ...] = ("/bin/zsh", "/bin/sh")  # zsh: macOS's login shell since 10.15
else:
    FALLBACK_SHELLS = ("/bin/sh",)


# --- the user ------------------------------------------------------------------------------------------


def current_user() -> User:
    """The agent's user: ``$HOME`` (else the password entry's), and as the login shell ``$SHELL`` when it
    names an executable, else the password entry's shell, else ``/bin/zsh`` (macOS) or ``/bin/sh``."""
    try:
        entry: pwd.struct_passwd | None = pwd.getpwuid(os.getuid())
    except KeyError:
        entry = None
    home = os.environ.get("HOME") or (entry.pw_dir if entry else "/")
    name = entry.pw_name if entry else str(os.getuid())
    for shell in (os.environ.get("SHELL"), entry.pw_shell if entry else None, *FALLBACK_SHELLS):
        if shell and os.path.isabs(shell) and os.access(shell, os.X_OK):
            return User(name, home, shell, ("-l",))
    return User(name, home, "/bin/sh", ("-l",))


def terminal_env(user: User, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` (the agent's environment without its own settings) plus what a terminal session needs."""
    env = dict(base)
    env.update(
        HOME=user.home,
        SHELL=user.shell,
        USER=user.name,
        LOGNAME=user.name,
        TERM="xterm-256color",
        COLORTERM="truecolor",
    )
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    if not any(env.get(k) for k in ("LC_ALL", "LC_CTYPE", "LANG")):
        env["LANG"] = "C.UTF-8"  # the client renders UTF-8; a POSIX locale would garble non-ASCII
    return env


def is_root(path: str) -> bool:
    """Whether ``path`` (normalised) is the file system's root."""
    return path == "/"


def secure_dir(path: str) -> None:
    """Make a state directory private to the agent's user (0700); errors ignored."""
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)


# --- terminals ---------------------------------------------------------------------------------------


def _take_terminal() -> None:
    """Runs in the child after ``setsid()``: make the PTY (already on fd 0) its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def set_size(fd: int, cols: int, rows: int) -> None:
    """TIOCSWINSZ; the kernel sends SIGWINCH to the foreground process group when the size changes."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


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


class PosixTerminal(Terminal):
    """A login shell on a PTY (``openpty``), read and written through its master side without blocking."""

    def __init__(self, transport: asyncio.SubprocessTransport, protocol: _Exit, master: int, shell: str):
        self.transport = transport
        self.exited = protocol.exited
        self.master = master
        self.shell = shell
        self.pid = transport.get_pid()
        self._groups = {self.pid}  # process groups to hang up: the shell's, and the foreground job's

    @classmethod
    async def start(cls, user: User, env: dict[str, str], cols: int, rows: int) -> PosixTerminal:
        """``user``'s login shell on a new PTY of ``cols`` x ``rows`` cells.

        Raises:
            OSError, subprocess.SubprocessError: the shell could not start (the latter: TIOCSCTTY failed).
        """
        master, slave = os.openpty()
        try:
            set_size(slave, cols, rows)
            os.set_blocking(master, False)
            transport, protocol = await asyncio.get_running_loop().subprocess_exec(
                _Exit,
                user.shell,
                *user.shell_args,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=user.home if os.path.isdir(user.home) else "/",
                env=env,
                start_new_session=True,
                preexec_fn=_take_terminal,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)  # the shell has its own copies; ours would keep the master from seeing EOF
        return cls(transport, protocol, master, user.shell)

    async def read(self) -> bytes:
        """Up to FRAME_MAX bytes, waiting until readable; ``b""`` at EOF (EIO on Linux)."""
        while True:
            data, eof = self._read_available()
            if data or eof:
                return data
            await self._ready(write=False)

    def _read_available(self) -> tuple[bytes, bool]:
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
        if fd < 0:
            raise OSError("the terminal is closed")

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        (loop.add_writer if write else loop.add_reader)(fd, wake)
        try:
            await ready
        finally:
            (loop.remove_writer if write else loop.remove_reader)(fd)

    async def write(self, data: bytes) -> None:
        """Write it all, waiting while the shell does not read; nothing once the terminal is gone."""
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.master, view) :]
            except BlockingIOError:  # the shell is not reading: wait, and stop taking frames meanwhile
                await self._ready(write=True)
            except OSError:
                return

    def resize(self, cols: int, rows: int) -> None:
        """TIOCSWINSZ on the master side."""
        set_size(self.master, cols, rows)

    def exit_status(self) -> tuple[int | None, int | None]:
        """The shell's exit code, or the signal that ended it."""
        code = self.transport.get_returncode()
        exit_code = code if code is not None and code >= 0 else None
        signum = -code if code is not None and code < 0 else None
        return exit_code, signum

    def _foreground_group(self) -> None:
        with contextlib.suppress(OSError):
            self._groups.add(os.tcgetpgrp(self.master))

    async def hang_up(self) -> None:
        """SIGHUP the shell's group and the foreground job's; SIGKILL them if they outlive the grace."""
        if not self.exited.done():
            self._foreground_group()
            _kill_groups(self._groups, signal.SIGHUP)
            _kill_groups(self._groups, signal.SIGCONT)  # a stopped job must run to see its SIGHUP
        self._close_master()
        try:
            await asyncio.wait_for(asyncio.shield(self.exited), KILL_GRACE)
        except TimeoutError:
            _kill_groups(self._groups, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.exited), KILL_GRACE)
        finally:
            self.transport.close()

    def abandon(self) -> None:
        """SIGKILL the shell's group and the foreground job's, close the PTY."""
        self._foreground_group()
        _kill_groups(self._groups, signal.SIGKILL)
        self._close_master()
        self.transport.close()  # reaped by the loop's child watcher

    def _close_master(self) -> None:
        if self.master >= 0:
            with contextlib.suppress(OSError):
                os.close(self.master)
            self.master = -1


async def open_terminal(user: User, env: dict[str, str], cols: int, rows: int) -> Terminal:
    """``user``'s login shell on a new PTY (see :class:`PosixTerminal`).

    Raises:
        OSError, subprocess.SubprocessError: it could not start.
    """
    return await PosixTerminal.start(user, env, cols, rows)


def terminal_offer(user: User) -> Offer:
    """Whether terminals work here: a PTY can be opened and the login shell exists."""
    try:
        master, slave = os.openpty()
    except OSError as exc:
        return Offer("terminal", False, f"no pseudo-terminals here ({exc.strerror or exc})")
    os.close(master)
    os.close(slave)
    return Offer("terminal", True, f"PTY (openpty) running {user.shell} {' '.join(user.shell_args)}".rstrip())


TERMINAL_ERRORS: tuple[type[Exception], ...] = (OSError, subprocess.SubprocessError)
"""What :func:`open_terminal` raises when the shell cannot start."""


def on_stop_signals(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> None:
    """Call ``stop`` on the loop when the agent is asked to stop: SIGTERM (service managers) or SIGINT."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)


# --- process trees -----------------------------------------------------------------------------------


def spawn_options() -> dict[str, Any]:
    """Keyword arguments for ``subprocess.Popen`` / ``subprocess_exec`` that start a tree of its own: a
    new session, so the process leads a process group that :func:`adopt` can signal as a whole."""
    return {"start_new_session": True}


def kill_group(pgid: int, sig: int) -> None:
    """Signal the process group ``pgid``; a group that is gone (or not ours) is ignored."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class PosixProcessTree(ProcessTree):
    """The process group led by ``pid`` (started with :func:`spawn_options`)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def terminate(self) -> None:
        """SIGTERM to the group."""
        kill_group(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the group."""
        kill_group(self.pid, signal.SIGKILL)


def adopt(pid: int) -> ProcessTree:
    """The tree of a process started with :func:`spawn_options`."""
    return PosixProcessTree(pid)


def enlarge_pipe(fd: int, size: int) -> None:
    """Grow a pipe's buffer to ``size`` bytes where the system allows it (Linux); errors ignored."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError, ValueError):
            fcntl.fcntl(fd, F_SETPIPE_SZ, size)


# --- files -------------------------------------------------------------------------------------------

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class Directory:
    """An open directory whose entries are reached relative to it (``openat`` and friends), so a parent
    swapped meanwhile redirects nothing.

    Raises:
        OSError: the directory cannot be opened.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, DIR_FLAGS)

    def stat(self, name: str, *, follow_symlinks: bool = True) -> os.stat_result:
        """The entry's stat (of the link itself with ``follow_symlinks=False``)."""
        return os.stat(name, dir_fd=self.fd, follow_symlinks=follow_symlinks)

    def create(self, name: str, mode: int) -> int:
        """A new file (never through a link), open for writing; FileExistsError if the name is taken."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
        return os.open(name, flags, mode, dir_fd=self.fd)

    def unlink(self, name: str) -> None:
        """Remove the entry ``name``."""
        os.unlink(name, dir_fd=self.fd)

    def replace(self, src: str, dst: str) -> None:
        """Rename the entry ``src`` over ``dst`` in one step."""
        os.replace(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def sync(self) -> None:
        """Make the directory's entries durable (after a rename); errors ignored."""
        with contextlib.suppress(OSError):
            os.fsync(self.fd)

    def close(self) -> None:
        """Close the directory; errors ignored."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


def open_for_read(path: str) -> int:
    """A descriptor for reading ``path``, opened without blocking on a FIFO (make it blocking with
    :func:`make_blocking` once it is known to be a regular file)."""
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)


def make_blocking(fd: int) -> None:
    """Make a descriptor from :func:`open_for_read` blocking again (it is a regular file)."""
    os.set_blocking(fd, True)


def file_mode(path: str, st: os.stat_result) -> int:
    """The ``st_mode`` the API shows: the system's own."""
    return st.st_mode


def stat_extras(st: os.stat_result) -> dict[str, Any]:
    """Metadata beyond POSIX's where the file system has it: the birth time (``st_birthtime``: APFS and
    HFS+ on macOS, the BSDs) and the BSD file flags by name (``chflags``: hidden, immutable …)."""
    extras: dict[str, Any] = {}
    if sys.platform == "darwin" or sys.platform.startswith("freebsd"):
        extras["created"] = st.st_birthtime
        names = [
            (stat.UF_HIDDEN, "hidden"),
            (stat.UF_IMMUTABLE, "immutable"),
            (stat.UF_APPEND, "append_only"),
            (stat.UF_NODUMP, "nodump"),
            (stat.UF_COMPRESSED, "compressed"),
            (stat.SF_IMMUTABLE, "system_immutable"),
            (stat.SF_APPEND, "system_append_only"),
        ]
        extras["flags"] = [name for bit, name in names if st.st_flags & bit]
    return extras


def may_follow_link(link: os.stat_result, parent_owner: int) -> bool:
    """Whether an upload may write through the symlink ``link``: it belongs to the agent's user or to
    the owner of the directory holding it (Linux's ``fs.protected_symlinks`` rule)."""
    return link.st_uid in (os.geteuid(), parent_owner)


def keep_attributes(fd: int, existing: os.stat_result) -> None:
    """Give a file that replaces ``existing`` its permission bits (and, as root, its owner); errors
    ignored."""
    with contextlib.suppress(OSError):
        os.fchmod(fd, stat.S_IMODE(existing.st_mode))
        if os.geteuid() == 0:
            os.fchown(fd, existing.st_uid, existing.st_gid)
