"""Jobs: records in the DB, output in a per-job log on disk, live fan-out to SSE readers.

A job's output log is two files in ``DATA_DIR/jobs``: ``<id>.out`` holds the output bytes (stdout and
stderr together, in the order they were produced, at most the cap) and ``<id>.runs`` where each stream
switch is noted as ``<offset: u64 LE><stream: u8>``. An SSE event's ``id`` is the byte offset in
``.out`` after it, so a reader resumes anywhere, even inside a chunk. Readers always read from the file:
a slow reader costs disk reads, never server memory. Output beyond the cap is not stored; it is handed
to the readers connected at that moment through small bounded queues, and the agent's stream is paused
(WebSocket back-pressure) until every reader has room, so nothing is buffered without bound.
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
import signal
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from oc_tui.api.models import Job, JobCreate, format_timestamp, utcnow

from .db import Database
from .ids import new_id

log = logging.getLogger("oc_server.jobs")

STDOUT, STDERR = 1, 2
STREAM_NAMES = {STDOUT: "stdout", STDERR: "stderr"}
RUN = struct.Struct("<QB")
FINAL = ("completed", "failed", "cancelled")
EVENT_BYTES = 45 * 1024  # raw bytes per SSE event: base64 of it (61 440 chars) keeps a line under 64 KiB
MAX_LINE = 63 * 1024
READ_BATCH = 1024 * 1024  # bytes read from the log per write to the socket
LAG_LIMIT = 30.0  # seconds a reader may hold up the live (beyond the cap) output before it is cut off
LIST_OUTPUT = 4096  # bytes of each stream a list entry carries
# Bytes that JSON would have to escape as \u00XX: output with them goes as base64 (exact and compact).
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f]")


def _now() -> str:
    return format_timestamp(utcnow())


# --- the output log ----------------------------------------------------------------------------------


class Reader:
    """One SSE reader of a job's output (registered while the job is live)."""

    def __init__(self) -> None:
        self.at_cap = False
        self.cut = False
        self.queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(4)


