"""Server-Sent Event streams of the API: host events, job output and agent events share this code.

A stream survives a flaky network or a control-plane restart: it reconnects with exponential backoff
and full jitter and sends ``Last-Event-ID`` so the server replays what was missed. Only the ``data:`` JSON
gives an event its meaning (MIOSA's clients read nothing else); the SSE ``id:`` is kept on the event as
``event_id`` for resuming. A ``data: [DONE]`` line ends the stream for good.

A job's output is decoded here and only here (events of MIOSA's vocabulary, ``exec_chunk`` …, arrive
already in this client's, see ``models.normalise_job_event``): :func:`job_output_bytes` turns one
``stdout``/``stderr`` event into bytes, and :class:`JobOutputStream` (``OpenComputersClient.job_output``) yields typed items —
:class:`OutputChunk`, :class:`OutputTruncated`, :class:`JobExit` — for a UI or a script to use as they are.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, Self, TypeVar

import httpx
import pydantic
from httpx_sse import EventSource

from . import errors, frames, models
from .backoff import backoff_delay

log = logging.getLogger(__name__)

E = TypeVar("E", bound=pydantic.BaseModel)

#: Statuses that no amount of retrying will fix: the stream raises them instead of reconnecting.
FATAL_STATUSES = frozenset({400, 401, 403, 404})


@dataclass(frozen=True)
class StreamState:
    """What a stream is doing, reported to ``on_state`` on every change so a UI can show it."""

    connected: bool
    """True while events can arrive; False between a drop and the next successful connect."""
    error: str | None = None
    """Why the stream is disconnected (human readable), None while connected."""
    attempt: int = 0
    """How many reconnects have failed in a row (0 while connected)."""


StateCallback = Callable[[StreamState], None]
"""``on_state(state)``: called with every new :class:`StreamState` of a stream (in its task; keep it quick)."""


def describe_transport_error(exc: httpx.TransportError) -> str:
    """A short human reason for a transport failure ("connection refused", "timed out", ...).

    Args:
        exc: what httpx raised.

    Returns:
        One line for an operator, without a traceback or the request's URL.
    """
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, httpx.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, httpx.ReadTimeout):
        return "timed out waiting for an answer"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        if "refused" in lowered or "all connection attempts failed" in lowered:
            return "connection refused"
        if (
            "name or service not known" in lowered
            or "nodename nor servname" in lowered
            or "getaddrinfo" in lowered
        ):
            return "host name not found"
        if "ssl" in lowered or "certificate" in lowered:
            return f"TLS error: {text}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server closed the connection unexpectedly"
    return text or type(exc).__name__


def decode_body(response: httpx.Response) -> Any:
    """The response body as JSON when it is JSON, else as text (proxies answer errors in HTML).

    Args:
        response: a response whose body has been read.

    Returns:
        The decoded JSON value, or the body as a string; never raises.
    """
    try:
        return response.json()
    except ValueError:
        return response.text


class EventStream(AsyncIterator[E], Generic[E]):
    """An async iterator of parsed events that owns its HTTP connection.

    Use it as ``async with stream: async for event in stream`` or call :meth:`aclose` when done: that
    closes the connection at once instead of whenever the garbage collector gets to it. Cancelling the
    task that iterates closes it as well.

    Iterating raises:
        errors.ApiError: a subclass for the server's answer, at once for 400/401/403/404
            (:data:`FATAL_STATUSES`), and for any error status when ``reconnect`` is off
            (:class:`~errors.UnauthorizedError`, :class:`~errors.NotFoundError` …).
        errors.ConnectionFailed: the server cannot be reached and ``reconnect`` is off (with
            ``reconnect`` on, the stream retries for ever and reports through ``on_state``).
        errors.OpenComputersError: the answer is not an event stream (a wrong URL or a proxy).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        model: type[E],
        *,
        last_event_id: str | None = None,
        reconnect: bool = True,
        on_state: StateCallback | None = None,
        timeout: httpx.Timeout | None = None,
        initial_delay: float = 0.25,
        max_delay: float = 10.0,
        final: Callable[[E], bool] | None = None,
        output: Callable[[int, bytes], E] | None = None,
    ) -> None:
        """Open nothing yet: the first connection is made by the first ``__anext__``.

        Args:
            http: the client's HTTP connection pool (its headers carry the token).
            url: the stream's full URL.
            model: the pydantic model each event's ``data:`` JSON is parsed into; events that do not
                fit it are logged and skipped.
            last_event_id: resume after this SSE id (sent as ``Last-Event-ID``).
            reconnect: reconnect after a drop or a 5xx (with backoff) instead of ending or raising.
            on_state: hears every :class:`StreamState` change.
            timeout: the HTTP timeouts of a connection; ``read`` is how long, in seconds, the stream
                may stay silent before it counts as dropped.
            initial_delay: the first reconnect's backoff window, in seconds.
            max_delay: the largest backoff window, in seconds.
            final: an event after which the stream ends by itself (a job's ``exit``), so a server
                that closes the connection without ``[DONE]`` is not mistaken for a dropped one.
            output: ask for the stream's binary frames (:mod:`.frames`) as well as SSE, and make the
                event of an output frame with ``output(stream, bytes)``; a server that answers SSE is
                read as SSE.
        """
        self._http = http
        self._url = url
        self._model = model
        self.last_event_id = last_event_id
        """The id of the last event received: where a reconnect resumes."""
        self._reconnect = reconnect
        self._on_state = on_state
        self._timeout = timeout
        self._initial_delay = initial_delay
        self._max_delay = max_delay
        self._state: StreamState | None = None
        self._final = final
        self._output = output
        self._done = False  # a binary stream's DONE frame came
        self._events = self._run()

    def __aiter__(self) -> Self:
        """The stream is its own iterator."""
        return self

    async def __anext__(self) -> E:
        """The next event; raises ``StopAsyncIteration`` after ``[DONE]`` or the final event, and the
        errors listed on the class."""
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Stop the stream and close its connection."""
        await self._events.aclose()

    async def __aenter__(self) -> Self:
        """Nothing to open: the first event opens the connection."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """:meth:`aclose` it."""
        await self.aclose()

    @property
    def state(self) -> StreamState | None:
        """The last state reported (None before the first connect attempt ends)."""
        return self._state

    def _set_state(self, state: StreamState) -> None:
        if state != self._state:
            self._state = state
            if self._on_state is not None:
                self._on_state(state)

    async def _run(self) -> AsyncGenerator[E, None]:
        failures = 0
        while True:
            try:
                # aclosing: closing this stream must close the connection now, not at garbage collection
                async with contextlib.aclosing(self._connect_once()) as events:
                    async for event in events:
                        yield event
                return  # [DONE]
            except _Retry as retry:
                if not self._reconnect:
                    return
                reason = str(retry)
            except httpx.TransportError as exc:
                reason = describe_transport_error(exc)
                if not self._reconnect:
                    raise errors.ConnectionFailed(f"event stream at {self._url} failed: {reason}") from exc
            if self._state is not None and self._state.connected:
                failures = 0
            failures += 1
            self._set_state(StreamState(connected=False, error=reason, attempt=failures))
            await asyncio.sleep(
                backoff_delay(
                    failures - 1, base=self._initial_delay, cap=self._max_delay, floor=self._initial_delay / 2
                )
            )

    async def _connect_once(self) -> AsyncGenerator[E, None]:
        """One connection: yields events until ``[DONE]`` (returns) or a drop (raises _Retry/TransportError)."""
        accept = "text/event-stream" if self._output is None else f"{frames.MEDIA_TYPE}, text/event-stream"
        headers = {"Accept": accept, "Cache-Control": "no-store"}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        kwargs: dict[str, Any] = {"headers": headers}
        if self._timeout is not None:
            kwargs["timeout"] = self._timeout
        async with self._http.stream("GET", self._url, **kwargs) as response:
            if response.status_code >= 400:
                await response.aread()
                error = errors.error_from_response(response.status_code, decode_body(response))
                if response.status_code in FATAL_STATUSES or not self._reconnect:
                    raise error
                raise _Retry(str(error))
            content_type = response.headers.get("content-type", "")
            if self._output is not None and content_type.startswith(frames.MEDIA_TYPE):
                self._set_state(StreamState(connected=True))
                async for framed in self._frames(response, self._output):
                    yield framed
                    if self._final is not None and self._final(framed):
                        return
                if self._done:
                    return
                raise _Retry("the server ended the stream")
            if "text/event-stream" not in content_type:
                raise errors.OpenComputersError(
                    f"{self._url} is not an event stream (content-type {content_type or 'missing'})"
                )
            self._set_state(StreamState(connected=True))
            async with contextlib.aclosing(EventSource(response).aiter_sse()) as sse_frames:
                async for sse in sse_frames:
                    if sse.id:
                        self.last_event_id = sse.id
                    data = sse.data.strip()
                    if data == "[DONE]":
                        return
                    # id- or event-only frames carry nothing
                    event = self._parse(data, sse.event) if data else None
                    if event is not None:
                        event.event_id = sse.id or None  # type: ignore[attr-defined]
                        yield event
                        if self._final is not None and self._final(event):
                            return
        raise _Retry("the server ended the stream")

    async def _frames(
        self, response: httpx.Response, output: Callable[[int, bytes], E]
    ) -> AsyncGenerator[E, None]:
        """The events of a binary-framed response (:mod:`.frames`) until its ``DONE`` frame (then
        ``_done`` is set) or the connection's end; ids update ``last_event_id`` as SSE ids do.

        Raises:
            _Retry: the bytes are not frames (the stream is read again from the last id).
        """
        decoder = frames.FrameDecoder()
        try:
            async for data in response.aiter_raw():
                for kind, stream, event_id, payload in decoder.feed(data):
                    event_name = str(event_id) if event_id else None
                    if event_name:
                        self.last_event_id = event_name
                    if kind == frames.OUTPUT:
                        event = output(stream, payload)
                    elif kind == frames.EVENT:
                        parsed = self._parse(payload.decode("utf-8", "replace"), "")
                        if parsed is None:
                            continue
                        event = parsed
                    elif kind == frames.DONE:
                        self._done = True
                        return
                    else:  # keep-alive
                        continue
                    event.event_id = event_name  # type: ignore[attr-defined]
                    yield event
        except frames.FrameError as exc:
            raise _Retry(str(exc)) from None

    def _parse(self, data: str, name: str) -> E | None:
        """The event from its ``data:`` JSON; a body without a ``type`` takes the SSE ``event:`` name
        (MIOSA's hosted job stream names its events only there)."""
        try:
            body = json.loads(data)
            if isinstance(body, dict) and "type" not in body and name and name != "message":
                body["type"] = name
            return self._model.model_validate(body)
        except (ValueError, pydantic.ValidationError) as exc:
            log.warning("skipping an event that is not a valid %s: %s", self._model.__name__, exc)
            return None


def job_output_bytes(event: Any) -> bytes:
    """The output bytes a job's ``stdout``/``stderr`` event carries (``{"text"}`` or ``{"b64"}``, or
    ``{"bytes"}`` from a binary frame).

    ``text`` is used when the agent's bytes were valid UTF-8, ``b64`` when they were not: together they
    make the stream binary-exact. This is the client's one decoder of job output;
    :class:`JobOutputStream` uses it.

    Args:
        event: a :class:`~models.JobEvent` (anything with a ``data`` dict).

    Returns:
        The bytes; ``b""`` for any other event (``exit``, ``truncated``) and for ``b64`` that is not
        valid base64 (logged, never raised).
    """
    data = getattr(event, "data", None) or {}
    raw = data.get("bytes")
    if isinstance(raw, bytes):  # from a binary frame (:mod:`.frames`): the bytes themselves
        return raw
    text = data.get("text")
    if isinstance(text, str):
        return text.encode("utf-8", "replace")
    encoded = data.get("b64")
    if isinstance(encoded, str):
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            log.warning("skipping job output that is not valid base64")
    return b""


# --- a job's output as typed items ----------------------------------------------------------------


@dataclass(frozen=True)
class OutputChunk:
    """Bytes a job wrote, in the order it wrote them across both of its streams."""

    stream: Literal["stdout", "stderr"]
    """Which stream the bytes came from."""
    data: bytes
    """The bytes exactly as the job wrote them (may end inside a UTF-8 character or an escape sequence)."""
    event_id: str | None = None
    """The SSE id: the byte offset just after these bytes in the job's stored output."""

    @property
    def stderr(self) -> bool:
        """True for stderr bytes."""
        return self.stream == "stderr"


@dataclass(frozen=True)
class OutputTruncated:
    """The server stopped storing the job's output at its cap; live output may still follow."""

    limit: int | None
    """The cap, in bytes (None when the server did not say)."""
    event_id: str | None = None
    """The SSE id of the ``truncated`` event."""


@dataclass(frozen=True)
class JobExit:
    """The job ended: always the last item of a job's output."""

    status: str | None
    """The job's final status (``completed``, ``failed``, ``cancelled`` …)."""
    exit_code: int | None
    """The process's exit status; None when it did not exit by itself (killed, lost, never started)."""
    error: str | None
    """Why the job failed or ended without an exit code; None otherwise."""
    timestamp: datetime
    """When the job ended (UTC)."""
    data: dict[str, Any] = field(default_factory=dict)
    """The ``exit`` event's whole ``data`` object, fields this client does not know included."""
    event_id: str | None = None
    """The SSE id of the ``exit`` event."""


JobOutputItem = OutputChunk | OutputTruncated | JobExit
"""What :class:`JobOutputStream` yields."""


def job_output_item(event: models.JobEvent | models.FanOutEvent) -> JobOutputItem | None:
    """One job event as a typed item.

    Args:
        event: an event of a job's output stream.

    Returns:
        :class:`OutputChunk` for ``stdout``/``stderr`` (bytes decoded by :func:`job_output_bytes`),
        :class:`OutputTruncated`, :class:`JobExit`; None for an event type this client does not know.
    """
    if event.type in ("stdout", "stderr"):
        stream: Literal["stdout", "stderr"] = "stderr" if event.type == "stderr" else "stdout"
        return OutputChunk(stream, job_output_bytes(event), event.event_id)
    if event.type == "truncated":
        limit = event.data.get("limit")
        return OutputTruncated(limit if isinstance(limit, int) else None, event.event_id)
    if event.type == "exit":
        data = dict(event.data)
        code = data.get("exit_code")
        error = data.get("error")
        status = data.get("status")
        return JobExit(
            status=status if isinstance(status, str) else None,
            exit_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            error=error if isinstance(error, str) else None,
            timestamp=event.timestamp,
            data=data,
            event_id=event.event_id,
        )
    return None


class _WrappedStream:
    """What a stream of decoded items over an :class:`EventStream` (``events``) shares: closing it, and
    ``async with``."""

    events: EventStream[Any]

    async def aclose(self) -> None:
        """Stop the stream and close its connection."""
        await self.events.aclose()

    async def __aenter__(self) -> Self:
        """Nothing to open: the first item opens the connection."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """:meth:`aclose` it."""
        await self.aclose()


class JobOutputStream(_WrappedStream):
    """A job's output from its start, then live: :class:`OutputChunk` items (bytes, binary-exact),
    at most one :class:`OutputTruncated`, and a :class:`JobExit` last, after which it ends.

    ``async with client.job_output(host_id, job_id) as output: async for item in output`` — a dropped
    connection resumes where it stopped (nothing lost, nothing twice). It wraps the
    :class:`EventStream` of ``client.job_events`` and raises what that raises.
    """

    def __init__(self, events: EventStream[models.JobEvent]) -> None:
        """Wrap ``events``, a job's raw event stream (``OpenComputersClient.job_events``); this stream
        owns it and closes it."""
        self.events = events
        """The underlying stream of raw events."""

    @property
    def last_event_id(self) -> str | None:
        """The SSE id of the last event received: pass it as ``last_event_id`` to resume later."""
        return self.events.last_event_id

    @property
    def state(self) -> StreamState | None:
        """The connection's last state (None before the first connect attempt ends)."""
        return self.events.state

    def __aiter__(self) -> Self:
        """The stream is its own iterator."""
        return self

    async def __anext__(self) -> JobOutputItem:
        """The next item; ``StopAsyncIteration`` after the :class:`JobExit` (or ``[DONE]``).

        Raises what :class:`EventStream` raises (:class:`~errors.NotFoundError` for an unknown job,
        :class:`~errors.ConnectionFailed` without ``reconnect`` …).
        """
        while True:
            item = job_output_item(await self.events.__anext__())
            if item is not None:
                return item


# --- a fan-out's combined output ------------------------------------------------------------------


@dataclass(frozen=True)
class MemberNotRun:
    """A fan-out member whose job never ran: offline or revoked (``error``), or ``skipped`` after a
    failure stopped the fan-out or a cancel."""

    status: str | None
    error: str | None


@dataclass(frozen=True)
class FanOutEnd:
    """The fan-out ended: every member's result is known. Always the last item."""

    record: models.FanOut | None
    """The fan-out record (None when the server's did not parse)."""
    summary: dict[str, int]
    """How many members ended each way (``{"exit 0": 41, "exit 1": 1, "not run": 2}``)."""


FanOutItem = JobOutputItem | MemberNotRun | FanOutEnd
"""What :class:`FanOutOutputStream` yields, with the host it is about."""


class FanOutOutputStream(_WrappedStream):
    """A fan-out's combined stream as ``(host_id, item)`` pairs: each member's output chunks, its
    :class:`JobExit` or :class:`MemberNotRun`, and a :class:`FanOutEnd` (host ``""``) last.

    The server's combined stream is not resumable; after a drop it is read again from the start, and
    what was already delivered (per host: bytes, the end) is skipped here, so nothing arrives twice.
    """

    def __init__(self, events: EventStream[models.FanOutEvent]) -> None:
        """Wrap ``events`` (``OpenComputersClient.fanout_events``); this stream owns and closes it."""
        self.events = events
        self._seen: dict[str, int] = {}  # output bytes delivered per host
        self._replayed: dict[str, int] = {}  # bytes of this connection's replay per host
        self._ended: set[str] = set()
        self._connection: object = None

    def __aiter__(self) -> Self:
        """The stream is its own iterator."""
        return self

    async def __anext__(self) -> tuple[str, FanOutItem]:
        """The next ``(host_id, item)``; ``StopAsyncIteration`` after the :class:`FanOutEnd`."""
        while True:
            event = await self.events.__anext__()
            if self.events.state is not self._connection:  # a new connection replays from the start
                self._connection = self.events.state
                self._replayed = {}
            host_id = str(getattr(event, "host_id", "") or "")
            if event.type == "fanout_end":
                summary = getattr(event, "summary", None)
                try:
                    record: models.FanOut | None = models.FanOut.model_validate(event.data)
                except pydantic.ValidationError:
                    record = None
                counts = {str(k): int(v) for k, v in summary.items()} if isinstance(summary, dict) else {}
                return "", FanOutEnd(record, counts)
            if host_id in self._ended:
                continue
            if event.type == "member":
                self._ended.add(host_id)
                status, error = event.data.get("status"), event.data.get("error")
                return host_id, MemberNotRun(
                    status if isinstance(status, str) else None, error if isinstance(error, str) else None
                )
            item = job_output_item(event)
            if isinstance(item, OutputChunk):
                done = self._replayed.get(host_id, 0)
                self._replayed[host_id] = done + len(item.data)
                fresh = item.data[max(0, self._seen.get(host_id, 0) - done) :]
                if not fresh:
                    continue
                self._seen[host_id] = self._seen.get(host_id, 0) + len(fresh)
                return host_id, OutputChunk(item.stream, fresh)
            if isinstance(item, JobExit):
                self._ended.add(host_id)
            if item is not None:
                return host_id, item


class _Retry(Exception):
    """A dropped or failed connection worth reconnecting after (the message says why)."""
