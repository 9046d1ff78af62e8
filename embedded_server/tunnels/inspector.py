"""The traffic inspector (as ngrok's): the last requests of each tunnel, in memory, and a live feed.

Each proxied request is a :class:`Record`: method, target, client address, the headers as the app got
them and as it answered (credentials masked when shown), status, time to the response head and to its
end, body sizes, and the first :data:`BODY_CAPTURE` bytes of each body. A record is published when the
app's response head arrives and again when it ends, so a long stream (SSE) shows while it runs.
Records live in memory only: ``MAX_RECORDS`` per tunnel, gone with the server or the tunnel.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime

from oc_tui.api.models import TunnelRequest, format_timestamp, utcnow

from .. import durable

MAX_RECORDS = 100  # requests kept per tunnel
BODY_CAPTURE = 10 * 1024  # bytes of each body kept
LISTENER_BACKLOG = 256  # events a slow live reader may fall behind before it is cut off
MASKED = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
OWNER = "tunnel"


def mask(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers as the inspector shows them: credential values replaced by ``***`` (an Authorization
    header keeps its scheme: ``Bearer ***``)."""
    shown = []
    for name, value in headers:
        if name.lower() in MASKED:
            scheme, _, rest = value.partition(" ")
            value = f"{scheme} ***" if name.lower().endswith("authorization") and rest else "***"
        shown.append((name, value))
    return shown


@dataclass
class Body:
    """A body passing through: its size, and its first ``BODY_CAPTURE`` bytes."""

    head: bytearray = field(default_factory=bytearray)
    size: int = 0

    def take(self, chunk: bytes) -> None:
        """Count ``chunk`` and keep what fits."""
        self.size += len(chunk)
        room = BODY_CAPTURE - len(self.head)
        if room > 0:
            self.head += chunk[:room]

    @property
    def whole(self) -> bool:
        """Whether every byte of the body was kept (so it can be replayed)."""
        return self.size <= BODY_CAPTURE


@dataclass
class Record:
    """One request through a tunnel (the app's view of it: ``headers`` as forwarded)."""

    id: int
    tunnel_id: str
    method: str
    target: str
    client: str
    headers: list[tuple[str, str]]
    started: float = field(default_factory=time.monotonic)
    started_at: datetime = field(default_factory=utcnow)
    request: Body = field(default_factory=Body)
    response: Body = field(default_factory=Body)
    status: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    first_byte_ms: float | None = None
    duration_ms: float | None = None
    complete: bool = False
    error: str | None = None
    replay_of: int | None = None

    def model(self) -> TunnelRequest:
        """The API's view: headers masked, bodies as text (UTF-8, undecodable bytes replaced)."""
        return TunnelRequest(
            id=self.id,
            tunnel_id=self.tunnel_id,
            method=self.method,
            target=self.target,
            client=self.client,
            started_at=self.started_at,
            status=self.status,
            first_byte_ms=self.first_byte_ms,
            duration_ms=self.duration_ms,
            complete=self.complete,
            error=self.error,
            replay_of=self.replay_of,
            request_headers=mask(self.headers),
            response_headers=mask(self.response_headers),
            request_bytes=self.request.size,
            response_bytes=self.response.size,
            request_body=self.request.head.decode("utf-8", "replace"),
            response_body=self.response.head.decode("utf-8", "replace"),
            request_body_truncated=not self.request.whole,
            response_body_truncated=not self.response.whole,
        )


class Inspector:
    """The recent requests of every tunnel, and their live readers."""

    def __init__(self) -> None:
        self._records: dict[str, collections.deque[Record]] = {}
        self._readers: dict[str, set[asyncio.Queue[Record | None]]] = {}
        self._ids = itertools.count(1)

    def start(
        self, tunnel_id: str, method: str, target: str, client: str, headers: list[tuple[str, str]]
    ) -> Record:
        """A request is on its way to the app: its record (kept once the app answers or it fails)."""
        return Record(next(self._ids), tunnel_id, method, target, client, headers)

    def answered(self, record: Record, status: int, headers: list[tuple[str, str]]) -> None:
        """The app's response head arrived: keep the record and tell the live readers."""
        record.status = status
        record.response_headers = headers
        record.first_byte_ms = (time.monotonic() - record.started) * 1000
        records = self._records.setdefault(record.tunnel_id, collections.deque(maxlen=MAX_RECORDS))
        records.append(record)
        self._publish(record)

    def finished(self, record: Record, *, error: str | None = None, status: int | None = None) -> None:
        """The exchange is over (``error``: why it broke; ``status``: ours, when the app never answered)."""
        record.duration_ms = (time.monotonic() - record.started) * 1000
        record.complete = error is None
        record.error = error
        if record.status is None:
            self.answered(record, status or 502, [])
            record.first_byte_ms = None
        self._publish(record)

    def records(self, tunnel_id: str) -> list[Record]:
        """The tunnel's kept records, newest first."""
        return list(reversed(self._records.get(tunnel_id, ())))

    def record(self, tunnel_id: str, record_id: int) -> Record | None:
        """One kept record of the tunnel, or None."""
        return next((r for r in self._records.get(tunnel_id, ()) if r.id == record_id), None)

    def forget(self, tunnel_id: str) -> None:
        """The tunnel is gone: drop its records and end its live readers."""
        self._records.pop(tunnel_id, None)
        for queue in self._readers.pop(tunnel_id, ()):
            _offer(queue, None)

    def _publish(self, record: Record) -> None:
        for queue in list(self._readers.get(record.tunnel_id, ())):
            if not _offer(queue, record):  # too far behind: cut it off (it reconnects and lists)
                self._readers[record.tunnel_id].discard(queue)
                _offer(queue, None, force=True)

    def events(self, tunnel_id: str) -> AsyncGenerator[str, None]:
        """SSE frames of the tunnel's records as they are kept and as they end (event ``request``;
        ``id:`` is the record's id), until the tunnel is deleted or the reader falls too far behind.

        The reader is registered now, before the response starts: a client that saw the stream open
        misses nothing kept after that."""
        queue: asyncio.Queue[Record | None] = asyncio.Queue(LISTENER_BACKLOG)
        self._readers.setdefault(tunnel_id, set()).add(queue)

        async def frames() -> AsyncGenerator[str, None]:
            try:
                while (record := await queue.get()) is not None:
                    data = record.model().model_dump_json()
                    yield durable.sse_event(record.id, "request", OWNER, tunnel_id, data, _now())
            finally:
                readers = self._readers.get(tunnel_id)
                if readers is not None:
                    readers.discard(queue)

        return frames()


def _now() -> str:
    return format_timestamp(utcnow())


def _offer(queue: asyncio.Queue[Record | None], item: Record | None, *, force: bool = False) -> bool:
    if force and queue.full():
        queue.get_nowait()
    try:
        queue.put_nowait(item)
    except asyncio.QueueFull:
        return False
    return True
