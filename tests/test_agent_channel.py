"""The agent channel end to end: a real oc-agent process against a real oc-server process."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from embedded_server.identity import Identity


async def sysinfo(server: Any, host_id: str) -> httpx.Response:
    async with httpx.AsyncClient(headers=server.headers(), timeout=15) as client:
        return await client.get(f"{server.api_url}/hosts/{host_id}/sysinfo")


async def test_agent_connects_and_the_host_goes_online(server: Any, start_agent: Any) -> None:
    host = server.register("edge-1")
    assert host["status"] == "pending"
    start_agent(host["host_key"])
    online = await server.wait_for_status(host["id"], "online")
    assert online["agent"]["hostname"] and online["agent"]["os"]
    assert online["agent"]["remote_addr"] == "127.0.0.1"
    assert online["last_seen_at"].endswith("Z")


async def test_sysinfo_returns_the_machines_real_facts(server: Any, start_agent: Any) -> None:
    host = server.register("facts")
    start_agent(host["host_key"])
    await server.wait_for_status(host["id"], "online")
    response = await sysinfo(server, host["id"])
    assert response.status_code == 200, response.text
    info = response.json()
    assert info["hostname"] == socket.gethostname()
    assert info["cpu_count"] == os.cpu_count()
    assert info["mem_total"] > info["mem_available"] > 0
    assert len(info["load_avg"]) == 3 and info["uptime_s"] > 0
    assert info["agent_version"] and info["python"]


async def test_sysinfo_of_a_host_without_agent_is_409_host_offline(server: Any) -> None:
    host = server.register("lonely")
    response = await sysinfo(server, host["id"])
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "HOST_OFFLINE"


async def test_killed_agent_makes_the_host_offline(server: Any, start_agent: Any) -> None:
    host = server.register("doomed")
    agent = start_agent(host["host_key"])
    await server.wait_for_status(host["id"], "online")
    agent.send_signal(signal.SIGKILL)
    started = time.monotonic()
    offline = await server.wait_for_status(host["id"], "offline", timeout=10)
    assert time.monotonic() - started < 10
    assert offline["status_changed_at"] >= offline["last_seen_at"]


async def test_stopped_agent_is_unreachable_then_offline(server: Any, start_agent: Any) -> None:
    host = server.register("frozen")
    agent = start_agent(host["host_key"])
    await server.wait_for_status(host["id"], "online")
    agent.send_signal(signal.SIGSTOP)
    response = await sysinfo(server, host["id"])
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "AGENT_UNREACHABLE"
    await server.wait_for_status(host["id"], "offline", timeout=10)
    agent.send_signal(signal.SIGCONT)  # it wakes up, notices the dead channel and redials
    await server.wait_for_status(host["id"], "online", timeout=15)


async def test_revoking_closes_the_channel_and_the_agent_exits_2(server: Any, start_agent: Any) -> None:
    host = server.register("retired")
    agent = start_agent(host["host_key"])
    await server.wait_for_status(host["id"], "online")
    with server.client() as client:
        # a job first: the agent then has a supervisor launcher, which must not leave a warning behind
        ran = client.post(f"/hosts/{host['id']}/exec", params={"wait": 10}, json={"command": "true"})
        assert ran.status_code in (200, 201) and ran.json()["status"] == "completed", ran.text
        assert client.delete(f"/hosts/{host['id']}").status_code == 204
    assert await agent.wait_exit() == 2
    assert "oc-agent: host key was revoked; register the host again" in agent.output
    assert "Warning" not in agent.output  # its last line says why it stopped (oc-tui shows that line)
    assert server.get_host(host["id"])["status"] == "revoked"

    again = start_agent(host["host_key"])  # the key is never accepted again
    assert await again.wait_exit() == 2
    assert "revoked" in again.output


async def test_an_unknown_key_exits_2_with_a_clear_message(start_agent: Any) -> None:
    agent = start_agent("hk_thisisnotakeyanyoneknows")
    assert await agent.wait_exit() == 2
    assert "does not know this host key" in agent.output


async def test_a_second_agent_of_the_same_machine_replaces_the_first(
    server: Any, start_agent: Any, tmp_path: Any
) -> None:
    host = server.register("twin")
    state = str(tmp_path / "twin-state")  # the same machine: the same identity key
    first = start_agent(host["host_key"], OC_AGENT_STATE_DIR=state)
    await server.wait_for_status(host["id"], "online")
    second = start_agent(host["host_key"], OC_AGENT_STATE_DIR=state)
    assert await first.wait_exit() == 2
    assert "replaced" in first.output
    assert second.process.poll() is None
    assert server.get_host(host["id"])["status"] == "online"
    assert (await sysinfo(server, host["id"])).status_code == 200


async def test_another_machine_with_a_leaked_host_key_is_refused(
    server: Any, start_agent: Any, tmp_path: Any
) -> None:
    """The host key enrolls one machine; another machine presenting it is refused and the host says so,
    while the real agent keeps serving (jobs, streams)."""
    host = server.register("pinned")
    real = start_agent(host["host_key"])
    await server.wait_for_status(host["id"], "online")
    impostor = start_agent(
        host["host_key"], OC_AGENT_STATE_DIR=str(tmp_path / "elsewhere")
    )  # another machine
    assert await impostor.wait_exit() == 2
    assert "already enrolled on another machine" in impostor.output
    assert real.process.poll() is None and server.get_host(host["id"])["status"] == "online"
    async with httpx.AsyncClient(headers=server.headers(), timeout=15) as client:
        job = await client.post(
            f"{server.api_url}/hosts/{host['id']}/exec", params={"wait": 10}, json={"command": "echo real"}
        )
    assert job.json()["stdout"] == "real\n"
    stored = sqlite3.connect(server.data_dir / "oc-server.db")
    refused = stored.execute(
        "SELECT data FROM events WHERE host_id = ? AND type = 'identity_refused'", (host["id"],)
    ).fetchall()
    assert len(refused) == 1 and json.loads(refused[0][0])["fingerprint"].startswith("SHA256:")


async def test_sigterm_stops_the_agent_cleanly(server: Any, start_agent: Any) -> None:
    host = server.register("polite")
    agent = start_agent(host["host_key"])
    await server.wait_for_status(host["id"], "online")
    agent.send_signal(signal.SIGTERM)
    assert await agent.wait_exit() == 0
    await server.wait_for_status(host["id"], "offline", timeout=5)


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
async def test_agents_come_back_after_a_server_restart(server: Any, start_agent: Any, kill: bool) -> None:
    host = server.register("survivor")
    start_agent(host["host_key"])
    await server.wait_for_status(host["id"], "online")
    await asyncio.to_thread(server.restart, kill)
    after = server.get_host(host["id"])
    assert after["status"] in ("offline", "online")  # offline at start, online once the agent redials
    await server.wait_for_status(host["id"], "online", timeout=15)
    assert (await sysinfo(server, host["id"])).status_code == 200


async def test_hosts_left_online_by_a_crashed_server_start_offline(server: Any, start_agent: Any) -> None:
    host = server.register("stranded")
    agent = start_agent(host["host_key"])
    await server.wait_for_status(host["id"], "online")
    agent.send_signal(signal.SIGSTOP)  # it cannot redial, so only the startup sweep can change the status
    await asyncio.to_thread(server.restart, True)
    after = server.get_host(host["id"])
    assert after["status"] == "offline"
    agent.send_signal(signal.SIGCONT)
    await server.wait_for_status(host["id"], "online", timeout=15)


def run_agent(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OC_")}
    cmd = [sys.executable, "-m", "embedded_server.agent", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, env={**base, **(env or {})})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            (),
            "--server and --host-key-file (or OC_SERVER_URL and OC_HOST_KEY_FILE / OC_HOST_KEY) are required",
        ),
        (("--server", "http://127.0.0.1:1", "--host-key", "nokey"), "a host key starts with hk_"),
        (("--server", "ftp://x", "--host-key", "hk_abc"), "server URL must start with http:// or https://"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: tuple[str, ...], message: str) -> None:
    result = run_agent(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"oc-agent: {message}") and result.stderr.count("\n") == 1


async def test_raw_protocol_refusals(server: Any) -> None:
    url = server.base_url.replace("http://", "ws://") + "/opencomputers/ws/agent"

    async def close_code(headers: dict[str, str], first: str | None) -> int | None:
        async with connect(url, additional_headers=headers) as ws:
            with contextlib.suppress(ConnectionClosed):
                assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "challenge"
            if first is not None:
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(first)
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 5)
        return info.value.rcvd.code if info.value.rcvd else None

    host = server.register("raw")
    key = {"Authorization": f"Bearer {host['host_key']}"}
    assert await close_code({}, None) == 4401
    assert await close_code({"Authorization": "Bearer hk_unknown"}, None) == 4401
    assert await close_code(key, "not json") == 4400
    assert await close_code(key, json.dumps({"type": "ping"})) == 4400
    assert await close_code(key, json.dumps({"type": "hello", "os": "linux"})) == 4400  # no identity proof
    forged = {"public_key": Identity.generate().public_key, "signature": base64.b64encode(b"x" * 64).decode()}
    assert await close_code(key, json.dumps({"type": "hello", "identity": forged})) == 4400
    assert server.get_host(host["id"])["status"] == "pending"
    assert await close_code(key, json.dumps({"type": "hello", "hostname": "h" * (4 << 20)})) == 4400
    assert server.get_host(host["id"])["status"] == "pending"

    me = Identity.generate()
    async with connect(url, additional_headers=key) as ws:  # a long fact is kept in part
        nonce = json.loads(await asyncio.wait_for(ws.recv(), 5))["nonce"]
        hello = {"type": "hello", "hostname": "n" * 5000, "os": "linux", "identity": me.proof(nonce)}
        await ws.send(json.dumps(hello))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert welcome["type"] == "welcome" and welcome["stream_key"].startswith("sk_")
        assert server.get_host(host["id"])["agent"]["hostname"] == "n" * 256
        stream = url + "/stream?job_id=job_abcdefabcdef"
        for bearer in (host["host_key"], "sk_stale"):  # streams take the stream key, never the host key
            async with connect(stream, additional_headers={"Authorization": f"Bearer {bearer}"}) as s:
                with pytest.raises(ConnectionClosed) as info:
                    await asyncio.wait_for(s.recv(), 5)
                assert info.value.rcvd is not None and info.value.rcvd.code == 4408
    other = Identity.generate()  # the key is pinned now: another machine's proof is refused
    async with connect(url, additional_headers=key) as ws:
        nonce = json.loads(await asyncio.wait_for(ws.recv(), 5))["nonce"]
        await ws.send(json.dumps({"type": "hello", "identity": other.proof(nonce)}))
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4402


async def test_status_changes_stream_as_they_happen(server: Any, start_agent: Any) -> None:
    host = server.register("watched")
    url = f"{server.api_url}/hosts/{host['id']}/events"
    async with httpx.AsyncClient(headers=server.headers(), timeout=httpx.Timeout(10, read=None)) as client:
        async with client.stream("GET", url) as response:
            lines = response.aiter_lines()

            async def next_change() -> dict[str, Any]:
                async with asyncio.timeout(10):
                    async for line in lines:
                        if line.startswith("data:"):
                            return json.loads(line[5:])
                raise AssertionError("stream ended")

            agent = start_agent(host["host_key"])
            enrolled = await next_change()  # its first connection: the machine's identity is pinned
            assert (enrolled["type"], enrolled["host_id"]) == ("identity_enrolled", host["id"])
            assert enrolled["data"]["fingerprint"].startswith("SHA256:")
            online = await next_change()
            assert (online["type"], online["host_id"]) == ("status_change", host["id"])
            assert online["data"] == {"status": "online", "previous": "pending"}
            agent.send_signal(signal.SIGKILL)
            assert (await next_change())["data"] == {"status": "offline", "previous": "online"}


async def test_an_agent_keeps_redialling_a_server_that_is_down(start_agent: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    agent = start_agent("hk_whoeverlistens", OC_SERVER_URL=f"http://127.0.0.1:{port}")
    await asyncio.sleep(2)
    assert agent.process.poll() is None
    assert "connection refused; retrying in" in agent.output
    agent.send_signal(signal.SIGINT)
    assert await agent.wait_exit() == 0


async def test_open_streams_do_not_hold_up_a_server_restart(server: Any) -> None:
    url = f"{server.api_url}/hosts/events"
    async with httpx.AsyncClient(headers=server.headers(), timeout=httpx.Timeout(10, read=None)) as client:
        async with client.stream("GET", url) as response:
            started = time.monotonic()
            await asyncio.to_thread(server.restart)
            assert time.monotonic() - started < 8
            with pytest.raises(httpx.HTTPError):  # the stream was ended by the shutdown, not left hanging
                async with asyncio.timeout(5):
                    async for _ in response.aiter_lines():
                        pass
                    raise httpx.ReadError("ended")


async def test_another_control_plane_on_the_same_url_is_retried_not_obeyed(
    server: Any, start_agent: Any, tmp_path: Any
) -> None:
    """A second data dir's server answering on the agent's URL says "unknown host key"; that is not a
    revocation by the agent's own control plane: the agent says why and keeps redialling until its own
    plane is back (issue: one wrong start took the whole fleet offline for good)."""
    from conftest import ServerProcess

    host = server.register("loyal")
    agent = start_agent(host["host_key"])
    await server.wait_for_status(host["id"], "online")
    own = server._proc
    await asyncio.to_thread(own.stop)
    other = ServerProcess(tmp_path / "other-plane", tmp_path / "other-server.log")
    other.port = own.port
    await asyncio.to_thread(other.start)
    try:
        deadline = time.monotonic() + 15
        while "another control plane" not in agent.output and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert "another control plane" in agent.output, agent.output
        await asyncio.sleep(1)
        assert agent.process.poll() is None
    finally:
        await asyncio.to_thread(other.stop)
    await asyncio.to_thread(own.start)
    await server.wait_for_status(host["id"], "online", timeout=20)