class JobOutput:
    """A job's output log and its live state."""

    def __init__(self, directory: Path, job_id: str, cap: int, *, truncated: bool, finished: bool) -> None:
        self.job_id = job_id
        self.cap = cap
        self.data_path = directory / f"{job_id}.out"
        self.runs_path = directory / f"{job_id}.runs"
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
        self.generation = 0  # which stream connection currently feeds the job
        self._live_lock = asyncio.Lock()

    # notifications: waiters take the current event, then check state, then wait on it
    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def progressed(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    # --- writing (the agent's stream) --------------------------------------------------------------

    def _append(self, stream: int, data: memoryview) -> None:
        if self._data is None:
            self.data_path.parent.mkdir(parents=True, exist_ok=True)
            self._data = open(self.data_path, "ab", buffering=0)  # noqa: SIM115
            self._runs_file = open(self.runs_path, "ab", buffering=0)  # noqa: SIM115
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
        item = (stream, bytes(data))
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

    def _cut(self, reader: Reader) -> None:
        log.info("a reader of job %s fell %g s behind the live output: cut off", self.job_id, LAG_LIMIT)
        reader.cut = True
        self.readers.discard(reader)
        with contextlib.suppress(asyncio.QueueFull):
            reader.queue.put_nowait(None)
        self._notify()

    async def finish(self, exit_info: dict[str, Any]) -> None:
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


def _event(id_: int | None, type_: str, job_id: str, data: str, timestamp: str) -> str:
    head = f"id: {id_}\n" if id_ is not None else ""
    return (
        f'{head}event: {type_}\ndata: {{"type":"{type_}","job_id":"{job_id}","data":{data},'
        f'"timestamp":"{timestamp}"}}\n\n'
    )


def output_events(
    job_id: str, stream: int, chunk: bytes, start: int | None, more: bool, timestamp: str
) -> tuple[list[str], int]:
    """SSE events for ``chunk`` (one stream). ``start`` is its log offset (None: live, no ids).

    Returns the events and how many bytes they cover: an incomplete UTF-8 character at the end is
    left for the next call when ``more`` output may complete it.
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
        if text is not None:
            data = '{"text":' + json.dumps(text, ensure_ascii=False) + "}"
            if len(data) > MAX_LINE - 200:
                data = None
        if data is None:
            data = '{"b64":"' + base64.b64encode(piece).decode() + '"}'
        pos += len(piece)
        events.append(_event(None if start is None else start + pos, name, job_id, data, timestamp))
    return events, pos


# --- records -----------------------------------------------------------------------------------------


def job_model(row: dict[str, Any], stdout: bytes = b"", stderr: bytes = b"") -> Job:
    return Job(
        id=row["id"],
        host_id=row["host_id"],
        status=row["status"],
        command=row["command"],
        args=json.loads(row["args"]),
        env=json.loads(row["env"]),
        cwd=row["cwd"],
        timeout=row["timeout"],
        exit_code=row["exit_code"],
        stdout=stdout.decode("utf-8", "replace"),
        stderr=stderr.decode("utf-8", "replace"),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        completed_at=row["completed_at"],
        error=row["error"],
        truncated=bool(row["truncated"]),
        started_at=row["started_at"],
        output_bytes=row["output_bytes"],
    )


def describe_exit(info: dict[str, Any], timeout: int) -> tuple[str, int | None, str | None]:
    """(status, exit_code, error) from the agent's exit frame."""
    reason, code, sig = info.get("reason"), info.get("exit_code"), info.get("signal")
    if reason == "cancelled":
        return "cancelled", code, None
    if reason == "timeout":
        return "failed", None, f"timed out after {timeout} s"
    if code == 0:
        return "completed", 0, None
    if code is not None:
        return "failed", int(code), None
    if sig is not None:
        try:
            name = signal.Signals(int(sig)).name
        except ValueError:
            name = f"signal {sig}"
        return "failed", None, f"killed by {name}"
    return "failed", None, str(info.get("error") or "ended without an exit status")


class JobStore:
    def __init__(self, db: Database, directory: Path, cap: int) -> None:
        self.db = db
        self.directory = directory
        self.cap = cap
        self.live: dict[str, JobOutput] = {}  # unfinished jobs' outputs
        self.starting: set[str] = set()  # jobs whose start request is in flight

    # --- rows ----------------------------------------------------------------------------------------

    def row(self, host_id: str, job_id: str) -> dict[str, Any] | None:
        return self.db.one("SELECT * FROM jobs WHERE id = ? AND host_id = ?", (job_id, host_id))

    def create(self, tenant_id: str, host_id: str, spec: JobCreate) -> dict[str, Any]:
        now = _now()
        row = {
            "id": new_id("job"),
            "tenant_id": tenant_id,
            "host_id": host_id,
            "status": "queued",
            "command": spec.command,
            "args": json.dumps(spec.args or []),
            "env": json.dumps(spec.env or []),
            "cwd": spec.cwd,
            "timeout": spec.timeout,
            "exit_code": None,
            "error": None,
            "truncated": 0,
            "output_bytes": 0,
            "created_at": now,
            "updated_at": now,
            "started_at": None,
            "completed_at": None,
        }
        names = ", ".join(row)
        self.db.execute(
            f"INSERT INTO jobs ({names}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
        )
        self.live[row["id"]] = JobOutput(self.directory, row["id"], self.cap, truncated=False, finished=False)
        return row

    def mark_running(self, job_id: str, started_at: str) -> None:
        self.db.execute(
            "UPDATE jobs SET status = 'running', started_at = ?, updated_at = ? WHERE id = ? AND status = 'queued'",
            (started_at, _now(), job_id),
        )

    def page(self, host_id: str, page: int, per_page: int) -> tuple[list[Job], int]:
        total = self.db.one("SELECT COUNT(*) AS n FROM jobs WHERE host_id = ?", (host_id,))
        rows = self.db.all(
            "SELECT * FROM jobs WHERE host_id = ? ORDER BY seq DESC LIMIT ? OFFSET ?",
            (host_id, per_page, (page - 1) * per_page),
        )
        jobs = []
        for row in rows:
            out = self.output(row)
            stdout, stderr = out.split(2 * LIST_OUTPUT)
            jobs.append(job_model(row, stdout[:LIST_OUTPUT], stderr[:LIST_OUTPUT]))
        return jobs, int(total["n"] if total else 0)

    def full(self, row: dict[str, Any]) -> Job:
        stdout, stderr = self.output(row).split(self.cap)
        return job_model(row, stdout, stderr)

    def output(self, row: dict[str, Any]) -> JobOutput:
        """The live output of an unfinished job, else a fresh view of the stored one."""
        out = self.live.get(row["id"])
        if out is None:
            finished = row["status"] in FINAL
            out = JobOutput(
                self.directory, row["id"], self.cap, truncated=bool(row["truncated"]), finished=finished
            )
            if not finished:
                self.live[row["id"]] = out
        return out

    async def finish(
        self,
        row: dict[str, Any],
        status: str,
        exit_code: int | None,
        error: str | None,
        exit_info: dict[str, Any],
        started_at: str | None = None,
    ) -> None:
        """Store the job's end (a job already final keeps its status) and end its streams."""
        out = self.output(row)
        now = _now()
        self.db.execute(
            "UPDATE jobs SET status = CASE WHEN status IN ('queued', 'running') THEN ? ELSE status END,"
            " exit_code = ?, error = COALESCE(error, ?), truncated = ?, output_bytes = ?, updated_at = ?,"
            " completed_at = COALESCE(completed_at, ?), started_at = COALESCE(started_at, ?) WHERE id = ?",
            (status, exit_code, error, int(out.truncated), out.stored, now, now, started_at, row["id"]),
        )
        self.live.pop(row["id"], None)
        await out.finish(exit_info)

    async def finish_inline(self, row: dict[str, Any], exit_info: dict[str, Any], output: list[Any]) -> None:
        """A job that ended before its start was answered: its output and exit came with the answer."""
        out = self.output(row)
        for stream, encoded in output:
            out.store(int(stream), memoryview(base64.b64decode(encoded)))
        status, exit_code, error = describe_exit(exit_info, row["timeout"])
        await self.finish(row, status, exit_code, error, exit_info, started_at=_now())

    async def fail(self, row: dict[str, Any], error: str) -> None:
        await self.finish(row, "failed", None, error, {"status": "failed", "error": error})

    def unfinished(self, host_id: str) -> list[dict[str, Any]]:
        return self.db.all(
            "SELECT * FROM jobs WHERE host_id = ? AND status IN ('queued', 'running')", (host_id,)
        )

    async def reconcile(self, host_id: str, known: list[str]) -> None:
        """The host's agent (re)connected knowing ``known``: its other unfinished jobs are lost."""
        keep = set(known) | self.starting
        for row in self.unfinished(host_id):
            if row["id"] not in keep:
                log.info("job %s is no longer known by its agent: failed", row["id"])
                await self.fail(row, "lost by the agent")

    # --- reading for SSE -----------------------------------------------------------------------------

    def stream(self, row: dict[str, Any], last_event_id: int | None, keepalive: float) -> AsyncIterator[str]:
        """A job's SSE stream: stored output from ``last_event_id`` (a log offset), then live, then exit.

        The reader is registered now, before the response starts, so live output past the cap cannot
        slip by between the client's request and the first byte of the response."""
        out = self.output(row)
        reader = Reader()
        if not out.finished:
            out.readers.add(reader)
        return self._stream(row["id"], out, reader, last_event_id, keepalive)

    async def _stream(
        self, job_id: str, out: JobOutput, reader: Reader, last_event_id: int | None, keepalive: float
    ) -> AsyncIterator[str]:
        try:
            yield ": connected\n\n"
            pos, truncated_sent = 0, False
            if last_event_id is not None and last_event_id > out.stored:  # an id past the output: a marker
                pos = out.stored
                truncated_sent = out.truncated
                if out.finished and last_event_id >= out.stored + 1 + int(out.truncated):
                    yield "data: [DONE]\n\n"  # it saw the exit already
                    return
            elif last_event_id is not None:
                pos = last_event_id
            reader.at_cap = truncated_sent
            while True:
                changed = out._changed
                if reader.cut:
                    return
                if pos < out.stored:
                    batch: list[str] = []
                    end = min(out.stored, pos + READ_BATCH)
                    data = out.read(pos, end - pos)
                    timestamp = _now()
                    offset = 0
                    while offset < len(data):
                        stream, run_end = out.stream_at(pos + offset)
                        piece = data[offset : min(len(data), run_end - pos)]
                        at_end = pos + offset + len(piece) == out.stored
                        more = at_end and not out.finished and not out.truncated  # may complete a character
                        events, used = output_events(job_id, stream, piece, pos + offset, more, timestamp)
                        batch.extend(events)
                        offset += used
                        if used < len(piece):
                            break
                    if batch:
                        pos += offset
                        yield "".join(batch)
                        out.progressed()
                        continue
                if out.truncated and not truncated_sent and pos >= out.stored:
                    truncated_sent = True
                    yield _event(out.stored + 1, "truncated", job_id, json.dumps({"limit": out.cap}), _now())
                    reader.at_cap = True
                    out.progressed()
                    continue
                if out.finished and pos >= out.stored and reader.queue.empty():
                    yield self._exit_event(job_id, out)
                    yield "data: [DONE]\n\n"
                    return
                if reader.at_cap:
                    try:
                        async with asyncio.timeout(keepalive):  # (not wait_for: it can lose the item)
                            item = await reader.queue.get()
                    except TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                    if item is None:
                        if reader.cut:
                            return
                        continue
                    events, _ = output_events(job_id, item[0], item[1], None, False, _now())
                    yield "".join(events)
                    continue
                try:
                    async with asyncio.timeout(keepalive):
                        await changed.wait()
                except TimeoutError:
                    yield ": keepalive\n\n"
        finally:
            reader.cut = True
            out.readers.discard(reader)
            while not reader.queue.empty():  # unblock a feed() waiting for room in this queue
                reader.queue.get_nowait()
            out.progressed()

    def _exit_event(self, job_id: str, out: JobOutput) -> str:
        row = self.db.one("SELECT * FROM jobs WHERE id = ?", (job_id,)) or {}
        data = {"status": row.get("status"), "exit_code": row.get("exit_code"), "error": row.get("error")}
        final_id = out.stored + 1 + (1 if out.truncated else 0)
        return _event(final_id, "exit", job_id, json.dumps(data), _now())

    def shutdown(self) -> None:
        """Server stopping: end every live stream (uvicorn would wait for them); clients resume later."""
        for out in self.live.values():
            for reader in list(out.readers):
                out._cut(reader)

    def delete_output(self, job_id: str) -> None:
        for suffix in (".out", ".runs"):
            with contextlib.suppress(OSError):
                os.unlink(self.directory / f"{job_id}{suffix}")
