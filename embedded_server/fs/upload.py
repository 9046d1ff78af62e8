"""``POST fs/upload``: a multipart body parsed as it arrives, the file part forwarded to the agent.

The body is never held whole: python-multipart's streaming parser sees each chunk the client sends,
the file part's bytes are gathered into frames of up to FRAME bytes and sent on the agent's stream
(``fs.write``), and the next chunk is read only once that send went out, so the client's upload runs at
the pace the agent writes. The target path comes from ``?path=``, else from a ``path`` form field; when
that field arrives only after the file part, the file is spooled to an unlinked temporary file on the
server's disk and sent once the path is known (the only case that touches the server's disk).

The agent writes a temporary file beside the target and renames it over the target on ``end``; an
``abort``, a lost stream or a client that goes away leaves the target as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.websockets import WebSocketDisconnect

from oc_tui.api.errors import ErrorCode

from .. import protocol
from ..errors import ApiProblem
from ..hub import AgentStream, AgentUnreachable, Hub

FRAME = 1024 * 1024  # bytes of file data per frame to the agent
MAX_FIELD = 64 * 1024  # bytes of a non-file form field
MAX_FIELDS = 32  # non-file form fields in one body
MAX_SPOOL = 64 * 1024 * 1024  # bytes of a file part kept on the server's disk while no path is known
DRAIN_LIMIT = 256 * 1024 * 1024  # bytes of a refused upload's body read (and dropped) before hanging up
STREAM_ERRORS = (WebSocketDisconnect, RuntimeError, OSError)


def bad_request(message: str) -> ApiProblem:
    """400 VALIDATION_ERROR with ``message``."""
    return ApiProblem(400, ErrorCode.VALIDATION_ERROR, message)


class Parts:
    """python-multipart's callbacks, recorded: form fields, and the file part's bytes not yet sent."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.file_started = False
        self.file_ended = False
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.error: str | None = None
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._kind = ""  # "file", "field" or "skip"
        self._name = ""
        self._value = bytearray()
        self._field_count = 0

    def callbacks(self) -> dict[str, Any]:
        """The callbacks for python-multipart's parser."""
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._header_field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def take(self) -> bytes:
        """The file bytes gathered so far (and forget them)."""
        data = self.pending[0] if len(self.pending) == 1 else b"".join(self.pending)
        self.pending, self.pending_size = [], 0
        return data

    def _part_begin(self) -> None:
        self._headers, self._kind, self._name, self._value = {}, "", "", bytearray()

    def _header_end(self) -> None:
        self._headers[bytes(self._header_field).strip().lower()] = bytes(self._header_value).strip()
        self._header_field, self._header_value = bytearray(), bytearray()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"filename" in options:  # the file, whatever its field name
            if self.file_started:
                self.error = "one file per upload: the body has a second file part"
                self._kind = "skip"
                return
            self.file_started, self._kind = True, "file"
        else:
            self._field_count += 1
            if self._field_count > MAX_FIELDS:
                self.error = f"more than {MAX_FIELDS} form fields"
                self._kind = "skip"
                return
            self._kind = "field"
            self._name = options.get(b"name", b"").decode("utf-8", "replace")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._kind == "file":
            self.pending.append(data[start:end])
            self.pending_size += end - start
        elif self._kind == "field":
            self._value.extend(data[start:end])
            if len(self._value) > MAX_FIELD:
                self.error = f"form field {self._name!r} is longer than {MAX_FIELD} bytes"
                self._kind = "skip"

    def _part_end(self) -> None:
        if self._kind == "file":
            self.file_ended = True
        elif self._kind == "field" and self._name:
            self.fields[self._name] = self._value.decode("utf-8", "replace")
        self._kind = "skip"


