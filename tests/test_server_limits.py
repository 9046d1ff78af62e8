"""What a client can hold of the server is bounded in time: half-sent headers (slowloris) and stalled
bodies are closed, while slow but moving bodies and long streams are not; repeated errors log once.

A server of its own with short limits (``OC_HEADER_TIMEOUT=1``, ``OC_BODY_IDLE_TIMEOUT=1``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from typing import Any

import httpx
import pytest

from embedded_server import http_limits


def connect(server: Any) -> socket.socket:
    port = int(server.base_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(10)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (EOF, or a reset), reading whatever it sent first."""
    try:
        while chunk := sock.recv(65536):
            if b"HTTP/1.1" in chunk and not chunk.startswith(b"HTTP/1.1 4"):
                return False
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def test_half_sent_headers_and_stalled_bodies_are_closed(extra_server: Any) -> None:
    server = extra_server(OC_HEADER_TIMEOUT="1", OC_BODY_IDLE_TIMEOUT="1")
    loris = [connect(server) for _ in range(200)]
    for sock in loris:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    stalled = connect(server)
    stalled.sendall(
        f"POST /api/v1/opencomputers/hosts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 2000000000\r\n\r\n{".encode()
    )
    async with httpx.AsyncClient(timeout=5) as client:  # the API answers meanwhile
        assert (await client.get(f"{server.base_url}/healthz")).status_code == 200
    started = time.monotonic()
    assert all(await asyncio.to_thread(lambda: [closed_by_server(s) for s in loris]))
    assert await asyncio.to_thread(closed_by_server, stalled)
    assert time.monotonic() - started < 5
    for sock in [*loris, stalled]:
        sock.close()

    # A body that keeps moving, a byte every 0.5 s (under the 1 s idle limit), is served.
    body = json.dumps({"name": "slow-but-moving"}).encode()
    slow = connect(server)
    slow.sendall(
        f"POST /api/v1/opencomputers/hosts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    )
    for i in range(0, len(body), len(body) // 4 + 1):
        await asyncio.sleep(0.5)
        slow.sendall(body[i : i + len(body) // 4 + 1])
    answer = await asyncio.to_thread(slow.recv, 65536)
    assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
    slow.close()

    # An SSE stream that stays open for longer than both limits is not cut.
    host = server.register("streaming")
    async with (
        httpx.AsyncClient(headers=server.headers(), timeout=10) as client,
        client.stream("GET", f"{server.api_url}/hosts/{host['id']}/events") as response,
    ):
        assert response.status_code == 200
        await asyncio.sleep(2.5)
        server.client().patch(f"{server.api_url}/hosts/{host['id']}", json={"name": "renamed"})
        async for line in response.aiter_lines():
            if line.startswith("data:") and "renamed" in line:
                break
    log = server.log.read_text()
    assert "Traceback" not in log
    assert "closed connections whose request headers beyond 1 s" in log


def test_a_repeated_error_is_logged_once_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    errors = http_limits.RepeatedErrors()
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.INFO, logger="oc_server"):
            for _ in range(500):
                errors.loop_handler(
                    loop,
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": OSError(24, "Too many"),
                    },
                )
    finally:
        loop.close()
    lines = [r.getMessage() for r in caplog.records if "accept()" in r.getMessage()]
    assert lines == ["socket.accept() out of system resource: OSError: [Errno 24] Too many"]
    assert all(r.exc_info is None for r in caplog.records)  # no traceback


def test_the_connection_cap_leaves_descriptors_for_the_server() -> None:
    assert http_limits.connection_cap(1024) == 1024 - http_limits.FD_RESERVE
    assert http_limits.connection_cap(10**6) == http_limits.MAX_CONNECTIONS
    assert http_limits.raise_fd_limit() >= 1024
