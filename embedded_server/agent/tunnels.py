"""The agent's side of tunnels: a TCP connection to a port of this host, relayed on a request stream.

``tunnel.connect`` connects to ``127.0.0.1:<port>`` before it answers (so "nothing is listening" is the
request's answer, which the control plane turns into a 502 page) and then relays bytes both ways; the
control plane speaks HTTP/1.1 over them and keeps the connection for the next request while the app
keeps it alive. ``tunnel.websocket`` opens a WebSocket to the app itself and relays its messages, so a
WebSocket through a tunnel is message for message what the app sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from .. import protocol
from ..race import until_first_ends
from .capabilities import Capability, StreamReply
from .streams import relay

log = logging.getLogger("oc_agent.tunnels")

LOOPBACK = "127.0.0.1"
CONNECT_TIMEOUT = 5.0  # seconds for the TCP connect (and the WebSocket handshake) to the app
RELAY_CHUNK = 64 * 1024  # the most app bytes sent in one binary frame
MAX_MESSAGE = 16 * 1024 * 1024  # bytes: the largest WebSocket message relayed from the app


def _not_listening(port: int, why: str = "") -> protocol.AgentError:
    detail = f" ({why})" if why else ""
    return protocol.AgentError("NOT_LISTENING", f"nothing is listening on port {port} of the host{detail}")


async def tunnel_connect(call: protocol.TunnelConnect) -> StreamReply:
    """``tunnel.connect``: connect to the port, then relay it on the stream.

    Raises:
        AgentError: NOT_LISTENING when the connection is refused or does not complete in time.
    """
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            reader, writer = await asyncio.open_connection(LOOPBACK, call.port, limit=4 * RELAY_CHUNK)
    except TimeoutError:
        raise _not_listening(call.port, "connect timed out") from None
    except OSError as exc:
        refused = isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED
        raise _not_listening(call.port, "connection refused" if refused else str(exc)) from None

    async def serve(ws: ClientConnection) -> None:
        await relay(ws, reader, writer, "the app closed the connection", RELAY_CHUNK)

    return StreamReply({}, serve, release=writer.close)


async def tunnel_websocket(call: protocol.TunnelWebSocket) -> StreamReply:
    """``tunnel.websocket``: open the app's WebSocket, answer its subprotocol, relay messages.

    Raises:
        AgentError: NOT_LISTENING when nothing listens; FORBIDDEN (403 … the app's status) when the app
            refuses the handshake.
    """
    uri = f"ws://{LOOPBACK}:{call.port}{call.target if call.target.startswith('/') else '/' + call.target}"
    try:
        app = await connect(
            uri,
            additional_headers=call.headers,
            subprotocols=[Subprotocol(name) for name in call.subprotocols] or None,
            open_timeout=CONNECT_TIMEOUT,
            ping_interval=None,
            max_size=MAX_MESSAGE,
            compression=None,
        )
    except InvalidStatus as exc:
        raise protocol.AgentError(
            "WEBSOCKET_REFUSED", f"the app refused the WebSocket with HTTP {exc.response.status_code}"
        ) from None
    except (OSError, TimeoutError) as exc:
        raise _not_listening(call.port, str(exc) or type(exc).__name__) from None
    except InvalidHandshake as exc:
        raise protocol.AgentError(
            "WEBSOCKET_REFUSED", f"the app's WebSocket handshake failed: {exc}"
        ) from None

    async def serve(ws: ClientConnection) -> None:
        async def pump(source: ClientConnection, sink: ClientConnection) -> None:
            async for message in source:
                await sink.send(message)

        try:
            await until_first_ends(pump(ws, app), pump(app, ws), ignore=(ConnectionClosed, OSError))
        finally:
            code = app.close_code or 1000
            with contextlib.suppress(ConnectionClosed, OSError):
                await app.close()
            with contextlib.suppress(ConnectionClosed, OSError):
                await ws.close(code if code in (1000, 1001) or 3000 <= code < 5000 else 1000)

    def release() -> None:
        asyncio.get_running_loop().create_task(app.close())

    return StreamReply({"subprotocol": app.subprotocol}, serve, release=release)


def capability() -> Capability:
    """The tunnel methods (``tunnel.connect``, ``tunnel.websocket``)."""
    return Capability(
        "tunnels",
        {protocol.TunnelConnect: tunnel_connect, protocol.TunnelWebSocket: tunnel_websocket},
    )
