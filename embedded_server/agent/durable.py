"""Durable, resumable streams: output spooled to disk and delivered to the server across any loss.

A producer (a job's process today, an AI agent session next) appends its output to a :class:`Spool`,
an append-only file of records ``<stream: u8><length: u32 LE><bytes>``, so it is never slowed by the
network and nothing is held in memory. :func:`deliver` dials the stream WebSocket with the owner's id
(``/opencomputers/ws/agent/stream?job_id=…``), is told how many payload bytes the server already has
(``{"type": "resume", "offset"}``), sends the rest as binary frames (first byte = the record's stream),
follows the spool live, and after the last byte sends the text ``exit`` frame; the server answers
``done`` and the owner drops the spool. A dropped connection or a restarted server is redialled with
backoff and resumes where the server stands. The wire is docs/protocol.md "Job output streams".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

from websockets.exceptions import ConnectionClosed, InvalidHandshake

from oc_tui.api.backoff import backoff_delay

from .. import protocol
from .streams import StreamDialer

log = logging.getLogger("oc_agent.durable")

RECORD = struct.Struct("<BI")  # stream id, payload length
READ_SIZE = 256 * 1024  # bytes read from the spool per frame
INDEX_EVERY = 1 << 20  # a (payload offset, file offset) mark every MiB of spool: resuming seeks near it
MAX_FRAME = 2**22  # bytes: the largest frame accepted from the server (its frames are small JSON)
WRITE_LIMIT = 2**20  # bytes buffered for sending before a send waits
BACKOFF_BASE, BACKOFF_CAP, BACKOFF_FLOOR = 0.2, 5.0, 0.05  # seconds: redials wait 0.05 s … 5 s


class FrameSink(Protocol):
    """Where a spool's frames go: a stream WebSocket (anything with an awaitable ``send``)."""

    async def send(self, message: bytes | str) -> None:
        """Send one frame: binary for bytes, text for str."""


