"""The agent's platform layer: everything that differs between operating systems, behind one interface.

The capability modules (:mod:`..pty`, :mod:`..fs`, :mod:`..job_runner`, :mod:`..system`, :mod:`..vnc`)
call only what this package exports; :mod:`.posix` implements it for Linux and macOS, :mod:`.windows`
for Windows, and exactly one of them is imported. The choice is a ``sys.platform`` check that mypy
understands, so ``mypy --platform win32`` and ``--platform darwin`` (scripts/test) check each side
against its own standard library: no POSIX-only call is reachable on Windows, nor the reverse.

The interface:

- the user: :func:`current_user` (name, home, login shell: ``$SHELL``, the password entry, zsh on
  macOS; PowerShell or cmd.exe on Windows), :func:`terminal_env`;
- terminals: :func:`open_terminal` → :class:`.base.Terminal` (``openpty``/``termios``; ConPTY through
  pywinpty on Windows), :data:`TERMINAL_ERRORS`;
- process trees: :func:`spawn_options` for ``Popen``, then :func:`adopt` → :class:`.base.ProcessTree`
  (a process group and signals; a Job Object on Windows), :func:`job_launch` (the job's shell, see
  :mod:`.commands`), :func:`enlarge_pipe`;
- files: :class:`Directory` (entries relative to an open directory), :func:`open_for_read`,
  :func:`file_mode`, :func:`stat_extras` (birth time and flags: APFS, NTFS), :func:`may_follow_link`,
  :func:`keep_attributes`, :func:`remove_tree`, :func:`make_parents`, :func:`is_root`, :data:`paths`
  (``posixpath`` or ``ntpath``);
- state: :func:`state_dir`, :func:`secure_dir`;
- service start-up and what this machine offers: :mod:`.service`, :mod:`.doctor`.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from .base import FRAME_MAX, Offer, ProcessTree, Terminal, User
from .commands import SHELLS, Launch, NoSuchShell
from .commands import job_launch as _job_launch

if sys.platform == "win32":
    import ntpath as paths

    from . import windows as impl
    from .windows import make_parents, remove_tree
else:
    import posixpath as paths

    from . import posix as impl
    from .posix_tree import make_parents, remove_tree

TERMINAL_ERRORS = impl.TERMINAL_ERRORS
Directory = impl.Directory
adopt = impl.adopt
current_user = impl.current_user
enlarge_pipe = impl.enlarge_pipe
file_mode = impl.file_mode
is_root = impl.is_root
keep_attributes = impl.keep_attributes
make_blocking = impl.make_blocking
may_follow_link = impl.may_follow_link
on_stop_signals = impl.on_stop_signals
open_for_read = impl.open_for_read
open_terminal = impl.open_terminal
secure_dir = impl.secure_dir
spawn_options = impl.spawn_options
stat_extras = impl.stat_extras
terminal_env = impl.terminal_env
terminal_offer = impl.terminal_offer

WINDOWS = sys.platform == "win32"
MACOS = sys.platform == "darwin"


def job_launch(command: str, args: list[str], shell: str | None = None) -> Launch:
    """What a job starts here: ``[command, *args]`` without a shell, or ``command`` under ``shell``
    (default: ``/bin/sh``; ``cmd.exe`` on Windows). See :func:`.commands.job_launch`.

    Raises:
        NoSuchShell: the shell is unknown or not installed here.
    """
    return _job_launch(command, args, shell, windows=WINDOWS, which=shutil.which)


def desktop_hint() -> str:
    """How to get a desktop (a VNC server) on this OS, for messages that fit a close frame."""
    if MACOS:
        return "turn on Screen Sharing with a VNC password (System Settings > Sharing)"
    if WINDOWS:
        return "install a VNC server such as TightVNC or UltraVNC"
    return "start one"


def desktop_password() -> str | None:
    """The desktop's VNC password when the OS keeps it where the agent can read it: macOS Screen
    Sharing's (:mod:`.macos`; root only), else None."""
    if not MACOS:
        return None
    from .macos import VNC_SETTINGS, decode_vnc_settings

    try:
        return decode_vnc_settings(Path(VNC_SETTINGS).read_text())
    except (OSError, ValueError):
        return None


def state_dir() -> Path:
    """Where the agent keeps its state (identity key, job spools, upload journal): ``$OC_AGENT_STATE_DIR``,
    else the user's state dir of oc-tui + ``/agent`` (``~/.local/state`` on Linux, ``~/Library/Application
    Support`` on macOS, ``%LOCALAPPDATA%`` on Windows, as platformdirs knows them)."""
    env = os.environ.get("OC_AGENT_STATE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_state_dir

    return Path(user_state_dir("oc-tui")) / "agent"


__all__ = [
    "FRAME_MAX",
    "MACOS",
    "SHELLS",
    "TERMINAL_ERRORS",
    "WINDOWS",
    "Directory",
    "Launch",
    "NoSuchShell",
    "Offer",
    "ProcessTree",
    "Terminal",
    "User",
    "adopt",
    "current_user",
    "desktop_hint",
    "desktop_password",
    "enlarge_pipe",
    "file_mode",
    "is_root",
    "job_launch",
    "keep_attributes",
    "make_blocking",
    "make_parents",
    "may_follow_link",
    "on_stop_signals",
    "open_for_read",
    "open_terminal",
    "paths",
    "remove_tree",
    "secure_dir",
    "spawn_options",
    "state_dir",
    "stat_extras",
    "terminal_env",
    "terminal_offer",
]
