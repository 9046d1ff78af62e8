"""Ticket → WebSocket, for the terminal and desktop sessions.

The reference hands out ``{ticket, ws_url, expires_at}``; the client connects to ``ws_url`` at once (it
already carries the ticket). Failures become the client's exceptions: :class:`errors.ConnectionFailed`
when the server cannot be reached, :class:`errors.SessionRefused` when it closes the socket with a reason.
"""

from __future__ import annotations

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from . import errors
from .models import Ticket

OPEN_TIMEOUT = 10.0
"""Seconds the WebSocket handshake of a session may take."""
MAX_FRAME = 16 * 1024 * 1024
"""The largest WebSocket message accepted, in bytes."""


async def open_session_socket(ticket: Ticket, *, open_timeout: float = OPEN_TIMEOUT) -> ClientConnection:
    """Connect to the ticket's ``ws_url``; the caller closes the returned connection.

    Args:
        ticket: a fresh terminal or desktop ticket (its ``ws_url`` carries it).
        open_timeout: seconds the WebSocket handshake may take.

    Returns:
        The open WebSocket (frames up to 16 MiB, no compression, pinged every 20 s).

    Raises:
        errors.SessionRefused: the server answered the upgrade with an HTTP error status.
        errors.ConnectionFailed: the server cannot be reached, or the handshake failed or timed out.
    """
    try:
        return await connect(
            ticket.ws_url,
            open_timeout=open_timeout,
            max_size=MAX_FRAME,
            compression=None,
            ping_interval=20,
            ping_timeout=20,
        )
    except InvalidStatus as exc:
        raise errors.SessionRefused(
            None, f"server refused the WebSocket ({exc.response.status_code})"
        ) from None
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise errors.ConnectionFailed(
            f"cannot open {ticket.ws_url.split('?')[0]}: {exc or type(exc).__name__}"
        ) from None


def refusal(exc: ConnectionClosed) -> errors.SessionRefused:
    """The exception for a session socket the server closed.

    Args:
        exc: the ``ConnectionClosed`` websockets raised.

    Returns:
        :class:`errors.SessionRefused` with the close code (None when none was received) and reason.
    """
    rcvd = exc.rcvd
    return errors.SessionRefused(rcvd.code if rcvd else None, rcvd.reason if rcvd else "connection lost")
