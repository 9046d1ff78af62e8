"""The platform layer on Windows: ConPTY terminals (``pywinpty``), Job Objects for process trees (through
``ctypes``), paths and file attributes.

Exercised only on Windows: nothing here runs on the Linux machines the suite runs on (mypy checks it
with ``--platform win32``). What can run anywhere lives in :mod:`.windows_rules` and :mod:`.commands`,
and is unit-tested there.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import ctypes
import errno
import getpass
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Mapping
from ctypes import wintypes
from typing import Any

import psutil

from . import windows_rules as rules
from .base import FRAME_MAX, Offer, ProcessTree, Terminal, User

assert sys.platform == "win32"  # mypy: this module is checked for Windows only; never imported elsewhere

KILL_GRACE = 2.0  # seconds between asking a terminal's shell to end and terminating it
EXIT_POLL = 0.2  # seconds between checks whether a terminal's shell is still alive


# --- the user ------------------------------------------------------------------------------------------


def _default_shell() -> tuple[str, tuple[str, ...]]:
    """PowerShell 7 (``pwsh``) when installed, else Windows PowerShell, else ``%ComSpec%`` (cmd.exe)."""
    for name in ("pwsh", "powershell"):
        found = shutil.which(name)
        if found:
            return found, ("-NoLogo",)
    return os.environ.get("ComSpec") or r"C:\Windows\System32\cmd.exe", ()


def current_user() -> User:
    """The agent's user: its name, ``%USERPROFILE%`` and the terminal's shell (``OC_AGENT_SHELL`` if set
    and found, else pwsh, powershell or cmd.exe)."""
    home = os.environ.get("USERPROFILE") or os.path.expanduser("~")
    wanted = os.environ.get("OC_AGENT_SHELL")
    found = shutil.which(wanted) if wanted else None
    if found:
        powershell = "powershell" in found.lower() or "pwsh" in found.lower()
        return User(getpass.getuser(), home, found, ("-NoLogo",) if powershell else ())
    shell, args = _default_shell()
    return User(getpass.getuser(), home, shell, args)


def terminal_env(user: User, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` plus what a terminal needs (colours); Windows keeps its own profile variables."""
    env = dict(base)
    env.setdefault("USERPROFILE", user.home)
    env["TERM"] = "xterm-256color"
    env["COLORTERM"] = "truecolor"
    return env


def is_root(path: str) -> bool:
    """Whether ``path`` is the root of a drive or share (``C:\\``)."""
    return rules.is_drive_root(path)


def secure_dir(path: str) -> None:
    """Nothing: a directory under the user's profile is already private by its inherited ACL."""


# --- terminals (ConPTY through pywinpty) ---------------------------------------------------------------


