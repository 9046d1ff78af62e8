"""Event streams: live events, resume after a control-plane restart, state reports, ``[DONE]``.

Most tests run against the real embedded server (the ``server`` fixture). The ``[DONE]`` end marker and
a failing proxy come from MIOSA's side, so a small stand-in of the hosted API (real HTTP) serves those.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest
from conftest import serve_http

from oc_tui.api import EventStream, OpenComputersClient, StreamState, errors, models

EVENT = {"type": "status_change", "host_id": "host_abc123", "timestamp": "2026-01-01T00:00:00Z"}


class HostedStreams(BaseHTTPRequestHandler):
    """``/hosts/host_abc123/events``: a keep-alive, two events, junk, then ``[DONE]``; the first request
    of ``/hosts/host_flaky/events`` fails with 503."""

    requests: list[dict[str, str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append({"path": self.path, **self.headers})
        if self.path.endswith("/hosts/host_flaky/events") and len(self.requests) == 1:
            self.send_response(503)
            self.end_headers()
            return
        if not self.path.endswith(("/hosts/host_abc123/events", "/hosts/host_flaky/events")):
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"code": "NOT_FOUND", "message": "host not found"}}')
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        frames = [
            ": keepalive\n\n",
            f"id: 1\nevent: status_change\ndata: {json.dumps({**EVENT, 'data': {'status': 'online'}})}\n\n",
            "id: 2\n\n",  # an id-only frame carries nothing
            "event: ignored\ndata: not json\n\n",
            f"event: status_change\ndata: {json.dumps({**EVENT, 'data': {'status': 'offline'}})}\n\n",
            "data: [DONE]\n\n",
        ]
        for frame in frames:
            self.wfile.write(frame.encode())
            self.wfile.flush()


@pytest.fixture
def hosted() -> Iterator[str]:
    HostedStreams.requests = []
    with serve_http(HostedStreams) as url:
        yield url


async def collect(stream: AsyncIterator[models.HostEvent]) -> list[models.HostEvent]:
    return [event async for event in stream]


async def test_done_ends_the_stream_and_only_data_json_counts(hosted: str) -> None:
    async with OpenComputersClient(hosted, "mk_test") as client:
        events = await asyncio.wait_for(collect(client.host_events("host_abc123")), 5)
    assert [(e.type, e.data["status"], e.event_id) for e in events] == [
        ("status_change", "online", "1"),
        ("status_change", "offline", "2"),  # SSE ids carry over to later events
    ]
    assert len(HostedStreams.requests) == 1
    assert HostedStreams.requests[0]["Authorization"] == "Bearer mk_test"


async def test_a_5xx_is_retried_and_reported(hosted: str) -> None:
    states: list[StreamState] = []
    async with OpenComputersClient(hosted, "mk_test") as client:
        stream = client.host_events("host_flaky", on_state=states.append)
        events = await asyncio.wait_for(collect(stream), 5)
    assert len(events) == 2
    assert states[0].connected is False and states[0].attempt == 1 and "503" in (states[0].error or "")
    assert states[1] == StreamState(connected=True)


async def test_not_found_is_raised_without_reconnecting(hosted: str) -> None:
    async with OpenComputersClient(hosted, "mk_test") as client:
        with pytest.raises(errors.NotFoundError):
            await collect(client.host_events("host_missing"))
    assert len(HostedStreams.requests) == 1


async def test_an_unreachable_server_without_reconnect_raises_connection_failed(unused_tcp_port: int) -> None:
    async with OpenComputersClient(f"http://127.0.0.1:{unused_tcp_port}", "t") as client:
        with pytest.raises(errors.ConnectionFailed, match="connection refused"):
            await collect(client.host_events(reconnect=False))


# --- against the real embedded server ---------------------------------------------------------------


async def next_event(stream: AsyncIterator[models.HostEvent], timeout: float = 10) -> models.HostEvent:
    return await asyncio.wait_for(anext(stream), timeout)


async def open_stream(
    client: OpenComputersClient, host_id: str | None = None, states: list[StreamState] | None = None
) -> tuple[EventStream[models.HostEvent], asyncio.Task[models.HostEvent]]:
    """A stream that is connected (so no event is missed) and the task reading its first event."""
    connected = asyncio.Event()

    def on_state(state: StreamState) -> None:
        if states is not None:
            states.append(state)
        if state.connected:
            connected.set()

    stream = client.host_events(host_id, on_state=on_state)
    first = asyncio.create_task(next_event(stream))
    await asyncio.wait_for(connected.wait(), 5)
    return stream, first


async def test_events_arrive_live(server: Any, start_agent: Any) -> None:
    async with OpenComputersClient(server.base_url, server.token) as client:
        reg = await client.register_host("live")
        stream, first = await open_stream(client, reg.id)
        async with stream:
            await start_agent(reg.host_key)
            event = await first
            while event.type != "status_change":
                event = await next_event(stream)
        assert (event.host_id, event.data["status"]) == (reg.id, "online")
        assert event.event_id


async def test_resume_after_a_restart_loses_nothing_and_repeats_nothing(server: Any) -> None:
    states: list[StreamState] = []
    async with OpenComputersClient(server.base_url, server.token) as client:
        stream, first_event = await open_stream(client, states=states)
        async with stream:
            first = await client.register_host("before")
            event = await first_event
            assert (event.type, event.data["host"]["id"]) == ("host_registered", first.id)

            # The stream reads nothing while the server restarts and events happen: on the next read it
            # finds the connection gone and must fetch them with Last-Event-ID.
            await asyncio.to_thread(server.restart)
            second = await client.register_host("after")
            await client.update_host(first.id, name="before-renamed")

            got = [await next_event(stream), await next_event(stream)]
            assert [(e.type, e.host_id) for e in got] == [
                ("host_registered", second.id),
                ("host_updated", first.id),
            ]
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(anext(stream), 0.5)
    assert states[0] == StreamState(connected=True)
    assert any(not s.connected and s.error for s in states)
    assert states[-1] == StreamState(connected=True)


async def test_closing_or_cancelling_a_stream_frees_its_connection(server: Any) -> None:
    """With a pool of one connection, the next request only goes through if the stream let go of it."""
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=1))
    async with (
        OpenComputersClient(server.base_url, server.token, timeout=2, transport=transport) as client,
        OpenComputersClient(server.base_url, server.token) as producer,
    ):
        stream, first = await open_stream(client)
        await producer.register_host("one")
        await first
        await stream.aclose()
        assert (await client.list_hosts()).data

        stream, first = await open_stream(client)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert (await client.list_hosts()).data


@pytest.mark.parametrize("token_ok", [True, False])
async def test_auth_and_missing_hosts_are_raised_not_retried(server: Any, token_ok: bool) -> None:
    async with OpenComputersClient(server.base_url, server.token if token_ok else "bad") as client:
        expected = errors.NotFoundError if token_ok else errors.UnauthorizedError
        with pytest.raises(expected):
            await asyncio.wait_for(collect(client.host_events("host_doesnotexist")), 5)
