"""Helpers for streaming file transfers: the multipart body of an upload, reading an upload's source,
and a meter that turns progress into a rate and an ETA.

Nothing here holds a whole file: an upload body is an async stream of 1 MiB chunks read from disk in a
worker thread (a big ``read`` would otherwise block the event loop), so a 2 GiB upload costs what a
2 MiB one does. The client (``OpenComputersClient.upload``/``download_to``) uses these; a script may
use :class:`TransferMeter` for its own progress display.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import os
import re
import secrets
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024
"""Bytes read from or written to disk per step, and per progress report."""

Progress = Callable[[int, int | None], None]
"""``progress(done, total)``: bytes moved so far and the whole size (None when not known)."""

UploadSource = bytes | bytearray | memoryview | str | os.PathLike[str] | AsyncIterable[bytes]
"""What ``upload`` sends: the bytes themselves, a local file's path, or an async stream of chunks."""


class SourceSizeMismatch(ValueError):
    """An upload's source gave more or fewer bytes than the ``size`` it was announced with."""


def source_size(source: UploadSource, size: int | None) -> int | None:
    """The number of bytes ``source`` will give: ``size`` if given, else what can be known up front.

    Args:
        source: bytes, a local file's path, or an async stream of chunks.
        size: the announced size in bytes, or None.

    Returns:
        The size in bytes; None for a stream without ``size``.

    Raises:
        ValueError: a negative ``size``.
        OSError: the local file cannot be stat'ed (blocking: call it in a thread).
    """
    if size is not None:
        if size < 0:
            raise ValueError(f"size must be >= 0, not {size}")
        return size
    if isinstance(source, bytes | bytearray | memoryview):
        return memoryview(source).nbytes
    if isinstance(source, str | os.PathLike):
        return os.stat(source).st_size
    return None