class AgentSink:
    """The agent's ``fs.write`` stream: frames out, then ``end`` and the agent's ``done`` (or error)."""

    def __init__(self, stream: AgentStream) -> None:
        self.stream = stream
        self.sent = 0
        self.reply: asyncio.Task[Any] = asyncio.create_task(stream.receive())

    @classmethod
    async def open(cls, hub: Hub, host_id: str, path: str, mkdir: bool) -> AgentSink:
        """Ask the agent for an ``fs.write`` stream to ``path``."""
        _result, stream = await hub.open_stream(host_id, protocol.FsWrite(path=path, mkdir=mkdir))
        return cls(stream)

    async def write(self, data: bytes) -> None:
        """Send file bytes to the agent (its error, if it answered one, is raised)."""
        if self.reply.done():  # the agent spoke (a write error) or went away before the end
            raise self._failure(self.reply.result())
        try:
            await self.stream.send_bytes(data)
        except STREAM_ERRORS:
            raise AgentUnreachable("its stream closed during the upload") from None
        self.sent += len(data)

    async def finish(self) -> dict[str, Any]:
        """Commit: the agent fsyncs and renames, then answers the written file's stat."""
        try:
            await self.stream.send_message("end", size=self.sent)
        except STREAM_ERRORS:
            raise AgentUnreachable("its stream closed during the upload") from None
        reply = await self.reply
        if isinstance(reply, dict) and reply.get("type") == "done" and isinstance(reply.get("stat"), dict):
            await self.stream.close()
            return reply["stat"]
        raise self._failure(reply)

    def _failure(self, reply: Any) -> ApiProblem:
        if isinstance(reply, dict) and reply.get("type") == "error":
            code, message = str(reply.get("code", "")), str(reply.get("message", "upload failed"))
            status = protocol.AGENT_ERROR_STATUS.get(code)
            if status is not None:
                return ApiProblem(status, code, message)
            return AgentUnreachable(f"the agent failed: {message}")
        return AgentUnreachable("its stream closed during the upload")

    async def abort(self) -> None:
        """The upload will not complete: the agent deletes its temporary file."""
        if not self.reply.done():
            with contextlib.suppress(*STREAM_ERRORS):
                await self.stream.send_message("abort")
        self.reply.cancel()
        with contextlib.suppress(asyncio.CancelledError, *STREAM_ERRORS):
            await self.reply
        await self.stream.close()


