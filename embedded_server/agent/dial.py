"""The agent's one way to open a WebSocket to the server: the URL, the host key, the timeouts, the frame cap.

The control connection, the request streams (:mod:`.streams`) and the durable streams (:mod:`.durable`)
all dial through :func:`dial`, so the handshake every agent connection makes (docs/protocol.md
"Authentication") is written once.
"""

from __future__ import annotations

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from .. import protocol

DIAL_TIMEOUT = 10.0  # seconds for the TCP connect and the WebSocket handshake
MAX_FRAME = 16 * 1024 * 1024  # bytes: the largest frame a request stream accepts
WRITE_LIMIT = 32 * 1024  # bytes buffered for sending before a send waits (websockets' default)


def agent_url(server: str, path: str = protocol.AGENT_PATH) -> str:
    """The WebSocket URL of ``path`` on a server root URL (http→ws, https→wss).

    Args:
        server: the server root, ``http://…`` or ``https://…`` (a trailing slash is ignored).
        path: the WebSocket path, by default the control connection's.

    Returns:
        ``ws://…`` or ``wss://…`` followed by ``path``.

    Raises:
        ValueError: the URL does not start with http(s):// or is not a valid URL.
    """
    given = server = server.strip().rstrip("/")
    for plain, secure in (("http://", "ws://"), ("https://", "wss://")):
        if server.startswith(plain):
            server = secure + server[len(plain) :]
    if not server.startswith(("ws://", "wss://")):
        raise ValueError(f"server URL must start with http:// or https://, not {server!r}")
    try:
        parse_uri(server + path)
    except (InvalidURI, ValueError):
        raise ValueError(f"server URL {given!r} is not a valid URL") from None
    return server + path


def dial(
    url: str,
    key: str,
    *,
    max_size: int = MAX_FRAME,
    write_limit: int = WRITE_LIMIT,
    compress: bool = False,
) -> connect:
    """Connect to ``url`` with ``key`` as bearer token; use as ``async with dial(…) as ws``.

    Args:
        url: a ``ws(s)://`` URL from :func:`agent_url` (with its query, for a stream).
        key: the ``Authorization`` bearer: the host key (``hk_…``) for the control connection, the
            current stream key (``sk_…``) for a stream.
        max_size: the largest frame accepted from the server, in bytes.
        write_limit: bytes buffered for sending before ``send`` waits (the stream's back pressure).
        compress: offer permessage-deflate (the control connection's small JSON frames); bulk streams
            go uncompressed.

    Returns:
        The websockets connector: awaiting it or entering it opens the connection; it raises OSError,
        TimeoutError or InvalidHandshake when the server cannot be reached or refuses the handshake.
        Heartbeats are the protocol's own (websockets' pings are off).
    """
    return connect(
        url,
        additional_headers={"Authorization": f"Bearer {key}"},
        open_timeout=DIAL_TIMEOUT,
        ping_interval=None,
        max_size=max_size,
        write_limit=write_limit,
        compression="deflate" if compress else None,
    )
