"""Terminal sessions end to end: ticket rules against the real server, and a real login shell on a real
agent's PTY through the client's :class:`TerminalSession` (echo, size, resize, exit, hang-up, ctrl+c)."""

from __future__ import annotations

import asyncio
import os
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from oc_tui.api import OpenComputersClient, errors
from oc_tui.api.models import Ticket
from oc_tui.api.sessions import open_session_socket
from oc_tui.api.terminal import TerminalSession


async def read_until(term: TerminalSession, pattern: str, timeout: float = 10.0) -> re.Match[str]:
    """Read output until ``pattern`` (a regex) matches it; fail after ``timeout`` seconds."""
    seen = b""
    async with asyncio.timeout(timeout):
        async for chunk in term:
            seen += chunk
            match = re.search(pattern, seen.decode(errors="replace"))
            if match:
                return match
    raise AssertionError(f"session ended before {pattern!r}; output: {seen[-500:]!r}")


async def gone(pid: int, timeout: float = 5.0) -> bool:
    """True once process ``pid`` no longer exists (gone, and reaped); False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        await asyncio.sleep(0.05)
    return False


async def refusal_of(ticket: Ticket) -> errors.SessionRefused:
    """Connect with ``ticket`` and return how the server refused it (it must)."""
    with pytest.raises(errors.SessionRefused) as caught:
        async with asyncio.timeout(10):
            term = await TerminalSession.connect(ticket)
            async with term:
                async for _chunk in term:
                    pass
    return caught.value


# --- tickets -------------------------------------------------------------------------------------------


async def test_ticket_shape(server: Any, host: dict) -> None:
    with server.client() as http:
        response = http.post(f"/hosts/{host['id']}/terminal/ticket")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"ticket", "ws_url", "expires_at"}
    assert body["ticket"].startswith("tk_")
    ws_base = server.base_url.replace("http://", "ws://")
    assert body["ws_url"] == f"{ws_base}/opencomputers/ws/terminal?ticket={body['ticket']}"
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert abs(expires - (datetime.now(UTC) + timedelta(seconds=30))) < timedelta(seconds=5)


async def test_a_ticket_is_single_use(client: OpenComputersClient, host: dict) -> None:
    ticket = await client.terminal_ticket(host["id"])
    async with await TerminalSession.connect(ticket) as term:
        await term.send(b"echo $((6*7))\r")
        await read_until(term, r"\b42\b")
    refused = await refusal_of(ticket)
    assert refused.code == 4401
    assert "unknown or already used" in refused.reason


async def test_an_expired_ticket_is_refused(extra_server: Any, start_agent: Any) -> None:
    other = extra_server(OC_TICKET_TTL="1")
    registration = other.register("short-tickets")
    await start_agent(registration["host_key"], OC_SERVER_URL=other.base_url)
    await other.wait_for_status(registration["id"], "online", timeout=15)
    async with OpenComputersClient(other.base_url, other.token) as client:
        ticket = await client.terminal_ticket(registration["id"])
        await asyncio.sleep(1.3)
        refused = await refusal_of(ticket)
    assert refused.code == 4401
    assert "expired" in refused.reason


async def test_a_desktop_ticket_does_not_open_a_terminal(client: OpenComputersClient, host: dict) -> None:
    desktop = await client.desktop_ticket(host["id"])
    wrong = desktop.model_copy(update={"ws_url": desktop.ws_url.replace("/ws/desktop", "/ws/terminal")})
    refused = await refusal_of(wrong)
    assert (refused.code, refused.reason) == (4401, "this is a desktop ticket, not a terminal ticket")


async def test_a_forged_ticket_is_refused(client: OpenComputersClient, host: dict) -> None:
    real = await client.terminal_ticket(host["id"])
    forged = real.model_copy(update={"ws_url": real.ws_url.split("?")[0] + "?ticket=tk_forged0123456789"})
    refused = await refusal_of(forged)
    assert refused.code == 4401 and "unknown" in refused.reason
    missing = real.model_copy(update={"ws_url": real.ws_url.split("?")[0]})
    assert (await refusal_of(missing)).code == 4401


async def test_another_tenants_host_is_not_found(server: Any, host: dict) -> None:
    _tenant, token = server.new_tenant()
    with server.client(token) as http:
        response = http.post(f"/hosts/{host['id']}/terminal/ticket")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_an_offline_host_gets_no_ticket(server: Any) -> None:
    registration = server.register("never-connected")
    with server.client() as http:
        response = http.post(f"/hosts/{registration['id']}/terminal/ticket")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "HOST_OFFLINE"


# --- the PTY -------------------------------------------------------------------------------------------


async def test_echo_and_the_requested_size(client: OpenComputersClient, host: dict) -> None:
    async with await client.open_terminal(host["id"], cols=100, rows=30) as term:
        await term.send(b"echo $((6*7))\r")
        await read_until(term, r"\b42\r\n")
        await term.send(b"stty size; echo $TERM\r")
        await read_until(term, r"\b30 100\r\nxterm-256color\r\n")


async def test_a_resize_reaches_the_pty(client: OpenComputersClient, host: dict) -> None:
    async with await client.open_terminal(host["id"], cols=80, rows=24) as term:
        await term.send(b"stty size\r")
        await read_until(term, r"\b24 80\r\n")
        await term.resize(132, 43)
        await term.send(b"stty size\r")
        await read_until(term, r"\b43 132\r\n")
        with pytest.raises(ValueError):
            await term.resize(0, 10)


async def test_exit_reports_the_status_and_closes(client: OpenComputersClient, host: dict) -> None:
    async with await client.open_terminal(host["id"]) as term:
        await term.send(b"exit 3\r")
        async with asyncio.timeout(10):
            async for _chunk in term:
                pass
        assert (term.exited, term.exit_code, term.exit_signal) == (True, 3, None)
        assert term.closed
        with pytest.raises(errors.StreamClosed):
            await term.send(b"echo too late\r")


async def test_closing_the_session_ends_the_shell(client: OpenComputersClient, host: dict) -> None:
    async with await client.open_terminal(host["id"]) as term:
        await term.send(b"echo pid=$$\r")
        pid = int((await read_until(term, r"pid=(\d+)\r\n")).group(1))
        os.kill(pid, 0)  # the shell runs (on this machine: the agent is local)
    assert await gone(pid), f"shell {pid} still exists 5 s after the session closed"


async def test_a_client_that_vanishes_leaves_no_traceback(
    server: Any, client: OpenComputersClient, host: dict
) -> None:
    """The TUI killed (its terminal closed) drops the TCP connection without a close frame: the server
    ends the shell and logs no traceback while closing a socket that is already gone."""
    offset = server.log.stat().st_size
    term = await client.open_terminal(host["id"])
    await term.send(b"echo pid=$$\r")
    pid = int((await read_until(term, r"pid=(\d+)\r\n")).group(1))
    term._ws.transport.abort()  # no close handshake: as when the process dies
    assert await gone(pid), f"shell {pid} still exists 5 s after the client vanished"
    await asyncio.sleep(0.3)
    with open(server.log, errors="replace") as log:
        log.seek(offset)
        assert "Traceback" not in log.read()


async def test_ctrl_c_interrupts_the_foreground_job(client: OpenComputersClient, host: dict) -> None:
    async with await client.open_terminal(host["id"]) as term:
        await term.send(b"echo ready-$((1+1))\r")
        await read_until(term, r"ready-2\r\n")  # the shell is reading its own input now
        await term.send(b"sleep 100; echo sl''ept\r")
        await read_until(term, r"echo sl''ept\r\n")
        await asyncio.sleep(0.3)  # let the shell start sleep
        started = time.monotonic()
        await term.send(b"\x03")
        await term.send(b"echo $((6*7))\r")
        output = (await read_until(term, r"\b42\r\n")).string
        assert time.monotonic() - started < 5
        assert "slept" not in output  # the whole command line was interrupted


async def test_paste_bigger_than_the_pty_buffer(client: OpenComputersClient, host: dict) -> None:
    """256 KiB typed at once arrives whole: writes wait for the PTY instead of failing."""
    async with await client.open_terminal(host["id"]) as term:
        await term.send(b"stty -icanon -echo; printf 'rea%s\\n' dy; head -c 262144 | wc -c | sed s/^/n=/\r")
        await read_until(term, r"ready\r\n")  # the terminal is raw and head is (about to be) reading
        await term.send(b"x" * (256 * 1024))
        await read_until(term, r"n=262144\b", timeout=20)


async def test_an_unusable_size_on_the_url_falls_back_to_80x24(
    client: OpenComputersClient, host: dict
) -> None:
    ticket = await client.terminal_ticket(host["id"])
    bad = ticket.model_copy(update={"ws_url": ticket.ws_url + "&cols=abc&rows=99999"})
    async with TerminalSession(await open_session_socket(bad)) as term:
        await term.send(b"stty size\r")
        await read_until(term, r"\b24 80\r\n")


async def test_a_shell_that_exits_at_once(server: Any, start_agent: Any, client: OpenComputersClient) -> None:
    """``$SHELL`` is honoured; one that ends before the stream is up still reports its exit."""
    registration = server.register("false-shell")
    await start_agent(registration["host_key"], SHELL="/bin/false")
    await server.wait_for_status(registration["id"], "online", timeout=15)
    async with await client.open_terminal(registration["id"]) as term:
        async with asyncio.timeout(10):
            async for _chunk in term:
                pass
    assert (term.exited, term.exit_code, term.exit_signal) == (True, 1, None)


async def test_revoking_the_host_ends_its_sessions(client: OpenComputersClient, host: dict) -> None:
    ticket = await client.terminal_ticket(host["id"])
    term = await TerminalSession.connect(ticket)
    async with term:
        await term.send(b"echo $((6*7))\r")
        await read_until(term, r"\b42\b")
        await client.revoke_host(host["id"])
        with pytest.raises(errors.SessionRefused) as caught:
            async with asyncio.timeout(10):
                async for _chunk in term:
                    pass
    assert caught.value.code == 4404
    assert "revoked" in caught.value.reason