async def read_source(source: UploadSource, chunk: int = CHUNK) -> AsyncIterator[bytes]:
    """The bytes of ``source`` in chunks; a file is read in a worker thread.

    Args:
        source: bytes, a local file's path, or an async stream of chunks (empty chunks are skipped).
        chunk: the largest chunk, in bytes (bytes and files; a stream's chunks pass as they come).

    Yields:
        Chunks of bytes.

    Raises:
        OSError: the local file cannot be opened or read.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source).cast("B")
        for start in range(0, len(view), chunk):
            yield bytes(view[start : start + chunk])
        return
    if isinstance(source, str | os.PathLike):
        handle = await asyncio.to_thread(open, source, "rb")
        try:
            while data := await asyncio.to_thread(handle.read, chunk):
                yield data
        finally:
            await asyncio.to_thread(handle.close)
        return
    async for data in source:
        if data:
            yield bytes(data)


def upload_name(path: str) -> str:
    """The file name an upload announces in its part header (the target path is what counts).

    Args:
        path: the remote path.

    Returns:
        Its last segment, or ``"file"`` when it has none.
    """
    return path.rstrip("/").rsplit("/", 1)[-1] or "file"


class MultipartUpload:
    """The ``multipart/form-data`` body of one upload: the ``path`` field, then the ``file`` part.

    ``path`` comes first so a server can decide where the file goes before its bytes arrive. With a
    known ``size`` the body's :attr:`content_length` is exact (the request then has a
    ``Content-Length``); iterating yields the body while counting the file's bytes into ``progress``.
    """

    def __init__(
        self,
        path: str,
        source: UploadSource,
        size: int | None,
        progress: Progress | None = None,
        *,
        chunk: int = CHUNK,
    ) -> None:
        """The body of one upload; nothing is read until it is iterated.

        Args:
            path: the remote path (the ``path`` field; the file part's name is its last segment).
            source: what to send: bytes, a local file's path, or an async stream of chunks.
            size: the source's size in bytes, or None (the body is then sent chunked).
            progress: called as ``progress(done, size)`` in bytes of the file as the body is read.
            chunk: bytes read from a file per step.
        """
        self.boundary = "oc-tui-" + secrets.token_hex(16)
        self.size = size
        self._source = source
        self._progress = progress
        self._chunk = chunk
        # as browsers do (WHATWG): the name in UTF-8, with '"', CR and LF percent-escaped; RFC 7578
        # forbids ``filename*``
        name = upload_name(path).replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        self._head = (
            f"--{self.boundary}\r\n"
            'Content-Disposition: form-data; name="path"\r\n'
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{path}\r\n--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` header: ``multipart/form-data`` with this body's boundary."""
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def content_length(self) -> int | None:
        """The body's exact length in bytes, or None when the source's size is not known."""
        return None if self.size is None else len(self._head) + self.size + len(self._tail)

    def headers(self) -> dict[str, str]:
        """The request headers of this body: ``Content-Type``, and ``Content-Length`` when known."""
        headers = {"Content-Type": self.content_type}
        if (length := self.content_length) is not None:
            headers["Content-Length"] = str(length)
        return headers

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """The body's bytes: the ``path`` field and the file part's head, the file, the closing boundary.

        Raises:
            SourceSizeMismatch: the source gave more or fewer bytes than ``size``.
            OSError: the local file cannot be read.
        """
        done = 0
        if self._progress is not None:
            self._progress(0, self.size)
        yield self._head
        async for data in read_source(self._source, self._chunk):
            done += len(data)
            if self.size is not None and done > self.size:
                raise SourceSizeMismatch(f"the source gave more than the {self.size} bytes announced")
            yield data
            if self._progress is not None:
                self._progress(done, self.size)
        if self.size is not None and done != self.size:
            raise SourceSizeMismatch(f"the source gave {done} bytes, not the {self.size} announced")
        yield self._tail


def part_path(dest: Path) -> Path:
    """Where a download is written until it is complete: ``dest`` + ``.part``.

    Args:
        dest: the local file the download ends up in.

    Returns:
        The ``.part`` path beside it.
    """
    return dest.with_name(dest.name + ".part")


class TransferMeter:
    """Bytes done, the recent rate and the time left of one transfer, for a progress display.

    The rate is measured over the last ``window`` seconds, so it follows the link as it changes
    instead of averaging since the start.
    """

    def __init__(
        self,
        total: int | None = None,
        *,
        window: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        started: float | None = None,
    ) -> None:
        """A meter at 0 bytes done.

        Args:
            total: the transfer's size in bytes, None when not known (yet).
            window: seconds over which the rate is measured.
            clock: the time source, in seconds (monotonic).
            started: when the transfer started on ``clock`` (default: now).
        """
        self.total = total
        self.done = 0
        self._clock = clock
        self._window = window
        self.started = clock() if started is None else started
        self._samples: deque[tuple[float, int]] = deque()
        """``(time, done)`` of the updates within the window (the rate is measured across them)."""

    def update(self, done: int, total: int | None = None, now: float | None = None) -> None:
        """Record progress.

        Args:
            done: bytes moved so far.
            total: the whole size in bytes, when it has become known (None keeps the one known).
            now: the time on the meter's clock, in seconds (default: the clock now).
        """
        if total is not None:
            self.total = total
        self.done = done
        now = self._clock() if now is None else now
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self._window:
            self._samples.popleft()

    @property
    def elapsed(self) -> float:
        """Seconds since the transfer started."""
        return self._clock() - self.started

    @property
    def rate(self) -> float | None:
        """Bytes per second lately, or None before there is anything to measure."""
        if len(self._samples) < 2:
            return None
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        if t1 - t0 < 0.05:
            return None
        return max(0.0, (d1 - d0) / (t1 - t0))

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate (None when the total or the rate is unknown)."""
        rate = self.rate
        if self.total is None or not rate:
            return None
        return max(0.0, (self.total - self.done) / rate)

    @property
    def fraction(self) -> float | None:
        """How much is done, 0.0 to 1.0 (None when the total is not known)."""
        if self.total is None:
            return None
        return 1.0 if self.total == 0 else min(1.0, self.done / self.total)


def existing_size(path: Path) -> int:
    """The size of a local file, 0 when there is none (where a resumed download starts).

    Args:
        path: the local file (a ``.part``).

    Returns:
        Its size in bytes, 0 when it does not exist.

    Raises:
        OSError: other than a missing file (permission denied …).
    """
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def open_part(part: Path, offset: int) -> BinaryIO:
    """``part`` opened for writing at ``offset``: kept up to there (a resume), cut after it.

    Args:
        part: the ``.part`` file (its directory is created when missing).
        offset: the byte where writing starts; 0 starts a new file.

    Returns:
        The open binary file (the caller closes it: :func:`close_part`).

    Raises:
        OSError: the file or its directory cannot be created.
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    handle = open(part, "r+b" if offset and part.exists() else "wb")  # noqa: SIM115 (closed by the caller)
    handle.seek(offset)
    handle.truncate()
    return handle


def _write_all(handle: BinaryIO, pieces: list[bytes]) -> int:
    """Write ``pieces`` to ``handle`` as they are (no joining copy); returns how many bytes."""
    handle.writelines(pieces)
    return sum(len(piece) for piece in pieces)


async def write_chunks(
    chunks: AsyncIterable[bytes], handle: BinaryIO, done: int, total: int | None, progress: Progress | None
) -> int:
    """Write ``chunks`` to ``handle`` in a worker thread, :data:`CHUNK` bytes or more at a time, each
    while the next ones arrive (so disk and network overlap). The chunks are written as they came (no
    copy to join them).

    Args:
        chunks: the body, chunk by chunk.
        handle: the file to write to, at the right offset.
        done: bytes in the file already (a resume).
        total: the whole file's size in bytes, or None, for ``progress``.
        progress: called as ``progress(done, total)`` in bytes after each write.

    Returns:
        The bytes in the file at the end.

    Raises:
        OSError: a write failed; what iterating ``chunks`` raises (a cancelled or broken download) passes
            through, after the write in flight has finished.
    """
    if progress is not None:
        progress(done, total)
    pending: asyncio.Future[int] | None = None
    batch: list[bytes] = []
    size = 0
    try:
        async for chunk in chunks:
            batch.append(chunk)
            size += len(chunk)
            if size < CHUNK:
                continue
            if pending is not None:
                done += await pending
                pending = None
                if progress is not None:
                    progress(done, total)
            pending = asyncio.ensure_future(asyncio.to_thread(_write_all, handle, batch))
            batch, size = [], 0
        if pending is not None:
            done += await pending
            pending = None
        if batch:
            done += await asyncio.to_thread(_write_all, handle, batch)
        if progress is not None:
            progress(done, total)
    finally:
        if pending is not None:  # stopped (cancelled, or the stream failed): let the write finish
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)
    return done