class Spool:
    """The file part kept on the server's disk until the ``path`` field shows up (after the file)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.file: IO[bytes] | None = None
        self.size = 0

    async def write(self, data: bytes) -> None:
        """Add file bytes to the spool.

        Raises:
            ApiProblem: 413 PAYLOAD_TOO_LARGE past :data:`MAX_SPOOL` bytes.
        """
        self.size += len(data)
        if self.size > MAX_SPOOL:
            raise ApiProblem(
                413,
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"a file part sent before the 'path' field may be at most {MAX_SPOOL} bytes: "
                "give the path as ?path= or as a form field before the file",
            )
        if self.file is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.file = await asyncio.to_thread(self._open)
        await asyncio.to_thread(self.file.write, data)

    def _open(self) -> IO[bytes]:
        return tempfile.TemporaryFile(dir=self.directory)

    async def replay(self, sink: AgentSink) -> None:
        """Send the spooled file to the agent."""
        if self.file is None:
            return
        await asyncio.to_thread(self.file.seek, 0)
        while data := await asyncio.to_thread(self.file.read, FRAME):
            await sink.write(data)

    def close(self) -> None:
        """Drop the spool."""
        if self.file is not None:
            self.file.close()


class Upload:
    """One upload request, from the first body chunk to the agent's ``done``."""

    def __init__(self, hub: Hub, host_id: str, path: str | None, mkdir: bool, spool_dir: Path) -> None:
        self.hub = hub
        self.host_id = host_id
        self.path = path
        self.mkdir = mkdir
        self.spool = Spool(spool_dir)
        self.sink: AgentSink | None = None
        self.body_done = False

    async def run(self, request: Request, check_path: Any) -> dict[str, Any]:
        """Stream the body to the agent; the written file's stat. ``check_path`` validates a form path."""
        try:
            kind, options = parse_options_header(request.headers.get("content-type", ""))
            boundary = options.get(b"boundary")
            if kind == b"multipart/form-data" and not boundary:
                raise bad_request("multipart/form-data needs a boundary parameter")
            if kind not in (b"multipart/form-data", b"application/octet-stream"):
                raise bad_request(
                    "upload as multipart/form-data with a file part (or application/octet-stream), "
                    f"not {kind.decode('latin-1') or 'no Content-Type'}"
                )
            if self.path:  # refusals (no parent, no permission) come before the body is read
                await self._open(self.path)
            if kind == b"multipart/form-data":
                assert boundary is not None  # checked above
                await self._multipart(request, boundary, check_path)
            else:
                await self._raw(request)
            assert self.sink is not None
            return await self.sink.finish()
        except BaseException as exc:
            if self.sink is not None:
                await asyncio.shield(self.sink.abort())
            if isinstance(exc, ClientDisconnect):
                raise bad_request("the client went away before the upload was complete") from None
            if isinstance(exc, MultipartParseError):
                exc = bad_request(f"malformed multipart body: {exc}")
            if isinstance(exc, ApiProblem):
                await self._drain(request)
                raise exc from None
            raise
        finally:
            self.spool.close()

    async def _body(self, request: Request) -> AsyncIterator[bytes]:
        """The request body's chunks as they arrive (``request.stream()``, but we know where it stopped)."""
        while not self.body_done:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect
            self.body_done = not message.get("more_body", False)
            if message.get("body"):
                yield message["body"]

    async def _drain(self, request: Request) -> None:
        """Read and drop the rest of a refused upload's body (up to DRAIN_LIMIT), so that a client that
        sends the whole body before it reads the answer (httpx, requests) gets to see the error."""
        drained = 0
        with contextlib.suppress(ClientDisconnect):
            async for chunk in self._body(request):
                drained += len(chunk)
                if drained > DRAIN_LIMIT:
                    return

    async def _open(self, path: str) -> AgentSink:
        self.sink = await AgentSink.open(self.hub, self.host_id, path, self.mkdir)
        return self.sink

    async def _raw(self, request: Request) -> None:
        if self.sink is None:
            raise bad_request("query parameter 'path' is required")
        sink = self.sink
        pending: list[bytes] = []
        size = 0
        async for chunk in self._body(request):
            pending.append(chunk)
            size += len(chunk)
            if size >= FRAME:
                await sink.write(b"".join(pending))
                pending, size = [], 0
        if pending:
            await sink.write(b"".join(pending))

    async def _multipart(self, request: Request, boundary: bytes, check_path: Any) -> None:
        parts = Parts()
        parser = MultipartParser(boundary, parts.callbacks())  # type: ignore[arg-type]  # a plain dict of the callbacks
        target: AgentSink | Spool | None = None
        async for chunk in self._body(request):
            parser.write(chunk)
            if parts.error:
                raise bad_request(parts.error)
            if parts.file_started and target is None:
                path = parts.fields.get("path")
                if self.sink is not None:
                    target = self.sink
                else:
                    target = await self._open(check_path(path)) if path else self.spool
            if (
                target is not None
                and parts.pending_size
                and (parts.pending_size >= FRAME or parts.file_ended)
            ):
                await target.write(parts.take())
        parser.finalize()
        if not parts.file_started:
            raise bad_request("the body has no file part (a form field with a filename)")
        if not parts.file_ended:
            raise bad_request("the multipart body ended inside the file part")
        if target is self.spool:
            path = parts.fields.get("path")
            if not path:
                raise bad_request("path is required: as the query parameter 'path' or a form field 'path'")
            sink = await self._open(check_path(path))
            await self.spool.replay(sink)
        elif parts.pending_size and target is not None:
            await target.write(parts.take())
