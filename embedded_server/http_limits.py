"""Time and count bounds on what an HTTP client can hold of the server, and quiet repeated errors.

uvicorn bounds header size, WebSocket message size and idle keep-alive connections, but has no limit on
how long a request may take to *arrive* (uvicorn issue #157): a client that sends half a request line,
or announces a 2 GB body and stops, holds its connection (and a file descriptor) for ever — slowloris.
:class:`BoundedH11Protocol` is uvicorn's own h11 protocol with two timers added, and nothing else:

- **headers**: a request's headers must be complete within :data:`HEADER_TIMEOUT` seconds of the
  connection being made (or of the previous response on a kept-alive connection); else it is closed.
- **body**: while a request body is coming, the client may be silent for at most :data:`BODY_IDLE`
  seconds while the server is ready to read (time the server itself paused reading — an upload waiting
  for a slow agent — does not count); else it is closed and the route sees a client that went away.

Connections themselves are capped by uvicorn's ``limit_concurrency`` (503 above it), sized by
:func:`connection_cap` from the file-descriptor limit, which :func:`raise_fd_limit` first lifts to its
hard maximum. :class:`RepeatedErrors` logs a repeated event-loop error (``accept()`` out of file
descriptors) once with a count, instead of a traceback per occurrence.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT = float(os.environ.get("OC_HEADER_TIMEOUT") or 10.0)
"""Seconds a client has to send a request's headers (environment: ``OC_HEADER_TIMEOUT``)."""
BODY_IDLE = float(os.environ.get("OC_BODY_IDLE_TIMEOUT") or 30.0)
"""Seconds a request body may stall while the server waits for it (``OC_BODY_IDLE_TIMEOUT``)."""
MAX_CONNECTIONS = 32768
"""Connections (and in-flight requests) above which uvicorn answers 503, fd limit permitting."""
FD_RESERVE = 128
"""File descriptors kept for the database, job output logs and spools, beyond the connection cap."""
REPEAT_WINDOW = 60.0
"""Seconds between the summary lines of an error that keeps repeating."""

log = logging.getLogger("oc_server")


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 HTTP protocol plus the header deadline and the body idle timeout (module doc)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """As uvicorn's, then the header deadline starts."""
        super().connection_made(transport)
        self._timer: asyncio.TimerHandle | None = None
        self._upgraded = False
        self._arm(HEADER_TIMEOUT, "headers")

    def data_received(self, data: bytes) -> None:
        """As uvicorn's; then the headers' deadline ends once they are complete, and a body coming in
        restarts its idle timer."""
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        """As uvicorn's; a kept-alive connection's next request gets a new header deadline."""
        super().on_response_complete()
        self._follow()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        """A WebSocket is its own protocol from here (with its own pings): no more timers."""
        self._upgraded = True
        self._disarm()
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        """As uvicorn's, with the timer cancelled."""
        self._disarm()
        super().connection_lost(exc)

    def _follow(self) -> None:
        """Arm the timer the connection's state calls for: headers, body, or none."""
        if self._upgraded or self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._timer is None or self._timer_kind != "headers":
                self._arm(HEADER_TIMEOUT, "headers")
        elif state is h11.SEND_BODY:
            self._arm(BODY_IDLE, "body")
        else:
            self._disarm()

    def _arm(self, seconds: float, kind: str) -> None:
        self._disarm()
        self._timer_kind = kind
        self._timer = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.cancel()
        self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing() or self._upgraded:
            return
        state = self.conn.their_state
        if self._timer_kind == "body" and state is h11.SEND_BODY and self.flow.read_paused:
            self._arm(BODY_IDLE, "body")  # we stopped reading (back pressure), the client did not stall
            return
        if (self._timer_kind, state) in (("headers", h11.IDLE), ("body", h11.SEND_BODY)):
            what = "headers" if self._timer_kind == "headers" else "body stalled"
            limit = HEADER_TIMEOUT if self._timer_kind == "headers" else BODY_IDLE
            REPEATED.count(f"closed connections whose request {what} beyond {limit:g} s")
            self.transport.close()


class RepeatedErrors:
    """Counts repeated events: the first is logged, then one line per :data:`REPEAT_WINDOW` with how many
    more there were. Also the event loop's exception handler (:meth:`loop_handler`).
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[float, int]] = {}

    def count(self, message: str, level: int = logging.WARNING) -> None:
        """Note one occurrence of ``message``; log it now if it is new or its window has passed."""
        now = time.monotonic()
        last, pending = self._seen.get(message, (0.0, 0))
        if now - last >= REPEAT_WINDOW:
            suffix = f" ({pending + 1} times in the last {REPEAT_WINDOW:g} s)" if pending else ""
            log.log(level, "%s%s", message, suffix)
            self._seen[message] = (now, 0)
        else:
            self._seen[message] = (last, pending + 1)

    def loop_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """An asyncio exception handler: the message and the exception's one-line summary, counted."""
        exc = context.get("exception")
        what = context.get("message", "event loop error")
        if exc is not None:
            what = f"{what}: {type(exc).__name__}: {exc}"
        self.count(what, logging.ERROR)


REPEATED = RepeatedErrors()
"""The one counter of repeated errors: the protocol's closures and the event loop's errors."""


def raise_fd_limit() -> int:
    """Lift this process's soft limit on open files to its hard limit (at most 1,048,576), as servers
    do at start; the soft limit in force afterwards (unchanged where the platform has no such limit)."""
    try:
        import resource
    except ImportError:  # Windows: no RLIMIT_NOFILE
        return 8192
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard if hard != resource.RLIM_INFINITY else 1 << 20, 1 << 20)
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(fd_limit: int) -> int:
    """uvicorn's ``limit_concurrency`` for an open-file limit: :data:`MAX_CONNECTIONS`, or fewer so that
    :data:`FD_RESERVE` descriptors always remain for the server's own files."""
    return max(16, min(MAX_CONNECTIONS, fd_limit - FD_RESERVE))
