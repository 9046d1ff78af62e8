"""The binary framing of a job's output stream: what our client asks for instead of SSE (docs/api.md,
"Binary frames"), defined once for the server's encoder (``embedded_server.durable.FrameEncoder``) and
this client's decoder.

A frame is a head ``<kind: u8><stream: u8><id: u64 LE><length: u32 LE>`` and ``length`` payload bytes:

- :data:`OUTPUT`: the raw output bytes of ``stream`` (1 stdout, 2 stderr); ``id`` is the same byte
  offset an SSE event would carry (0: none, live output past the cap);
- :data:`EVENT`: any other event (``truncated``, the final event) as the same JSON an SSE ``data:`` line
  carries, with its id (0: none);
- :data:`KEEPALIVE`: empty, first and after every quiet interval;
- :data:`DONE`: empty, the end (SSE's ``data: [DONE]``).

SSE puts every output byte through JSON or base64 and splits it into 45 KiB events; this carries the
bytes as they are, a megabyte a frame, so a reader spends its time on nothing but the bytes.
"""

from __future__ import annotations

import struct
from collections import deque

MEDIA_TYPE = "application/vnd.oc-tui.frames"
"""The media type a client puts in ``Accept`` (beside ``text/event-stream``) and the server answers with."""
HEAD = struct.Struct("<BBQI")
"""A frame's head: kind, stream, id (0: none), payload length in bytes."""
OUTPUT, EVENT, KEEPALIVE, DONE = 1, 2, 3, 4
KINDS = frozenset((OUTPUT, EVENT, KEEPALIVE, DONE))
MAX_PAYLOAD = 16 * 1024 * 1024
"""Bytes: the largest payload a frame may carry; a reader refuses bigger ones (its memory bound)."""


class FrameError(ValueError):
    """The bytes are not frames of this format (an unknown kind, a payload over :data:`MAX_PAYLOAD`)."""


class FrameDecoder:
    """Frames out of a byte stream fed in pieces of any size; holds at most one frame's bytes (and the
    piece that completed it). Each payload byte is copied once (into its frame's ``bytes``), or not at
    all when a piece is exactly one payload.

    ``for kind, stream, event_id, payload in decoder.feed(data): …``.
    """

    def __init__(self) -> None:
        self._parts: deque[memoryview] = deque()
        self._size = 0
        self._head: tuple[int, int, int, int] | None = None

    @property
    def pending(self) -> int:
        """Bytes held that do not make a whole frame yet (0 at a clean end of the stream)."""
        return self._size + (HEAD.size if self._head is not None else 0)

    def feed(self, data: bytes) -> list[tuple[int, int, int, bytes]]:
        """Add ``data``; the frames it completed, in order, as ``(kind, stream, id, payload)``.

        Raises:
            FrameError: a head with an unknown kind or a payload longer than :data:`MAX_PAYLOAD`.
        """
        if data:
            self._parts.append(memoryview(data))
            self._size += len(data)
        frames = []
        while True:
            if self._head is None:
                if self._size < HEAD.size:
                    break
                kind, stream, event_id, length = HEAD.unpack(self._take(HEAD.size))
                if kind not in KINDS or length > MAX_PAYLOAD:
                    raise FrameError(f"not a frame of {MEDIA_TYPE} (kind {kind}, {length} bytes)")
                self._head = kind, stream, event_id, length
            kind, stream, event_id, length = self._head
            if self._size < length:
                break
            frames.append((kind, stream, event_id, self._take(length)))
            self._head = None
        return frames

    def _take(self, n: int) -> bytes:
        """The next ``n`` bytes held (there are at least ``n``)."""
        if not n:
            return b""
        self._size -= n
        first = self._parts[0]
        if len(first) == n and isinstance(first.obj, bytes) and len(first.obj) == n:
            self._parts.popleft()
            return first.obj  # a whole piece: no copy
        pieces = []
        while n:
            part = self._parts[0]
            if len(part) <= n:
                pieces.append(self._parts.popleft())
                n -= len(part)
            else:
                pieces.append(part[:n])
                self._parts[0] = part[n:]
                n = 0
        return b"".join(pieces)
