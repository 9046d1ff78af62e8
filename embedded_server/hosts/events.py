"""Host events: stored in the DB (so streams can resume), fanned out live to SSE subscribers.

A stream subscribes *before* it replays from the DB and then skips live events it already replayed,
so an event written between the two steps is neither lost nor sent twice. A subscriber that falls too
far behind is cut off rather than buffered without bound; its client resumes with Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from oc_tui.api.models import format_timestamp, utcnow

from ..db import Database
from ..durable import sse, sse_event

QUEUE_LIMIT = 1000
REPLAY_BATCH = 500
RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class Event:
    """One stored host event."""

    id: int
    tenant_id: str
    host_id: str
    type: str
    data: dict[str, Any]
    timestamp: str

    def sse(self) -> str:
        """One SSE frame; the ``data:`` JSON is self-describing, as MIOSA's clients read only it."""
        data = json.dumps(self.data, separators=(",", ":"))
        return sse_event(self.id, self.type, "host", self.host_id, data, self.timestamp)


@dataclass(eq=False)
class Subscription:
    """A stream's interest in the tenant's events (one host's, or all with ``host_id`` None)."""

    tenant_id: str
    host_id: str | None
    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    lagged: bool = False

    def wants(self, event: Event) -> bool:
        """Whether the event is for this stream."""
        return event.tenant_id == self.tenant_id and self.host_id in (None, event.host_id)


def _row_event(row: dict[str, Any]) -> Event:
    return Event(
        row["id"], row["tenant_id"], row["host_id"], row["type"], json.loads(row["data"]), row["timestamp"]
    )


class EventLog:
    """The host events: stored for resuming, fanned out to the live streams."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # Weak: a subscription made for a response that never started streaming (the client went
        # away first) disappears with its generator instead of collecting events forever.
        self.subscribers: weakref.WeakSet[Subscription] = weakref.WeakSet()

    def subscribe(self, tenant_id: str, host_id: str | None) -> Subscription:
        """Start collecting live events for a stream (see :meth:`stream`)."""
        sub = Subscription(tenant_id, host_id)
        self.subscribers.add(sub)
        return sub

    def append(self, tenant_id: str, host_id: str, type_: str, data: dict[str, Any]) -> Event:
        """Store an event and hand it to live subscribers. Call after the change it reports is stored."""
        timestamp = format_timestamp(utcnow())
        cursor = self.db.execute(
            "INSERT INTO events (tenant_id, host_id, type, data, timestamp) VALUES (?, ?, ?, ?, ?)",
            (tenant_id, host_id, type_, json.dumps(data), timestamp),
        )
        event = Event(int(cursor.lastrowid or 0), tenant_id, host_id, type_, data, timestamp)
        for sub in list(self.subscribers):
            if sub.wants(event) and not sub.lagged:
                try:
                    sub.queue.put_nowait(event)
                except asyncio.QueueFull:
                    sub.lagged = True
                    sub.queue.get_nowait()
                    sub.queue.put_nowait(None)
        return event

    def prune(self) -> None:
        """Forget events older than the retention (7 days)."""
        cutoff = format_timestamp(utcnow() - RETENTION)
        self.db.execute("DELETE FROM events WHERE timestamp < ?", (cutoff,))

    def replay(self, sub: Subscription, after: int) -> list[Event]:
        """The next stored events for ``sub`` after event id ``after`` (a batch)."""
        sql = "SELECT * FROM events WHERE tenant_id = ? AND id > ?"
        params: tuple[Any, ...] = (sub.tenant_id, after)
        if sub.host_id is not None:
            sql, params = sql + " AND host_id = ?", (*params, sub.host_id)
        return [_row_event(r) for r in self.db.all(sql + " ORDER BY id LIMIT ?", (*params, REPLAY_BATCH))]

    def close(self) -> None:
        """End every stream (server shutdown): uvicorn would otherwise wait on them."""
        for sub in list(self.subscribers):
            sub.lagged = True
            if sub.queue.full():
                sub.queue.get_nowait()
            sub.queue.put_nowait(None)

    def stream(self, sub: Subscription, last_event_id: int | None, keepalive: float) -> AsyncIterator[str]:
        """SSE text: replay after ``last_event_id`` (if given), then live events and keep-alives."""
        return sse(self._events(sub, last_event_id), keepalive)

    async def _events(self, sub: Subscription, last_event_id: int | None) -> AsyncGenerator[str, None]:
        try:
            sent = last_event_id if last_event_id is not None else -1
            if last_event_id is not None:
                while batch := self.replay(sub, sent):
                    yield "".join(event.sse() for event in batch)
                    sent = batch[-1].id
            while True:
                event = await sub.queue.get()
                if event is None:
                    return
                if event.id > sent:
                    sent = event.id
                    yield event.sse()
        finally:
            self.subscribers.discard(sub)