def http_date(when: datetime | None) -> str | None:
    """``when`` as an HTTP date (``Sun, 29 Nov 2026 11:00:35 GMT``), to the second.

    Args:
        when: an aware datetime, or None.

    Returns:
        The HTTP date, or None for None.
    """
    return None if when is None else email.utils.formatdate(int(when.timestamp()), usegmt=True)


def part_version(part: Path) -> str | None:
    """The remote version a ``.part`` holds: its modification time, set from the download's
    ``Last-Modified`` (:func:`close_part`), as an HTTP date; None when there is no ``.part``."""
    try:
        return email.utils.formatdate(int(part.stat().st_mtime), usegmt=True)
    except FileNotFoundError:
        return None


def close_part(handle: BinaryIO, part: Path, last_modified: str | None) -> None:
    """Close a ``.part`` and give it the remote file's modification time (see :func:`part_version`).

    Args:
        handle: the open ``.part``.
        part: its path.
        last_modified: the download's ``Last-Modified`` header, or None (the time is then left as is;
            a date that cannot be parsed is ignored).

    Raises:
        OSError: closing the file failed (a delayed write error).
    """
    handle.close()
    if last_modified:
        with contextlib.suppress(TypeError, ValueError, OSError):
            stamp = email.utils.parsedate_to_datetime(last_modified).timestamp()
            os.utime(part, (stamp, stamp))


class DownloadStream:
    """One download's body as an async iterator of chunks, with what the headers said about it."""

    def __init__(
        self,
        size: int | None,
        offset: int,
        length: int | None,
        chunks: AsyncIterator[bytes],
        last_modified: str | None = None,
        etag: str | None = None,
    ) -> None:
        """One download's body and what its headers said.

        Args:
            size: the whole file's size in bytes, or None.
            offset: where in the file this body starts, in bytes.
            length: the bytes this body carries, or None.
            chunks: the body.
            last_modified: the ``Last-Modified`` header, or None.
            etag: the ``ETag`` header (the file's version), or None.
        """
        self.size = size
        """The whole file's size (None if the server did not say)."""
        self.offset = offset
        """Where in the file this body starts (0 when the server sent the whole file)."""
        self.length = length
        """The bytes this body carries (None if not known)."""
        self.last_modified = last_modified
        """The file's ``Last-Modified`` header (None if the server sent none)."""
        self.etag = etag
        """The file's ``ETag``: which version of it this body is (None if the server sent none)."""
        self._chunks = chunks

    @classmethod
    def from_headers(
        cls, status: int, headers: Mapping[str, str], chunks: AsyncIterator[bytes]
    ) -> DownloadStream:
        """The stream of one download answer, from its status and headers.

        Args:
            status: 200 (the whole file) or 206 (a range: ``Content-Range`` says which).
            headers: the response's headers.
            chunks: the body.

        Returns:
            The stream; a 206 without a readable ``Content-Range`` counts as the whole file.
        """
        length = _int(headers.get("content-length"))
        modified = headers.get("last-modified")
        etag = headers.get("etag")
        if status == 206:
            # Content-Range: bytes 100-199/1000
            match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", headers.get("content-range", ""))
            if match:
                first, last, whole = match.groups()
                size = None if whole == "*" else int(whole)
                return cls(size, int(first), int(last) - int(first) + 1, chunks, modified, etag)
        return cls(length, 0, length, chunks, modified, etag)

    def __aiter__(self) -> AsyncIterator[bytes]:
        """The body's chunks, as they arrive."""
        return self._chunks


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