class ConPtyTerminal(Terminal):
    """A shell on a ConPTY pseudo console. pywinpty's reads block, so they run in a worker thread;
    output comes as text (ConPTY speaks UTF-8) and is sent on as UTF-8 bytes."""

    def __init__(self, pty: Any, shell: str) -> None:
        self.pty = pty
        self.shell = shell
        self.pid = int(pty.pid or 0)
        self.exited = asyncio.get_running_loop().create_future()
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._watch = asyncio.ensure_future(self._watch_exit())

    @classmethod
    async def start(cls, user: User, env: dict[str, str], cols: int, rows: int) -> ConPtyTerminal:
        """``user``'s shell on a new pseudo console of ``cols`` x ``rows``.

        Raises:
            OSError: pywinpty is missing or the shell could not start.
        """
        try:
            from winpty import PTY, Backend
        except ImportError as exc:
            raise OSError(errno.ENOSYS, f"pywinpty is not installed ({exc})") from None
        pty = PTY(cols, rows, backend=Backend.ConPTY)
        cmdline = " " + subprocess.list2cmdline(list(user.shell_args)) if user.shell_args else None
        cwd = user.home if os.path.isdir(user.home) else None
        try:
            started = await asyncio.to_thread(
                pty.spawn, user.shell, cmdline=cmdline, cwd=cwd, env=rules.environment_block(env)
            )
        except Exception as exc:  # pywinpty raises its own WinptyError
            raise OSError(errno.EIO, str(exc)) from None
        if not started:
            raise OSError(errno.EIO, "ConPTY refused to start the shell")
        return cls(pty, user.shell)

    async def _watch_exit(self) -> None:
        while self.pty.isalive():
            await asyncio.sleep(EXIT_POLL)
        if not self.exited.done():
            self.exited.set_result(None)

    async def read(self) -> bytes:
        """Up to FRAME_MAX characters as UTF-8; ``b""`` at the pseudo console's end."""
        while True:
            try:
                text = await asyncio.to_thread(self.pty.read, FRAME_MAX, True)
            except Exception:  # pywinpty reports the end of the console as an error
                return b""
            if text:
                return text.encode("utf-8", "surrogateescape")
            if self.pty.iseof():
                return b""

    async def write(self, data: bytes) -> None:
        """Type ``data``; UTF-8 sequences split between frames are joined first."""
        text = self._decoder.decode(data)
        if text:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.pty.write, text)

    def resize(self, cols: int, rows: int) -> None:
        """ResizePseudoConsole."""
        try:
            self.pty.set_size(cols, rows)
        except Exception as exc:
            raise OSError(errno.EIO, str(exc)) from None

    def exit_status(self) -> tuple[int | None, int | None]:
        """The shell's exit code (Windows has no signals)."""
        code = self.pty.get_exitstatus()
        return (int(code) if code is not None else None), None

    async def hang_up(self) -> None:
        """End the shell and everything it started (its process tree), then close the console."""
        self.abandon()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.exited), KILL_GRACE)

    def abandon(self) -> None:
        """Kill the shell's tree at once."""
        kill_process_tree(self.pid)  # pywinpty closes the pseudo console once its object is dropped


async def open_terminal(user: User, env: dict[str, str], cols: int, rows: int) -> Terminal:
    """``user``'s shell on a ConPTY pseudo console (Windows 10 1809 or later).

    Raises:
        OSError: it could not start.
    """
    return await ConPtyTerminal.start(user, env, cols, rows)


CONPTY_BUILD = 17763  # Windows 10 1809: the first with ConPTY


def terminal_offer(user: User) -> Offer:
    """Whether terminals work here: Windows 10 1809 or later (ConPTY) and pywinpty installed."""
    build = sys.getwindowsversion().build
    if build < CONPTY_BUILD:
        return Offer("terminal", False, f"Windows build {build} has no ConPTY (needs 10 1809, build 17763)")
    try:
        import winpty  # noqa: F401
    except ImportError:
        return Offer("terminal", False, "pywinpty is not installed (pip install pywinpty)")
    return Offer("terminal", True, f"ConPTY (pywinpty) running {user.shell}")


TERMINAL_ERRORS: tuple[type[Exception], ...] = (OSError,)
"""What :func:`open_terminal` raises when the shell cannot start."""


def on_stop_signals(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> None:
    """Call ``stop`` on the loop at ctrl+c or ctrl+break (the only stop signals Windows delivers; a
    service manager ends the process otherwise). The handlers run in the main thread between bytecodes,
    so they hand over to the loop thread-safely."""
    for sig in (signal.SIGINT, signal.SIGBREAK):
        signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop))


# --- process trees: Job Objects ----------------------------------------------------------------------

_kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
_kernel32.CreateJobObjectW.restype = wintypes.HANDLE
_kernel32.CreateJobObjectW.argtypes = [wintypes.LPVOID, wintypes.LPCWSTR]
_kernel32.SetInformationJobObject.restype = wintypes.BOOL
_kernel32.SetInformationJobObject.argtypes = [wintypes.HANDLE, ctypes.c_int, wintypes.LPVOID, wintypes.DWORD]
_kernel32.OpenProcess.restype = wintypes.HANDLE
_kernel32.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
_kernel32.AssignProcessToJobObject.restype = wintypes.BOOL
_kernel32.AssignProcessToJobObject.argtypes = [wintypes.HANDLE, wintypes.HANDLE]
_kernel32.TerminateJobObject.restype = wintypes.BOOL
_kernel32.TerminateJobObject.argtypes = [wintypes.HANDLE, wintypes.UINT]
_kernel32.CloseHandle.restype = wintypes.BOOL
_kernel32.CloseHandle.argtypes = [wintypes.HANDLE]

KILLED_EXIT_CODE = 1  # what a terminated job's processes exit with (as ``taskkill /F``)


def spawn_options() -> dict[str, Any]:
    """Keyword arguments for ``subprocess.Popen`` / ``subprocess_exec``: a new process group, so
    :meth:`JobObjectTree.terminate` can send it CTRL_BREAK."""
    return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}


def kill_process_tree(pid: int) -> None:
    """Kill ``pid`` and every process below it (psutil walks the parent links); errors ignored."""
    try:
        root = psutil.Process(pid)
        tree = [*root.children(recursive=True), root]
    except psutil.Error:
        return
    for process in tree:
        with contextlib.suppress(psutil.Error):
            process.kill()


class JobObjectTree(ProcessTree):
    """A process placed in a Job Object of its own right after it started: every process it starts
    is in the job too, and :meth:`kill` ends them all (TerminateJobObject). The job is made with
    KILL_ON_JOB_CLOSE, so the tree also ends when the agent dies. Processes started in the moment
    between the start and the assignment are found through their parent links (psutil) instead."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.closed = False
        self.job = _kernel32.CreateJobObjectW(None, None)
        if not self.job:
            return
        info = rules.kill_on_close_limits()
        _kernel32.SetInformationJobObject(
            self.job,
            rules.JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS,
            ctypes.byref(info),
            ctypes.sizeof(info),
        )
        process = _kernel32.OpenProcess(rules.PROCESS_SET_QUOTA | rules.PROCESS_TERMINATE, False, pid)
        if process:
            _kernel32.AssignProcessToJobObject(self.job, process)
            _kernel32.CloseHandle(process)

    def terminate(self) -> None:
        """CTRL_BREAK to the job's process group (a console program may catch it and end cleanly)."""
        if self.closed:
            return
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.CTRL_BREAK_EVENT)

    def kill(self) -> None:
        """TerminateJobObject, and any process of the tree outside the job. Nothing once closed (the
        process ID may belong to another process by then)."""
        if self.closed:
            return
        kill_process_tree(self.pid)
        if self.job:
            _kernel32.TerminateJobObject(self.job, KILLED_EXIT_CODE)

    def close(self) -> None:
        """Close the job's handle (its processes end with it: KILL_ON_JOB_CLOSE)."""
        self.closed = True
        if self.job:
            _kernel32.CloseHandle(self.job)
            self.job = None


def adopt(pid: int) -> ProcessTree:
    """The tree of a process just started with :func:`spawn_options`: put in a Job Object of its own."""
    return JobObjectTree(pid)


def enlarge_pipe(fd: int, size: int) -> None:
    """Nothing: a Windows pipe's buffer is set when it is created."""


# --- files -------------------------------------------------------------------------------------------


