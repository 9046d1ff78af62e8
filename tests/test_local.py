"""LocalFleet: the TUI's own control plane and agent, as real child processes in a temp data dir."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from oc_tui.api import errors
from oc_tui.local import LocalFleet, LocalFleetError


async def eventually(check: Callable[[], object], timeout: float = 20.0) -> None:
    """Wait until ``check()`` (sync, or returning an awaitable) is truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.1)


async def online(fleet: LocalFleet) -> bool:
    """Whether this machine's host is online (False while the server is restarting)."""
    try:
        async with fleet.client() as client:
            return (await client.get_host(fleet.host_id or "")).status == "online"
    except (errors.OpenComputersError, LocalFleetError):
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kinds(fleet: LocalFleet) -> list[str]:
    return [kind for kind, _ in fleet.events]


async def test_start_reuse_survive_a_server_crash_and_stop_cleanly(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    heard: list[tuple[str, str]] = []
    fleet = LocalFleet(tmp_path, port=unused_tcp_port, on_event=lambda kind, msg: heard.append((kind, msg)))
    await fleet.start()
    try:
        assert fleet.base_url == f"http://127.0.0.1:{unused_tcp_port}"
        assert fleet.token and fleet.host_id
        await eventually(lambda: online(fleet))
        assert [kind for kind, _ in heard] == ["server_started", "host_registered", "agent_started"]

        state_file = tmp_path / "local-host.json"
        assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
        state = json.loads(state_file.read_text())
        assert state["host_id"] == fleet.host_id
        server_pid, agent_pid = fleet.server_pid, fleet.agent_pid
        assert server_pid and agent_pid
        assert state["host_key"] not in Path(f"/proc/{agent_pid}/cmdline").read_text()
        assert (tmp_path / "logs" / "server.log").exists()

        # A second fleet on the same data dir (another oc-tui) uses the same server and host and leaves
        # the agent to the first; stopping it stops neither.
        second = LocalFleet(tmp_path, port=unused_tcp_port)
        await second.start()
        assert (second.server_reused, second.base_url, second.host_id) == (
            True,
            fleet.base_url,
            fleet.host_id,
        )
        assert (second.server_pid, second.agent_pid) == (None, None)
        assert kinds(second) == ["server_reused", "agent_standby"]
        await second.stop()
        assert await online(fleet) and fleet.agent_pid == agent_pid

        # The server crashes: it is restarted on the same URL and the agent comes back to it.
        fleet.events.clear()
        os.kill(server_pid, signal.SIGKILL)
        await eventually(lambda: "server_started" in kinds(fleet))
        assert kinds(fleet)[:2] == ["server_died", "server_started"]
        assert fleet.base_url == f"http://127.0.0.1:{unused_tcp_port}"
        await eventually(lambda: online(fleet))
        server_pid, agent_pid = fleet.server_pid, fleet.agent_pid
    finally:
        await fleet.stop()
    assert server_pid and agent_pid
    assert not alive(server_pid) and not alive(agent_pid)


async def test_stands_by_while_another_agent_serves_the_host(tmp_path: Path) -> None:
    fleet = LocalFleet(tmp_path, port=0)
    fleet.poll_interval = 0.1
    await fleet.start()
    try:
        await eventually(lambda: online(fleet))
        host_key = json.loads((tmp_path / "local-host.json").read_text())["host_key"]
        other = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "embedded_server.agent", "--server", fleet.base_url or ""),
            env={**os.environ, "OC_HOST_KEY": host_key},
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await eventually(lambda: fleet.events[-1][0] == "agent_standby")
            assert fleet.agent_pid is None and fleet.agent_refused is None
        finally:
            other.terminate()
            await other.wait()
        await eventually(lambda: fleet.agent_pid is not None)  # the other one left: ours serves again
        await eventually(lambda: online(fleet))
    finally:
        await fleet.stop()


async def test_a_revoked_host_is_reported_not_restarted(tmp_path: Path, unused_tcp_port: int) -> None:
    with socket.socket() as taken:  # someone else's program holds the port: the server takes another
        taken.bind(("127.0.0.1", unused_tcp_port))
        taken.listen()
        fleet = LocalFleet(tmp_path, port=unused_tcp_port)
        await fleet.start()
    try:
        assert fleet.base_url and not fleet.base_url.endswith(f":{unused_tcp_port}")
        await eventually(lambda: online(fleet))
        async with fleet.client() as client:
            await client.revoke_host(fleet.host_id or "")
        await eventually(lambda: fleet.host_revoked)
        assert kinds(fleet)[-2:] == ["agent_refused", "host_revoked"]
        assert fleet.agent_refused and "revoked" in fleet.agent_refused
        assert fleet.agent_pid is None
    finally:
        await fleet.stop()

    again = LocalFleet(tmp_path, port=0)
    await again.start()
    try:
        assert again.host_revoked and again.host_id == fleet.host_id
        assert again.agent_pid is None
        assert kinds(again) == ["server_started", "host_revoked"]
    finally:
        await again.stop()


async def test_a_server_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "oc-server.db").write_bytes(b"this is not a database" * 100)
    fleet = LocalFleet(tmp_path, port=0)
    with pytest.raises(LocalFleetError, match=r"did not start; see .*server\.log: .*not a database"):
        await fleet.start()
    assert (fleet.server_pid, fleet.agent_pid, fleet.base_url) == (None, None, None)


async def test_the_second_fleet_takes_over_when_the_first_quits(tmp_path: Path) -> None:
    first = LocalFleet(tmp_path, port=0)
    second = LocalFleet(tmp_path, port=0)
    second.poll_interval = 0.1
    await first.start()
    try:
        await eventually(lambda: online(first))
        await second.start()
        assert second.server_reused and second.agent_pid is None
    finally:
        await first.stop()
    try:
        await eventually(lambda: second.server_pid is not None and second.agent_pid is not None)
        assert not second.server_reused
        assert {"server_died", "server_started", "agent_started"} <= set(kinds(second))
        await eventually(lambda: online(second))
    finally:
        await second.stop()
