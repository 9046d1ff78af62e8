"""LocalControlPlane: the TUI's own control plane and agent, as real child processes in a temp data dir."""

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
from oc_tui.local import LocalControlPlane, LocalControlPlaneError


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


async def online(plane: LocalControlPlane) -> bool:
    """Whether this machine's host is online (False while the server is restarting)."""
    try:
        async with plane.client() as client:
            return (await client.get_host(plane.host_id or "")).status == "online"
    except (errors.OpenComputersError, LocalControlPlaneError):
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kinds(plane: LocalControlPlane) -> list[str]:
    return [kind for kind, _ in plane.events]


async def test_start_reuse_survive_a_server_crash_and_stop_cleanly(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    heard: list[tuple[str, str]] = []
    plane = LocalControlPlane(
        tmp_path, port=unused_tcp_port, on_event=lambda kind, msg: heard.append((kind, msg))
    )
    await plane.start()
    try:
        assert plane.base_url == f"http://127.0.0.1:{unused_tcp_port}"
        assert plane.token and plane.host_id
        await eventually(lambda: online(plane))
        assert [kind for kind, _ in heard] == ["server_started", "host_registered", "agent_started"]
        # the feed names this machine's host as the fleet does, by its name, not its id
        assert heard[-1][1].startswith(f"agent for {plane.host_name} started")
        assert plane.host_name and plane.host_id not in heard[-1][1]

        state_file = tmp_path / "local-host.json"
        assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
        state = json.loads(state_file.read_text())
        assert state["host_id"] == plane.host_id
        server_pid, agent_pid = plane.server_pid, plane.agent_pid
        assert server_pid and agent_pid
        assert state["host_key"] not in Path(f"/proc/{agent_pid}/cmdline").read_text()
        assert (tmp_path / "logs" / "server.log").exists()

        # A second plane on the same data dir (another oc-tui) uses the same server and host and leaves
        # the agent to the first; stopping it stops neither.
        second = LocalControlPlane(tmp_path, port=unused_tcp_port)
        await second.start()
        assert (second.server_reused, second.base_url, second.host_id) == (
            True,
            plane.base_url,
            plane.host_id,
        )
        assert (second.server_pid, second.agent_pid) == (None, None)
        assert kinds(second) == ["server_reused", "agent_standby"]
        assert f"another agent serves {plane.host_name};" in second.events[-1][1]
        await second.stop()
        assert await online(plane) and plane.agent_pid == agent_pid

        # The server crashes: it is restarted on the same URL and the agent comes back to it.
        plane.events.clear()
        os.kill(server_pid, signal.SIGKILL)
        await eventually(lambda: "server_started" in kinds(plane))
        assert kinds(plane)[:2] == ["server_died", "server_started"]
        assert plane.base_url == f"http://127.0.0.1:{unused_tcp_port}"
        await eventually(lambda: online(plane))
        server_pid, agent_pid = plane.server_pid, plane.agent_pid
    finally:
        await plane.stop()
    assert server_pid and agent_pid
    assert not alive(server_pid) and not alive(agent_pid)


async def test_stands_by_while_another_agent_serves_the_host(tmp_path: Path) -> None:
    plane = LocalControlPlane(tmp_path, port=0)
    plane.poll_interval = 0.1
    await plane.start()
    try:
        await eventually(lambda: online(plane))
        host_key = json.loads((tmp_path / "local-host.json").read_text())["host_key"]
        other = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "embedded_server.agent", "--server", plane.base_url or ""),
            env={**os.environ, "OC_HOST_KEY": host_key},
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await eventually(lambda: plane.events[-1][0] == "agent_standby")
            assert plane.agent_pid is None and plane.agent_refused is None
        finally:
            other.terminate()
            await other.wait()
        await eventually(lambda: plane.agent_pid is not None)  # the other one left: ours serves again
        await eventually(lambda: online(plane))
    finally:
        await plane.stop()


