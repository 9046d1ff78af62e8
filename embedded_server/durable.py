"""The durable, resumable output stream, server side: a log with live readers, the agent-facing loop
that fills it, and the one SSE encoder of the server.

An owner (a job now, an AI agent session later) has an :class:`OutputLog`: two files in a directory,
``<owner_id>.out`` with the output bytes (its streams together, in the order they were produced, at
most the cap) and ``<owner_id>.runs`` where each stream switch is noted as ``<offset: u64 LE><stream:
u8>``. An SSE event's ``id`` is the byte offset in ``.out`` after it, so a reader resumes anywhere, even
inside a chunk. Readers always read from the file: a slow reader costs disk reads, never server memory.
Output beyond the cap is not stored; it is handed to the readers connected at that moment through small
bounded queues, and the agent's stream is paused (WebSocket back-pressure) until every reader has room,
so nothing is buffered without bound.

The agent fills the log over a stream WebSocket it dials (docs/protocol.md): the server sends ``resume
{offset}``, the agent binary frames ``[stream byte][bytes]`` and then a text ``exit``, the server
answers ``done`` (:func:`serve_agent_stream`).

SSE (:func:`sse`): every event stream of the server, this log's and the host events', goes through it:
a ``: connected`` comment first, keep-alive comments while the producer is idle, events made by
:func:`sse_event` (``id:``, ``event:`` and a self-describing ``data:`` JSON ``{type, <owner>_id, data,
timestamp}``), and :data:`DONE` after a final event. A log's stream is also available in binary frames
(:class:`FrameEncoder`, ``oc_tui.api.frames``) for a client that asks for them: :func:`log_events` writes
either through an :class:`Encoder`.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import contextlib
import json
import logging
import os
import re
import struct
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO, Generic, TypeVar

from starlette.websockets import WebSocket, WebSocketDisconnect

from oc_tui.api import frames
from oc_tui.api.models import format_timestamp, utcnow

from . import protocol

log = logging.getLogger("oc_server.durable")

STDOUT, STDERR = 1, 2  # the stream byte of an output frame
STREAM_NAMES = {STDOUT: "stdout", STDERR: "stderr"}
CHUNK = "exec_chunk"  # the output event (MIOSA's SDKs' name): {stream, data: "<text or base64>", encoding?}
BASE64 = "base64"  # the ``encoding`` of an output event whose ``data`` is base64, not the text itself
RUN = struct.Struct("<QB")
EVENT_BYTES = 45 * 1024  # raw bytes per SSE event: base64 of it (61 440 chars) keeps a line under 64 KiB
MAX_LINE = 63 * 1024
READ_BATCH = 1024 * 1024  # bytes read from the log per write to the socket
LAG_LIMIT = 30.0  # seconds a reader may hold up the live (beyond the cap) output before it is cut off
# Bytes that JSON would have to escape as \u00XX: output with them goes as base64 (exact and compact).
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f]")

CONNECTED = ": connected\n\n"
KEEPALIVE = ": keepalive\n\n"
DONE = "data: [DONE]\n\n"

T = TypeVar("T", str, bytes)


def _now() -> str:
    return format_timestamp(utcnow())


# --- SSE -----------------------------------------------------------------------------------------------


def event_json(
    type_: str, owner: str, owner_id: str, data: str, timestamp: str, fields: dict[str, Any] | None = None
) -> str:
    """An event's self-describing JSON ``{"type", "<owner>_id", …fields, "data", "timestamp"}`` (compact):
    the ``data:`` line of an SSE event (:func:`sse_event`) and the payload of a binary event frame
    (:class:`FrameEncoder`). Arguments as for :func:`sse_event`."""
    extra = "".join(
        f"{json.dumps(k)}:{json.dumps(v, ensure_ascii=False)}," for k, v in (fields or {}).items()
    )
    return (
        f'{{"type":{json.dumps(type_)},"{owner}_id":{json.dumps(owner_id)},{extra}"data":{data},'
        f'"timestamp":{json.dumps(timestamp)}}}'
    )


def sse_event(
    event_id: int | None,
    type_: str,
    owner: str,
    owner_id: str,
    data: str,
    timestamp: str,
    fields: dict[str, Any] | None = None,
) -> str:
    """One SSE event whose ``data:`` is ``{"type", "<owner>_id", …fields, "data", "timestamp"}`` (compact
    JSON): the one frame both of MIOSA's SDKs parse (Go reads the ``data:`` JSON, Python the ``event:``).

    Args:
        event_id: the ``id:`` a client resumes after (None: no ``id:`` line).
        type_: the event type (also the ``event:`` line).
        owner: what the stream belongs to: ``"host"``, ``"job"`` (``"session"`` later).
        owner_id: its ID.
        data: the event's ``data`` member, already JSON text (an object, or a string for job output).
        timestamp: UTC ISO 8601 with ``Z``.
        fields: more top-level members (a job chunk's ``stream`` and ``encoding``, a job end's
            ``exit_code`` …), JSON-encodable.
    """
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = event_json(type_, owner, owner_id, data, timestamp, fields)
    return f"{head}event: {type_}\ndata: {body}\n\n"


async def sse(
    events: AsyncGenerator[T, None], keepalive: float, connected: T | None = None, idle: T | None = None
) -> AsyncIterator[T]:
    """The SSE body for a producer of event frames: ``: connected``, the frames, and a keep-alive comment
    after every ``keepalive`` seconds the producer stays silent. The producer ends the stream (after its
    final event and :data:`DONE`, or without them when the client should resume later); leaving early
    (the client went away) closes the producer. A binary stream (:class:`FrameEncoder`) gives its own
    ``connected`` and ``idle`` frames (None: the SSE comments)."""
    first: Any = CONNECTED if connected is None else connected  # T is str then
    quiet: Any = KEEPALIVE if idle is None else idle
    yield first
    pending: asyncio.Future[T] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=keepalive)
            if not done:
                yield quiet
                continue
            finished, pending = pending, None
            try:
                frame = finished.result()
            except StopAsyncIteration:
                return
            yield frame
    finally:
        if pending is not None and not pending.done():
            # The producer is running in that task: cancelling it ends (and closes) the producer there,
            # running its clean-up. Not awaited: the response's own cancellation may be in force here.
            pending.add_done_callback(_retrieve)
            pending.cancel()
        else:
            if pending is not None:
                _retrieve(pending)
            await events.aclose()


async def error_events(
    type_: str, owner: str, owner_id: str, code: str, message: str
) -> AsyncGenerator[str, None]:
    """A stream that is only an error (for :func:`sse`): one ``type_`` event whose data is ``{"error":
    {code, message}}`` (with ``reason`` = ``message`` on top, as MIOSA's Python SDK reads it), then
    :data:`DONE`. An SSE endpoint answers 200 with it where a JSON error would crash a stream reader."""
    data = json.dumps({"error": {"code": code, "message": message}})
    yield sse_event(None, type_, owner, owner_id, data, _now(), {"reason": message})
    yield DONE


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a finished producer step's outcome as seen (no "exception was never retrieved" warning)."""
    if not task.cancelled():
        task.exception()


# --- the output log --------------------------------------------------------------------------------------


class Reader:
    """One SSE reader of an output log (registered while its owner is live)."""

    def __init__(self) -> None:
        self.at_cap = False
        self.cut = False
        self.queue: asyncio.Queue[tuple[int, bytes | memoryview] | None] = asyncio.Queue(4)


def private_append(path: Path) -> BinaryIO:
    """``path`` opened unbuffered for appending, created readable by this user only (0600): output
    may hold what a job printed, which is nobody else's business even inside the 0700 data dir."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    return open(fd, "ab", buffering=0)


class OutputLog:
    """One owner's output log (a job's stdout and stderr …) and its live state.

    Args:
        directory: where the log's two files are (``<owner_id>.out``, ``<owner_id>.runs``).
        owner_id: whose output it is (a job ID; an agent session's later).
        cap: bytes stored at most; output beyond it goes to live readers only.
        truncated: the stored log already reached the cap (a log reopened from disk).
        finished: the owner has ended: no more output comes.
    """

    def __init__(self, directory: Path, owner_id: str, cap: int, *, truncated: bool, finished: bool) -> None:
        self.owner_id = owner_id
        self.cap = cap
        self.data_path = directory / f"{owner_id}.out"
        self.runs_path = directory / f"{owner_id}.runs"
        self.runs: list[tuple[int, int]] = []
        if self.runs_path.exists():
            raw = self.runs_path.read_bytes()
            self.runs = [RUN.unpack_from(raw, i) for i in range(0, len(raw) - len(raw) % RUN.size, RUN.size)]
        self.run_starts = [r[0] for r in self.runs]
        self.stored = min(self.data_path.stat().st_size, cap) if self.data_path.exists() else 0
        self.received = self.stored  # output bytes the agent has delivered (stored or not)
        self.truncated = truncated
        self.finished = finished
        self.exit: dict[str, Any] | None = None
        self.done = asyncio.Event()
        if finished:
            self.done.set()
        self._changed = asyncio.Event()
        self._progress = asyncio.Event()
        self.readers: set[Reader] = set()
        self._data: Any = None
        self._runs_file: Any = None
        self.generation = 0  # which agent stream connection currently feeds the log
        self._live_lock = asyncio.Lock()

    # notifications: waiters take the current event, then check state, then wait on it
    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def progressed(self) -> None:
        """A reader moved on: wake a ``feed()`` waiting for readers to reach the cap."""
        self._progress.set()
        self._progress = asyncio.Event()

    # --- writing (the agent's stream) --------------------------------------------------------------

    def _append(self, stream: int, data: memoryview) -> None:
        if self._data is None:
            self.data_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._data = private_append(self.data_path)
            self._runs_file = private_append(self.runs_path)
        if not self.runs or self.runs[-1][1] != stream:
            self._runs_file.write(RUN.pack(self.stored, stream))
            self.runs.append((self.stored, stream))
            self.run_starts.append(self.stored)
        self._data.write(data)
        self.stored += len(data)

    def store(self, stream: int, data: memoryview) -> None:
        """Store what fits under the cap (nobody is reading yet: an inline result)."""
        self.received += len(data)
        if not self.truncated:
            room = self.cap - self.stored
            if room:
                self._append(stream, data[:room])
            self.truncated = len(data) > room

    async def feed(self, stream: int, data: memoryview) -> None:
        """Take a chunk from the agent: store what fits under the cap, hand the rest to live readers."""
        self.received += len(data)
        if not self.truncated:
            room = self.cap - self.stored
            if len(data) <= room:
                self._append(stream, data)
                self._notify()
                return
            if room:
                self._append(stream, data[:room])
            self.truncated = True
            self._notify()
            data = data[room:]
        if not self.readers:
            return
        item = (stream, data)  # a view of the agent's frame: no copy
        async with self._live_lock:  # a redialled stream must not overtake its predecessor's last chunk
            await self._wait_readers_at_cap()
            for reader in list(self.readers):
                if reader.at_cap and not reader.cut:
                    try:
                        async with asyncio.timeout(LAG_LIMIT):
                            await reader.queue.put(item)
                    except TimeoutError:
                        self._cut(reader)

    async def _wait_readers_at_cap(self) -> None:
        """Live output goes to readers that have read everything stored; wait for them to get there."""
        while True:
            behind = [r for r in self.readers if not r.at_cap and not r.cut]
            if not behind:
                return
            progress = self._progress
            try:
                async with asyncio.timeout(LAG_LIMIT):
                    await progress.wait()
            except TimeoutError:
                for reader in behind:
                    self._cut(reader)

    def cut(self, reader: Reader) -> None:
        """End ``reader``'s stream (it fell behind, or the server stops); its client resumes later."""
        self._cut(reader)

    def _cut(self, reader: Reader) -> None:
        log.info("a reader of %s fell %g s behind the live output: cut off", self.owner_id, LAG_LIMIT)
        reader.cut = True
        self.readers.discard(reader)
        with contextlib.suppress(asyncio.QueueFull):
            reader.queue.put_nowait(None)
        self._notify()

    async def finish(self, exit_info: dict[str, Any]) -> None:
        """The owner ended (``exit_info`` as the agent reported it): close the files, wake the readers."""
        self.exit = exit_info
        self.finished = True
        self.close_files()
        self.done.set()
        self._notify()
        for reader in list(self.readers):  # wake live readers; they drain their queue, then send exit
            if reader.at_cap and not reader.cut:
                try:
                    reader.queue.put_nowait(None)
                except asyncio.QueueFull:  # it still has output to send: no need to wake it
                    pass

    def close_files(self) -> None:
        """Close the log's files (they reopen on the next write)."""
        for handle in (self._data, self._runs_file):
            if handle is not None:
                handle.close()
        self._data = self._runs_file = None

    # --- reading -------------------------------------------------------------------------------------

    def stream_at(self, offset: int) -> tuple[int, int]:
        """(stream, end of its run) at ``offset``."""
        i = bisect.bisect_right(self.run_starts, offset) - 1
        stream = self.runs[i][1] if i >= 0 else STDOUT
        end = self.run_starts[i + 1] if i + 1 < len(self.run_starts) else self.stored
        return stream, end

    def read(self, start: int, limit: int) -> bytes:
        """Up to ``limit`` stored bytes from offset ``start``."""
        with open(self.data_path, "rb") as handle:
            handle.seek(start)
            return handle.read(limit)

    def split(self, limit: int) -> tuple[bytes, bytes]:
        """The first ``limit`` stored bytes, as (stdout, stderr)."""
        if not self.stored or not self.data_path.exists():
            return b"", b""
        data = self.read(0, min(limit, self.stored))
        parts: dict[int, list[bytes]] = {STDOUT: [], STDERR: []}
        pos = 0
        while pos < len(data):
            stream, end = self.stream_at(pos)
            parts.setdefault(stream, []).append(data[pos:end])
            pos = end if end > pos else len(data)
        return b"".join(parts[STDOUT]), b"".join(parts[STDERR])


def output_events(
    owner: str,
    owner_id: str,
    stream: int,
    chunk: bytes,
    start: int | None,
    more: bool,
    timestamp: str,
    extra: dict[str, Any] | None = None,
) -> tuple[list[str], int]:
    """SSE events for ``chunk`` (one stream). ``start`` is its log offset (None: live, no ids); ``extra``:
    more top-level fields of each event (then no ids: see :func:`log_events`).

    Each event is a :data:`CHUNK` with ``stream`` and ``data``: the text itself (UTF-8 without control
    bytes), or its base64 with ``"encoding": "base64"``, so the bytes stay exact. Returns the events and
    how many bytes they cover: an incomplete UTF-8 character at the end is left for the next call when
    ``more`` output may complete it.
    """
    name = STREAM_NAMES.get(stream, "stdout")
    events: list[str] = []
    pos = 0
    while pos < len(chunk):
        piece = chunk[pos : pos + EVENT_BYTES]
        text: str | None = None
        if not _CONTROL.search(piece):
            try:
                text = piece.decode()
            except UnicodeDecodeError as exc:
                tail = exc.reason == "unexpected end of data" and exc.end == len(piece)
                if tail and exc.start > 0:
                    piece = piece[: exc.start]
                    text = piece.decode()
                elif tail and (more or pos + len(piece) < len(chunk)):
                    break  # wait for the rest of the character
        data = None
        fields: dict[str, Any] = {**(extra or {}), "stream": name}
        if text is not None:
            data = json.dumps(text, ensure_ascii=False)
            if len(data) > MAX_LINE - 200:
                data = None
        if data is None:
            data = '"' + base64.b64encode(piece).decode() + '"'
            fields["encoding"] = BASE64
        pos += len(piece)
        event_id = None if start is None or extra else start + pos
        events.append(sse_event(event_id, CHUNK, owner, owner_id, data, timestamp, fields))
    return events, pos


class Encoder(Generic[T]):
    """How a log's stream is put on the wire (:func:`log_events`): SSE text for every client
    (:class:`SseEncoder`), or length-prefixed binary frames for a client that asks for them
    (:class:`FrameEncoder`).

    Args:
        owner: the owner kind named in events (``"job"``); owner_id: its ID.
        extra: more top-level fields of every event (a fan-out's ``host_id``).
    """

    connected: T
    idle: T
    done: T
    stamps = True  # its output carries the time it was sent

    def __init__(self, owner: str, owner_id: str, extra: dict[str, Any] | None = None) -> None:
        self.owner, self.owner_id, self.extra = owner, owner_id, extra

    def output(
        self, stream: int, chunk: bytes | memoryview, start: int | None, more: bool, timestamp: str
    ) -> tuple[T, int]:
        """The wire form of ``chunk`` (one stream, log offset ``start``, None when live) and how many of
        its bytes it covers (``more``: output may follow that completes a character)."""
        raise NotImplementedError

    def event(self, event_id: int | None, type_: str, data: str, timestamp: str, fields: dict[str, Any]) -> T:
        """The wire form of a non-output event (``truncated``, the final event): see :func:`sse_event`."""
        raise NotImplementedError

    def join(self, parts: list[T]) -> T:
        """``parts`` as one write."""
        raise NotImplementedError


class SseEncoder(Encoder[str]):
    """SSE: :func:`output_events` and :func:`sse_event` (what MIOSA's SDKs and every client read)."""

    connected, idle, done = CONNECTED, KEEPALIVE, DONE

    def output(
        self, stream: int, chunk: bytes | memoryview, start: int | None, more: bool, timestamp: str
    ) -> tuple[str, int]:
        """See :meth:`Encoder.output`."""
        events, used = output_events(
            self.owner, self.owner_id, stream, bytes(chunk), start, more, timestamp, self.extra
        )
        return "".join(events), used

    def event(
        self, event_id: int | None, type_: str, data: str, timestamp: str, fields: dict[str, Any]
    ) -> str:
        """See :meth:`Encoder.event`."""
        return sse_event(event_id, type_, self.owner, self.owner_id, data, timestamp, fields)

    def join(self, parts: list[str]) -> str:
        """See :meth:`Encoder.join`."""
        return "".join(parts)


FRAMES_MEDIA_TYPE = frames.MEDIA_TYPE


class FrameEncoder(Encoder[bytes]):
    """Binary frames (``oc_tui.api.frames``, docs/api.md "Binary frames"): output frames carry the raw
    bytes (no text or base64 encoding, no splitting at characters) with the same id an SSE event would
    have; other events carry the same JSON as an SSE event's ``data:`` line. Keep-alive and done frames
    are empty. A frame's payload is at most :data:`READ_BATCH` (stored output) or one agent frame (live)."""

    connected = idle = frames.HEAD.pack(frames.KEEPALIVE, 0, 0, 0)
    done = frames.HEAD.pack(frames.DONE, 0, 0, 0)
    stamps = False

    def output(
        self, stream: int, chunk: bytes | memoryview, start: int | None, more: bool, timestamp: str
    ) -> tuple[bytes, int]:
        """See :meth:`Encoder.output`."""
        event_id = 0 if start is None or self.extra else start + len(chunk)
        return b"".join((frames.HEAD.pack(frames.OUTPUT, stream, event_id, len(chunk)), chunk)), len(chunk)

    def event(
        self, event_id: int | None, type_: str, data: str, timestamp: str, fields: dict[str, Any]
    ) -> bytes:
        """See :meth:`Encoder.event`."""
        body = event_json(type_, self.owner, self.owner_id, data, timestamp, fields).encode()
        return frames.HEAD.pack(frames.EVENT, 0, event_id or 0, len(body)) + body

    def join(self, parts: list[bytes]) -> bytes:
        """See :meth:`Encoder.join`."""
        return parts[0] if len(parts) == 1 else b"".join(parts)


def open_reader(out: OutputLog) -> Reader:
    """A reader of ``out``, registered now (while the owner is live) so that live output past the cap
    cannot slip by between a client's request and the first byte of its response."""
    reader = Reader()
    if not out.finished:
        out.readers.add(reader)
    return reader


async def log_events(
    out: OutputLog,
    reader: Reader,
    last_event_id: int | None,
    final: Callable[[], tuple[str, str, dict[str, Any]]],
    encoder: Encoder[T],
) -> AsyncGenerator[T, None]:
    """The frames of an output log's stream (for :func:`sse`): stored output from ``last_event_id`` (a
    log offset), a ``truncated`` marker at the cap, live output, then the final event and the end.

    Args:
        out: the log; reader: from :func:`open_reader`.
        last_event_id: the client's ``Last-Event-ID`` (None: from the start).
        final: ``() -> (type, data JSON, top-level fields)`` of the final event, read when the owner
            has ended.
        encoder: the wire form (:class:`SseEncoder`, :class:`FrameEncoder`), with the owner kind named
            in the events (``"job"`` → ``"job_id"``) and any ``extra`` fields on every event (a
            fan-out's ``host_id``). Events with extra fields carry no id: they are merged into a stream
            of many logs, where one log's offset means nothing.
    """
    extra = encoder.extra
    ids = not extra
    try:
        pos, truncated_sent = 0, False
        if last_event_id is not None and last_event_id > out.stored:  # an id past the output: a marker
            pos = out.stored
            truncated_sent = out.truncated
            if out.finished and last_event_id >= out.stored + 1 + int(out.truncated):
                yield encoder.done  # it saw the final event already
                return
        elif last_event_id is not None:
            pos = last_event_id
        reader.at_cap = truncated_sent
        while True:
            changed = out._changed
            if reader.cut:
                return
            if pos < out.stored:
                batch: list[T] = []
                end = min(out.stored, pos + READ_BATCH)
                data = out.read(pos, end - pos)
                timestamp = _now() if encoder.stamps else ""
                offset = 0
                while offset < len(data):
                    stream, run_end = out.stream_at(pos + offset)
                    piece = data[offset : min(len(data), run_end - pos)]
                    at_end = pos + offset + len(piece) == out.stored
                    more = at_end and not out.finished and not out.truncated  # may complete a character
                    frame, used = encoder.output(stream, piece, pos + offset, more, timestamp)
                    if used:
                        batch.append(frame)
                    offset += used
                    if used < len(piece):
                        break
                if batch:
                    pos += offset
                    yield encoder.join(batch)
                    out.progressed()
                    continue
            if out.truncated and not truncated_sent and pos >= out.stored:
                truncated_sent = True
                limit = json.dumps({"limit": out.cap})
                fields = {**(extra or {}), "limit": out.cap}
                event_id = out.stored + 1 if ids else None
                yield encoder.event(event_id, "truncated", limit, _now(), fields)
                reader.at_cap = True
                out.progressed()
                continue
            if out.finished and pos >= out.stored and reader.queue.empty():
                type_, data_json, fields = final()
                final_id = out.stored + 1 + (1 if out.truncated else 0) if ids else None
                fields = {**(extra or {}), **fields}
                yield encoder.event(final_id, type_, data_json, _now(), fields)
                yield encoder.done
                return
            if reader.at_cap:
                item = await reader.queue.get()
                if item is None:
                    if reader.cut:
                        return
                    continue
                yield encoder.output(item[0], item[1], None, False, _now() if encoder.stamps else "")[0]
                continue
            await changed.wait()
    finally:
        reader.cut = True
        out.readers.discard(reader)
        while not reader.queue.empty():  # unblock a feed() waiting for room in this queue
            reader.queue.get_nowait()
        out.progressed()


# --- the agent's side ----------------------------------------------------------------------------------


async def serve_agent_stream(
    ws: WebSocket, out: OutputLog, on_exit: Callable[[dict[str, Any]], Awaitable[None]]
) -> None:
    """Fill ``out`` from the stream WebSocket an agent dialled (docs/protocol.md): ``resume {offset}``,
    binary ``[stream byte][bytes]`` frames, the agent's ``exit`` (handed to ``on_exit``, which stores the
    end and finishes the log), then ``done``. A newer connection for the same log takes over from this
    one; a log that is over already is answered ``done`` at once."""
    try:
        if out.finished:  # over already (its exit is stored, or it was cancelled or lost meanwhile)
            await ws.send_text(protocol.encode(protocol.JOB_DONE))
            await ws.close()
            return
        out.generation += 1
        generation = out.generation
        await ws.send_text(protocol.encode(protocol.JOB_RESUME, offset=out.received))
        while True:
            frame = await ws.receive()
            if frame["type"] == "websocket.disconnect":
                return
            if out.generation != generation or out.finished:  # a newer connection took over
                await ws.close()
                return
            data = frame.get("bytes")
            if data is not None:
                if len(data) > 1:
                    await out.feed(data[0], memoryview(data)[1:])
                continue
            message = protocol.decode(frame.get("text") or "")
            if message["type"] == protocol.JOB_EXIT:
                await on_exit(message)
                await ws.send_text(protocol.encode(protocol.JOB_DONE))
                await ws.close()
                return
    except (WebSocketDisconnect, RuntimeError, OSError, ValueError):
        pass
