"""A terminal session on a host: a login shell's PTY over the ticket's WebSocket (docs/api.md, Terminal).

``async with await client.open_terminal(host_id, cols, rows) as term:`` then ``await term.send(b"ls\\r")``,
``await term.resize(120, 40)`` and ``async for chunk in term`` (the PTY's output bytes, until the shell
exits; then ``term.exit_code`` / ``term.exit_signal``). The server may accept the socket and then close it
with a reason instead of a session (ticket refused, host offline, the agent could not start a shell):
that surfaces as :class:`errors.SessionRefused` from iterating (and from ``send``), with the close reason.
"""

from __future__ import annotations

import json
from typing import Self

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from . import errors
from .models import Ticket
from .sessions import open_session_socket, refusal


class TerminalSession:
    """One PTY. Binary frames are its bytes both ways; text frames are JSON control messages."""

    def __init__(self, ws: ClientConnection) -> None:
        """Wrap an open session socket (use :meth:`connect` or ``client.open_terminal``)."""
        self._ws = ws
        self.exited = False
        """True once the agent reported the shell's exit."""
        self.exit_code: int | None = None
        self.exit_signal: int | None = None

    @classmethod
    async def connect(cls, ticket: Ticket, cols: int = 80, rows: int = 24) -> TerminalSession:
        """Open the ticket's socket at a first size.

        The size goes as ``?cols=&rows=`` (our extension) and, for servers that ignore those, as a resize
        message too.

        Args:
            ticket: a fresh terminal ticket (its ``ws_url`` carries it).
            cols: the width, in cells (1 to 1000).
            rows: the height, in cells (1 to 1000).

        Returns:
            The connected session.

        Raises:
            errors.ConnectionFailed: the WebSocket cannot be opened (refused, DNS, TLS, 10 s timeout).
            errors.SessionRefused: the server refused the socket or closed it at once with a reason.
            errors.StreamClosed: the socket was lost before the first size could be sent.
            ValueError: a size out of range.
        """
        sep = "&" if "?" in ticket.ws_url else "?"
        url = f"{ticket.ws_url}{sep}cols={int(cols)}&rows={int(rows)}"
        session = cls(await open_session_socket(ticket.model_copy(update={"ws_url": url})))
        try:
            await session.resize(cols, rows)
        except BaseException:
            await session.close()
            raise
        return session

    async def __aenter__(self) -> Self:
        """Nothing to open: the session is connected already."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """:meth:`close` it."""
        await self.close()

    def __aiter__(self) -> Self:
        """The session is its own iterator of output bytes."""
        return self

    async def __anext__(self) -> bytes:
        """The next output bytes of the PTY.

        Raises:
            StopAsyncIteration: the shell has exited (``exit_code``/``exit_signal`` are set) or the
                server closed normally.
            errors.SessionRefused: the server closed with a 4xxx code (ticket refused 4401, host gone 4404,
                host offline 4409, the agent could not open a shell 4502).
            errors.StreamClosed: the connection was lost.
        """
        while True:
            try:
                message = await self._ws.recv()
            except ConnectionClosed as exc:
                self._raise_unless_normal(exc)
                raise StopAsyncIteration from None
            if isinstance(message, bytes):
                return message
            self._control(message)

    def _control(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return
        if isinstance(message, dict) and message.get("type") == "exit":
            self.exited = True
            self.exit_code = _int_or_none(message.get("exit_code"))
            self.exit_signal = _int_or_none(message.get("signal"))

    def _raise_unless_normal(self, exc: ConnectionClosed) -> None:
        """A normal end (the shell exited, or we closed) is quiet; a refusal or a loss is not."""
        code = exc.rcvd.code if exc.rcvd is not None else None
        if self.exited or code == 1000:
            return
        if code is not None and 4000 <= code < 5000:
            raise refusal(exc) from None
        why = f"{code} {exc.rcvd.reason}".strip() if exc.rcvd is not None else "connection dropped"
        raise errors.StreamClosed(f"terminal session lost ({why})") from None

    async def send(self, data: bytes) -> None:
        """Bytes for the PTY: keys, pasted text (``\\r`` is enter, ``\\x03`` ctrl+c).

        Raises:
            errors.SessionRefused: the server had closed the session with a 4xxx code.
            errors.StreamClosed: the session has ended or its connection was lost.
        """
        try:
            await self._ws.send(data)
        except ConnectionClosed as exc:
            self._raise_unless_normal(exc)
            raise errors.StreamClosed("the terminal session has ended") from None

    async def resize(self, cols: int, rows: int) -> None:
        """The terminal's new size; the shell's programs get SIGWINCH.

        Args:
            cols: the width, in cells (1 to 1000).
            rows: the height, in cells (1 to 1000).

        Raises:
            ValueError: a size out of range (nothing is sent).
            errors.SessionRefused: the server had closed the session with a 4xxx code.
            errors.StreamClosed: the session has ended or its connection was lost.
        """
        if not (1 <= cols <= 1000 and 1 <= rows <= 1000):
            raise ValueError(f"terminal size {cols}x{rows} is out of range (1 to 1000 each)")
        try:
            await self._ws.send(json.dumps({"type": "resize", "cols": cols, "rows": rows}))
        except ConnectionClosed as exc:
            self._raise_unless_normal(exc)
            raise errors.StreamClosed("the terminal session has ended") from None

    @property
    def closed(self) -> bool:
        """True once the WebSocket is closed (by either side)."""
        return self._ws.close_code is not None

    async def close(self) -> None:
        """End the session: the server hangs up the shell (SIGHUP to its process group). Never raises."""
        await self._ws.close()


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