class Directory:
    """An open directory; Windows has no directory descriptors, so entries are joined to its path.

    Raises:
        OSError: ``path`` is not a directory that can be listed.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        if not os.path.isdir(path):
            os.stat(path)  # raises the right error for a missing path
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)

    def _at(self, name: str) -> str:
        return os.path.join(self.path, name)

    def stat(self, name: str, *, follow_symlinks: bool = True) -> os.stat_result:
        """The entry's stat (of the link itself with ``follow_symlinks=False``)."""
        return os.stat(self._at(name), follow_symlinks=follow_symlinks)

    def create(self, name: str, mode: int) -> int:
        """A new file, open for writing; FileExistsError if the name is taken."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_BINARY | os.O_NOINHERIT
        return os.open(self._at(name), flags, mode)

    def unlink(self, name: str) -> None:
        """Remove the entry ``name``."""
        os.unlink(self._at(name))

    def replace(self, src: str, dst: str) -> None:
        """Rename ``src`` over ``dst`` (MoveFileEx with MOVEFILE_REPLACE_EXISTING)."""
        os.replace(self._at(src), self._at(dst))

    def sync(self) -> None:
        """Nothing: NTFS journals the rename itself."""

    def close(self) -> None:
        """Nothing to close."""


def open_for_read(path: str) -> int:
    """A descriptor for reading ``path`` in binary mode; IsADirectoryError for a directory (Windows
    itself would say access denied)."""
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "is a directory", path)
    return os.open(path, os.O_RDONLY | os.O_BINARY | os.O_NOINHERIT)


def make_blocking(fd: int) -> None:
    """Nothing: a file descriptor on Windows always blocks."""


def file_mode(path: str, st: os.stat_result) -> int:
    """A POSIX mode made from the file's attributes (:func:`.windows_rules.windows_mode`)."""
    pathext = os.environ.get("PATHEXT") or rules.DEFAULT_PATHEXT
    return rules.windows_mode(st.st_file_attributes, st.st_reparse_tag, os.path.basename(path), pathext)


def stat_extras(st: os.stat_result) -> dict[str, Any]:
    """The creation time (``st_birthtime``, Python 3.12+) and the hidden/system/readonly attributes."""
    extras: dict[str, Any] = {"flags": rules.windows_flags(st.st_file_attributes)}
    birth = getattr(st, "st_birthtime", None)
    if birth is not None:
        extras["created"] = birth
    return extras


def may_follow_link(link: os.stat_result, parent_owner: int) -> bool:
    """Always: only an administrator (or developer mode) can make a symlink on Windows."""
    return True


def keep_attributes(fd: int, existing: os.stat_result) -> None:
    """Nothing: Windows' only mode bit is read-only, and Windows itself refuses to replace a read-only
    file (the upload is FORBIDDEN), so a replaced file had none to keep."""


def remove_tree(path: str) -> None:
    """Delete the directory ``path`` and everything in it, without recursion; symlinks and junctions
    inside are removed, never followed; read-only files are made writable first.

    Raises:
        OSError: as the system reports it.
    """
    stack = [(path, False)]
    while stack:
        current, emptied = stack.pop()
        if emptied:
            os.rmdir(current)
            continue
        stack.append((current, True))
        with os.scandir(current) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                link = bool(st.st_file_attributes & rules.FILE_ATTRIBUTE_REPARSE_POINT)
                if entry.is_dir(follow_symlinks=False) and not link:
                    stack.append((entry.path, False))
                elif entry.is_dir():  # a directory symlink or junction: remove the link itself
                    os.rmdir(entry.path)
                else:
                    if st.st_file_attributes & rules.FILE_ATTRIBUTE_READONLY:
                        os.chmod(entry.path, stat.S_IWRITE)
                    os.unlink(entry.path)


def make_parents(path: str) -> None:
    """Create the directory ``path`` and its missing ancestors, without recursion.

    Raises:
        FileExistsError: a component exists and is not a directory (``filename`` names it).
        OSError: as the system reports it.
    """
    missing: list[str] = []
    current = os.path.abspath(path)
    while not os.path.isdir(current):
        if os.path.lexists(current):
            raise FileExistsError(errno.EEXIST, "not a directory", current)
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for where in reversed(missing):
        try:
            os.mkdir(where)
        except FileExistsError:
            if not os.path.isdir(where):
                raise FileExistsError(errno.EEXIST, "not a directory", where) from None