class Spool:
    """One owner's output on disk, appended as it arrives and read back from any payload offset.

    Args:
        path: the spool file; created (truncated) with mode 0600.
        follow: another process writes the file (a job's supervisor): it is neither created nor
            truncated, nothing is appended here, and :meth:`refresh` takes in what was written.

    ``written`` counts payload bytes, ``size`` file bytes; ``end`` is the owner's final report once
    :meth:`finish` was called. Followers wait on ``changed``, an event replaced after every change.
    """

    def __init__(self, path: Path, follow: bool = False) -> None:
        self.path = path
        self._fd = -1 if follow else os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        self.size = 0
        self.written = 0
        self.marks: list[tuple[int, int]] = [(0, 0)]  # (payload offset, file offset) at record starts
        self.end: dict[str, Any] | None = None
        self.changed = asyncio.Event()

    def append(self, stream: int, data: bytes) -> None:
        """Add one record of ``data`` from ``stream`` (1 = stdout, 2 = stderr); ignored once closed."""
        if self._fd < 0:
            return
        if self.size - self.marks[-1][1] >= INDEX_EVERY:
            self.marks.append((self.written, self.size))
        os.writev(self._fd, [RECORD.pack(stream, len(data)), data])
        self.size += RECORD.size + len(data)
        self.written += len(data)
        self._notify()

    def refresh(self) -> bool:
        """Take in the whole records another process appended since the last call (a record still being
        written waits for the next call); True when there were any (followers are woken)."""
        try:
            with open(self.path, "rb", buffering=0) as handle:
                total = os.fstat(handle.fileno()).st_size
                size, written = self.size, self.written
                while size + RECORD.size <= total:
                    handle.seek(size)
                    _, length = RECORD.unpack(handle.read(RECORD.size))
                    if size + RECORD.size + length > total:
                        break
                    if size - self.marks[-1][1] >= INDEX_EVERY:
                        self.marks.append((written, size))
                    size += RECORD.size + length
                    written += length
        except FileNotFoundError:
            return False
        if size == self.size:
            return False
        self.size, self.written = size, written
        self._notify()
        return True

    def finish(self, end: dict[str, Any]) -> None:
        """Record the owner's final report (sent after the last byte in the ``exit`` frame)."""
        self.end = end
        self._notify()

    def _notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def close(self, delete: bool) -> None:
        """Stop appending; with ``delete`` remove the file too."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if delete:
            self.path.unlink(missing_ok=True)

    def chunks(self) -> list[tuple[int, bytes]]:
        """The whole spool as ``(stream, bytes)`` pairs in order, consecutive records of a stream merged."""
        raw = self.path.read_bytes()
        output: list[tuple[int, bytes]] = []
        pos = 0
        while pos + RECORD.size <= len(raw):
            stream, length = RECORD.unpack_from(raw, pos)
            body = raw[pos + RECORD.size : pos + RECORD.size + length]
            pos += RECORD.size + length
            if output and output[-1][0] == stream:
                output[-1] = (stream, output[-1][1] + body)
            else:
                output.append((stream, body))
        return output

    def _seek(self, handle: IO[bytes], offset: int) -> int:
        """Position ``handle`` at payload ``offset``; returns how many bytes of the record there to skip."""
        payload, file_pos = 0, 0
        for mark in self.marks:
            if mark[0] <= offset:
                payload, file_pos = mark
        handle.seek(file_pos)
        while payload < offset:
            header = handle.read(RECORD.size)
            if len(header) < RECORD.size:
                return 0
            _, length = RECORD.unpack(header)
            if payload + length > offset:
                handle.seek(-RECORD.size, os.SEEK_CUR)
                return offset - payload
            handle.seek(length, os.SEEK_CUR)
            payload += length
        return 0

    async def send_from(self, ws: FrameSink, offset: int, exit_frame: Callable[[], str]) -> None:
        """Send the payload from ``offset`` on as binary frames, live, then ``exit_frame()`` once ended.

        Consecutive records of one stream are merged into one frame ``[stream byte][bytes]``.
        """
        offset = max(0, min(offset, self.written))
        with open(self.path, "rb", buffering=0) as handle:
            skip = self._seek(handle, offset)
            file_pos = handle.tell()
            pending = b""
            while True:
                changed = self.changed
                ended = self.end is not None
                if file_pos < self.size:
                    chunk = pending + handle.read(min(READ_SIZE, self.size - file_pos))
                    file_pos = handle.tell()
                    view = memoryview(chunk)
                    pos, current = 0, -1
                    frames: list[bytes] = []
                    parts: list[memoryview] = []
                    while pos + RECORD.size <= len(view):
                        stream, length = RECORD.unpack_from(view, pos)
                        if pos + RECORD.size + length > len(view):
                            break
                        body = view[pos + RECORD.size + skip : pos + RECORD.size + length]
                        skip = 0
                        pos += RECORD.size + length
                        if stream != current and parts:
                            frames.append(bytes([current]) + b"".join(parts))
                            parts = []
                        current = stream
                        parts.append(body)
                    if parts:
                        frames.append(bytes([current]) + b"".join(parts))
                    pending = bytes(view[pos:])
                    for frame in frames:
                        await ws.send(frame)
                    continue
                if ended:
                    await ws.send(exit_frame())
                    return
                await changed.wait()


async def deliver(
    spool: Spool, streams: StreamDialer, key: str, owner_id: str, on_over: Callable[[], None]
) -> None:
    """Deliver ``spool`` to the server until it needs nothing more; redial with backoff after any loss.

    Args:
        spool: the owner's output; the ``exit`` frame carries ``spool.end``.
        streams: dials the stream WebSocket.
        key: the query key and the ``exit`` frame's id field naming the owner (``job_id``).
        owner_id: the owner's id.
        on_over: called once the server answered ``done`` or refused the stream (close 4404, or a
            refusal of the host key): the owner stops its work if it still runs and drops the spool.
    """

    def exit_frame() -> str:
        return protocol.encode(
            protocol.JOB_EXIT, **{key: owner_id}, output_bytes=spool.written, **(spool.end or {})
        )

    attempt = 0
    while True:
        try:
            async with streams.open(key, owner_id, max_size=MAX_FRAME, write_limit=WRITE_LIMIT) as ws:
                first = protocol.decode(await ws.recv())
                if first["type"] == protocol.JOB_DONE:  # the server needs nothing more
                    on_over()
                    return
                attempt = 0
                sender = asyncio.create_task(spool.send_from(ws, int(first.get("offset") or 0), exit_frame))
                try:
                    async for frame in ws:
                        if protocol.decode(frame)["type"] == protocol.JOB_DONE:
                            await ws.close()
                            on_over()
                            return
                finally:
                    sender.cancel()
                    with contextlib.suppress(BaseException):
                        await sender
        except asyncio.CancelledError:
            raise
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            if code == protocol.CLOSE_UNKNOWN_JOB or code in protocol.REFUSALS:
                log.warning("server refused the stream of %s (%s): stopping it", owner_id, code)
                on_over()
                return
        except (OSError, TimeoutError, InvalidHandshake, ValueError, KeyError, json.JSONDecodeError) as exc:
            log.debug("stream of %s: %s", owner_id, exc)
        delay = backoff_delay(attempt, base=BACKOFF_BASE, cap=BACKOFF_CAP, floor=BACKOFF_FLOOR)
        attempt += 1
        await asyncio.sleep(delay)
