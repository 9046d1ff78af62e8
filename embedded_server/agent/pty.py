"""The agent's terminals: ``pty.open`` runs the user's login shell on a new PTY and serves it on a stream.

The terminal itself is the platform layer's (:func:`.platform.open_terminal`): on POSIX the shell leads
a session of its own with the PTY as its controlling terminal, so job control, ctrl+c and SIGWINCH work
as they do over ssh; on Windows it is a ConPTY pseudo console. The stream's framing (docs/protocol.md): binary
frames carry the PTY's bytes both ways; text frames are JSON, ``{"type": "resize", "cols", "rows"}`` from
the client and, once the shell has exited, ``{"type": "exit", "exit_code", "signal"}`` from us before we
close with 1000. When the other side goes away first, the shell is hung up (:meth:`.platform.Terminal.hang_up`:
SIGHUP to its process group and the terminal's foreground group, SIGKILL 2 s later if they are still
there).

Output is read only while the previous frame has been handed to the WebSocket: a slow client slows the
reader, the PTY's buffer fills and the program writing (``cat`` of a huge file) blocks, as it would on a
slow serial line, instead of the agent buffering without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from .. import protocol
from ..protocol import AgentError
from . import platform
from .capabilities import Capability, StreamReply
from .system import work_env

log = logging.getLogger("oc_agent.pty")

FRAME_MAX = platform.FRAME_MAX  # bytes of output gathered into one frame at most
DRAIN_GRACE = 0.25  # seconds to collect what the shell wrote just before it exited
MAX_CELLS = protocol.MAX_CELLS  # columns or rows


def _cells(value: Any, default: int, name: str) -> int:
    """A resize's ``cols`` or ``rows``: ``default`` for null, else an integer 1 … MAX_CELLS."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CELLS:
        raise AgentError("VALIDATION_ERROR", f"{name} must be an integer from 1 to {MAX_CELLS}")
    return value


# --- one terminal ------------------------------------------------------------------------------------


class PtySession:
    """A login shell on a terminal of the platform layer, and the pumps between it and one stream."""

    def __init__(self, terminal: platform.Terminal):
        self.terminal = terminal
        self.exited = terminal.exited
        self.shell = terminal.shell
        self.pid = terminal.pid

    @classmethod
    async def start(cls, cols: int, rows: int) -> PtySession:
        """The login shell on a new PTY of ``cols`` x ``rows`` cells; AgentError PTY_FAILED if it cannot start."""
        user = platform.current_user()
        try:
            terminal = await platform.open_terminal(user, platform.terminal_env(user, work_env()), cols, rows)
        except platform.TERMINAL_ERRORS as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise AgentError("PTY_FAILED", f"could not start {user.shell}: {why}") from None
        log.info(
            "terminal: %s %s as pid %d (%dx%d)",
            user.shell,
            " ".join(user.shell_args),
            terminal.pid,
            cols,
            rows,
        )
        return cls(terminal)

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
            if not self.exited.done():
                log.info("terminal: pid %d: the client went away: hanging up", self.pid)
            await self.terminal.hang_up()

    async def _report_exit(self, ws: ClientConnection, output: asyncio.Task[None]) -> None:
        with contextlib.suppress(TimeoutError, ConnectionClosed):
            await asyncio.wait_for(asyncio.shield(output), DRAIN_GRACE)  # ends at the PTY's EOF
        exit_code, signum = self.terminal.exit_status()
        log.info("terminal: pid %d exited (code %s, signal %s)", self.pid, exit_code, signum)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps({"type": "exit", "exit_code": exit_code, "signal": signum}))
            await ws.close(1000, "shell exited")

    async def _pump_output(self, ws: ClientConnection) -> None:
        """PTY → binary frames. Returns at the PTY's EOF (no process holds its other side any more).

        The next read starts only once the previous frame was handed to the WebSocket."""
        while True:
            data = await self.terminal.read()
            if not data:
                return
            await ws.send(data)  # waits while the socket's buffer is full: no reading meanwhile

    async def _pump_input(self, ws: ClientConnection) -> None:
        """Binary frames → PTY; text frames are control messages. Returns when the stream ends."""
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                if isinstance(message, bytes):
                    await self.terminal.write(message)  # waits while the shell does not read
                else:
                    self._control(message)

    def _control(self, text: str) -> None:
        try:
            message = json.loads(text)
            if message.get("type") == "resize":
                self.terminal.resize(_cells(message["cols"], 80, "cols"), _cells(message["rows"], 24, "rows"))
            else:
                log.debug("terminal: ignored a %r message", message.get("type"))
        except (ValueError, KeyError, AttributeError, AgentError, OSError) as exc:
            log.debug("terminal: ignored a malformed control message: %s", exc)

    def abandon(self) -> None:
        """The stream could not be dialled: nobody will ever use this shell."""
        self.terminal.abandon()


async def open_pty(call: protocol.PtyOpen) -> StreamReply:
    """``pty.open``: start the login shell on a PTY of ``cols`` x ``rows``; the stream carries it."""
    session = await PtySession.start(call.cols, call.rows)  # 1 … MAX_CELLS, checked by the model
    return StreamReply({"pid": session.pid, "shell": session.shell}, session.serve, release=session.abandon)


def capability() -> Capability:
    """The terminal method (``openpty`` on POSIX, ConPTY on Windows: see :mod:`.platform`)."""
    return Capability("pty", {protocol.PtyOpen: open_pty})
