"""What every platform implements: the types of the agent's platform layer (see the package's docstring).

These are plain types and abstract classes with no operating system calls, so every platform imports
them; :mod:`.posix` and :mod:`.windows` implement them.
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass

FRAME_MAX = 64 * 1024  # bytes of terminal output handed over in one read at most


@dataclass(frozen=True)
class User:
    """The account the agent runs as.

    Attributes:
        name: the login name.
        home: the home directory (absolute).
        shell: the login shell (absolute path of an executable).
        shell_args: the arguments that make ``shell`` a login/interactive shell (``["-l"]`` on POSIX).
    """

    name: str
    home: str
    shell: str
    shell_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Offer:
    """One thing this machine can or cannot offer (``oc-agent doctor``).

    Attributes:
        name: what it is ("terminal", "desktop", "shell cmd" …).
        ok: whether it works here.
        detail: how it is provided, or why not and how to fix it.
    """

    name: str
    ok: bool
    detail: str


class Terminal(abc.ABC):
    """A shell on a pseudo-terminal: the bytes both ways, its size, and its end.

    Attributes:
        pid: the shell's process ID.
        shell: the shell's path.
        exited: resolved once the shell process has exited.
    """

    pid: int
    shell: str
    exited: asyncio.Future[None]

    @abc.abstractmethod
    async def read(self) -> bytes:
        """What the terminal has written, up to :data:`FRAME_MAX` bytes, waiting until there is some;
        ``b""`` once it reached its end (no process holds it any more)."""

    @abc.abstractmethod
    async def write(self, data: bytes) -> None:
        """Type ``data`` into the terminal, waiting while the shell does not read; nothing once it is gone."""

    @abc.abstractmethod
    def resize(self, cols: int, rows: int) -> None:
        """Set the terminal's size in cells; the foreground program is told (SIGWINCH on POSIX).

        Raises:
            OSError: the terminal is gone.
        """

    @abc.abstractmethod
    def exit_status(self) -> tuple[int | None, int | None]:
        """``(exit_code, signal)`` of the exited shell: one of them set, or both None if unknown."""

    @abc.abstractmethod
    async def hang_up(self) -> None:
        """The client went away: end the shell and what runs in the terminal (politely, then for sure)."""

    @abc.abstractmethod
    def abandon(self) -> None:
        """Nobody will ever use this terminal: end it at once, without waiting."""


class ProcessTree(abc.ABC):
    """A started process and everything it starts, to be ended as a whole.

    POSIX: the process leads a session (so a process group) of its own; ending signals the group.
    Windows: the process is in a Job Object; ending terminates the job (every process in it).
    """

    pid: int

    @abc.abstractmethod
    def terminate(self) -> None:
        """Ask the whole tree to end (SIGTERM to the group; CTRL_BREAK on Windows, which a console
        program may catch). Never raises."""

    @abc.abstractmethod
    def kill(self) -> None:
        """End the whole tree now (SIGKILL to the group; TerminateJobObject on Windows). Never raises."""

    def close(self) -> None:  # noqa: B027 - optional: only Windows holds a handle
        """Release what the tree holds (the Job Object's handle); the processes are not touched."""