async def test_a_revoked_host_is_reported_not_restarted(tmp_path: Path, unused_tcp_port: int) -> None:
    with socket.socket() as taken:  # someone else's program holds the port: the server takes another
        taken.bind(("127.0.0.1", unused_tcp_port))
        taken.listen()
        plane = LocalControlPlane(tmp_path, port=unused_tcp_port)
        await plane.start()
    try:
        assert plane.base_url and not plane.base_url.endswith(f":{unused_tcp_port}")
        await eventually(lambda: online(plane))
        async with plane.client() as client:
            await client.revoke_host(plane.host_id or "")
        await eventually(lambda: plane.host_revoked)
        assert kinds(plane)[-2:] == ["agent_refused", "host_revoked"]
        assert plane.agent_refused and "revoked" in plane.agent_refused
        assert plane.agent_pid is None
    finally:
        await plane.stop()

    again = LocalControlPlane(tmp_path, port=0)
    await again.start()
    try:
        assert again.host_revoked and again.host_id == plane.host_id
        assert again.agent_pid is None
        assert kinds(again) == ["server_started", "host_revoked"]
    finally:
        await again.stop()


async def test_a_server_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "oc-server.db").write_bytes(b"this is not a database" * 100)
    plane = LocalControlPlane(tmp_path, port=0)
    with pytest.raises(LocalControlPlaneError, match=r"did not start; see .*server\.log: .*not a database"):
        await plane.start()
    assert (plane.server_pid, plane.agent_pid, plane.base_url) == (None, None, None)


async def test_the_second_fleet_takes_over_when_the_first_quits(tmp_path: Path) -> None:
    first = LocalControlPlane(tmp_path, port=0)
    second = LocalControlPlane(tmp_path, port=0)
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


async def test_a_package_of_the_same_name_in_the_working_directory_is_not_run(
    tmp_path: Path, unused_tcp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m`` would put the working directory first on ``sys.path``: a decoy ``embedded_server``
    there (an old or untrusted checkout) must never be what runs."""
    decoy = tmp_path / "cwd"
    marker = tmp_path / "decoy-ran"
    for package in ("embedded_server", "embedded_server/agent"):
        (decoy / package).mkdir(parents=True)
        (decoy / package / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
        (decoy / package / "__main__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(decoy)
    plane = LocalControlPlane(tmp_path / "data", port=unused_tcp_port)
    await plane.start()
    try:
        await eventually(lambda: online(plane))
    finally:
        await plane.stop()
    assert not marker.exists()


async def test_a_taken_port_is_said_and_the_new_port_is_kept_for_the_data_dir(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    """Another program holds the port: the plane says so, listens elsewhere, and the next start of the
    same data dir comes back on that same port (agent commands handed out stay right)."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", unused_tcp_port))
        squatter.listen()
        heard: list[tuple[str, str]] = []
        plane = LocalControlPlane(
            tmp_path, port=unused_tcp_port, on_event=lambda kind, msg: heard.append((kind, msg))
        )
        await plane.start()
        try:
            assert plane.base_url is not None
            chosen = int(plane.base_url.rsplit(":", 1)[1])
            assert chosen != unused_tcp_port
            taken = [msg for kind, msg in heard if kind == "port_taken"]
            assert len(taken) == 1
            assert f"port {unused_tcp_port} is taken" in taken[0] and f"port {chosen}" in taken[0]
        finally:
            await plane.stop()
        again = LocalControlPlane(tmp_path, port=unused_tcp_port)
        await again.start()
        try:
            assert again.base_url == f"http://127.0.0.1:{chosen}"
            assert "port_taken" not in kinds(again)
        finally:
            await again.stop()


async def test_bind_and_public_url_reach_the_server(tmp_path: Path, unused_tcp_port: int) -> None:
    """oc-tui --bind/--public-url: the embedded server listens where asked and hands out that URL."""
    plane = LocalControlPlane(
        tmp_path, port=unused_tcp_port, bind="0.0.0.0", public_url="http://fleet.example:8787"
    )
    await plane.start()
    try:
        async with plane.client() as client:
            assert (await client.health())["public_url"] == "http://fleet.example:8787"
        listening = [line.split()[1] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        assert f"00000000:{unused_tcp_port:04X}" in listening  # 0.0.0.0:port
    finally:
        await plane.stop()


def test_a_child_s_end_in_words() -> None:
    from oc_tui.local import describe_exit

    assert describe_exit(-9) == "was killed by SIGKILL"
    assert describe_exit(3) == "exited with status 3"
