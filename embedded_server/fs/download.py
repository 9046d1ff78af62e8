"""``GET fs/download``: HTTP Range and the response that streams a file from the agent's stream.

The agent opens the file and answers with its size and time; the server then picks the byte range
(RFC 9110: one range, ``a-b``, ``a-``, ``-n``; several ranges or a malformed header are ignored and the
whole file is sent) and asks the agent for exactly those bytes. The response reads the next frame from
the agent only after the previous one has been handed to the client's socket, so a slow client slows
the agent's reads instead of the server buffering the file.
"""

from __future__ import annotations

import email.utils
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ..errors import ResponseCut
from ..hub import AgentStream

log = logging.getLogger("oc_server.fs")

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class Unsatisfiable(Exception):
    """The Range asks for bytes the file does not have: 416 with ``Content-Range: bytes */size``."""


@dataclass(frozen=True)
class FileInfo:
    """What the agent answered to ``fs.read``."""

    path: str
    name: str
    size: int
    mtime: float
    mtime_ns: int
    ctime_ns: int | None = None
    inode: int | None = None

    @classmethod
    def from_result(cls, result: Any) -> FileInfo:
        """From the agent's ``fs.read`` answer (KeyError, TypeError, ValueError when malformed)."""
        if not isinstance(result, dict):
            raise ValueError("not an object")
        return cls(
            path=str(result["path"]),
            name=str(result.get("name") or ""),
            size=int(result["size"]),
            mtime=float(result["mtime"]),
            mtime_ns=int(result.get("mtime_ns") or int(float(result["mtime"]) * 1e9)),
            ctime_ns=int(result["ctime_ns"]) if result.get("ctime_ns") is not None else None,
            inode=int(result["inode"]) if result.get("inode") is not None else None,
        )

    @property
    def last_modified(self) -> str:
        """The HTTP date of the file's modification time."""
        return email.utils.formatdate(self.mtime, usegmt=True)

    @property
    def etag(self) -> str:
        """A strong ETag: size, modification time, and (from agents that send them) change time and
        inode, so a file rewritten with its time put back, or replaced, is another version."""
        extra = "".join(f"-{value:x}" for value in (self.ctime_ns, self.inode) if value is not None)
        return f'"{self.size:x}-{self.mtime_ns:x}{extra}"'


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` inclusive for a satisfiable single range; None to send the whole file."""
    if not header or "," in header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if first and last:
        start, end = int(first), int(last)
        if end < start:  # invalid: ignored (RFC 9110 14.1.1)
            return None
    elif first:
        start, end = int(first), size - 1
    elif last:
        suffix = int(last)
        if suffix == 0:
            raise Unsatisfiable
        start, end = max(0, size - suffix), size - 1
    else:
        return None
    if start >= size:
        raise Unsatisfiable
    return start, min(end, size - 1)


def if_range_matches(if_range: str | None, info: FileInfo) -> bool:
    """True unless an ``If-Range`` names another version of the file (then the whole file is sent)."""
    if not if_range:
        return True
    value = if_range.strip()
    return value == info.etag or value == info.last_modified


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact UTF-8 one (RFC 6266 / 8187)."""
    raw = name.encode("utf-8", "surrogateescape")
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(raw, safe='')}"


class CutShort(ResponseCut):
    """The agent's stream ended before the promised bytes: the response is cut, so the client sees it."""


class SourceChanged(CutShort):
    """The agent found the file changed while it was read (``SOURCE_CHANGED``): the response is cut."""


async def frames(stream: AgentStream, expected: int | None) -> AsyncIterator[bytes]:
    """The file's bytes as the agent sends them, until its ``eof``; CutShort if fewer than ``expected``."""
    got = 0
    eof = False
    while True:
        frame = await stream.receive()
        if isinstance(frame, bytes):
            got += len(frame)
            yield frame
            continue
        if frame is None:
            break
        if frame.get("type") == "eof":
            eof = True
            break
        if frame.get("type") == "error":
            # SOURCE_CHANGED: the file changed while it was read; its last bytes were held back, so
            # cutting the response here leaves the client short of Content-Length (never a torn copy
            # that looks whole). The client learns why from the file's new ETag (docs/api.md).
            log.info("download cut: %s", frame.get("message") or frame.get("code"))
            raise SourceChanged(str(frame.get("message") or "the file changed while it was read"))
    if not eof or (expected is not None and got != expected):
        log.warning("download cut short: %d of %s bytes (agent stream ended)", got, expected)
        raise CutShort(f"{got} of {expected} bytes")


class StreamedFile(StreamingResponse):
    """A StreamingResponse that closes the agent's stream however the response ends (done, client gone,
    agent gone), so the agent stops reading the file at once."""

    def __init__(self, stream: AgentStream, expected: int | None, status: int, headers: dict[str, str]):
        super().__init__(frames(stream, expected), status, headers, media_type="application/octet-stream")
        self.agent_stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.agent_stream.close()


def download_headers(info: FileInfo) -> dict[str, str]:
    """The headers of a download of the file ``info`` describes."""
    return {
        "Accept-Ranges": "bytes",
        "Last-Modified": info.last_modified,
        "ETag": info.etag,
        "Content-Disposition": content_disposition(info.name or "download"),
        "Cache-Control": "no-store",
    }
