"""How a job's command becomes a process: the shell it runs under, and the command line Windows gets.

Pure functions of their arguments (no operating system calls), so the Windows rules are unit-tested on
any machine. The reference's ``args`` (non-empty) mean no shell at all: ``[command, *args]`` is executed
as it is (on Windows, CreateProcess gets ``subprocess.list2cmdline`` of it: the Microsoft C runtime's
quoting, which every program that parses its command line with ``CommandLineToArgvW`` or the C runtime
reads back into the same list). Without ``args``, ``command`` runs under a shell: the job's ``shell``
(docs/api.md), else the platform's default: ``/bin/sh`` on POSIX, ``cmd.exe`` on Windows.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

SHELLS = ("sh", "bash", "zsh", "cmd", "powershell", "pwsh")
"""The values of a job's ``shell``."""

POWERSHELL_FLAGS = ("-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass")


@dataclass(frozen=True)
class Launch:
    """What to start, as ``subprocess.Popen(args, shell=shell)`` takes it.

    Attributes:
        args: the argv (executed without a shell), or with ``shell`` the command for the system shell.
        shell: True only for ``cmd.exe`` on Windows: Python then runs ``%ComSpec% /c "<args>"``, the
            command line cmd.exe reads back verbatim (list quoting would put ``\\"`` in it, which cmd.exe
            does not understand).
    """

    args: list[str] | str
    shell: bool = False


class NoSuchShell(ValueError):
    """The job's ``shell`` is not available on this machine (the message says why)."""


def encode_powershell(command: str) -> str:
    """``command`` as PowerShell's ``-EncodedCommand`` takes it: base64 of its UTF-16LE bytes, so no
    quoting of any kind stands between the user's text and PowerShell."""
    return base64.b64encode(command.encode("utf-16-le")).decode("ascii")


def job_launch(
    command: str,
    args: list[str],
    shell: str | None,
    *,
    windows: bool,
    which: Callable[[str], str | None],
) -> Launch:
    """The process a job starts.

    Args:
        command: the job's ``command``.
        args: the job's ``args``; non-empty: ``[command, *args]`` without a shell (``shell`` ignored).
        shell: the job's ``shell`` (one of :data:`SHELLS`) or None for the platform's default.
        windows: whether this is Windows (its default shell and rules).
        which: finds an executable on PATH (``shutil.which``).

    Raises:
        NoSuchShell: the shell is unknown, or not installed here (``cmd`` off Windows).
    """
    if args:
        return Launch([command, *args])
    if shell is None:
        shell = "cmd" if windows else "sh"
    if shell not in SHELLS:
        raise NoSuchShell(f"unknown shell {shell!r}: one of {', '.join(SHELLS)}")
    if shell == "cmd":
        if not windows:
            raise NoSuchShell("cmd is the Windows shell; this host is not Windows")
        return Launch(command, shell=True)
    if shell in ("powershell", "pwsh"):
        found = which(shell) or (which("pwsh") if shell == "powershell" else None)
        if found is None:
            raise NoSuchShell(f"{shell} is not installed on this host")
        return Launch([found, *POWERSHELL_FLAGS, "-EncodedCommand", encode_powershell(command)])
    if shell == "sh" and not windows:
        return Launch(["/bin/sh", "-c", command])
    found = which(shell)
    if found is None:
        raise NoSuchShell(f"{shell} is not installed on this host")
    return Launch([found, "-c", command])


def windows_command_line(launch: Launch, comspec: str = "cmd.exe") -> str:
    """The command line CreateProcess receives on Windows for ``launch`` (what ``subprocess.Popen`` makes
    of it there): ``list2cmdline`` of an argv, or ``<comspec> /c "<command>"`` for cmd.exe."""
    if launch.shell:
        return f'{comspec} /c "{launch.args}"'
    if isinstance(launch.args, str):
        return launch.args
    return subprocess.list2cmdline(launch.args)
