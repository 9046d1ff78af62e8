"""Faults between the parts: a server killed mid-upload, a network cut between agent and server.

The network cut runs the agent in a network namespace of its own joined to this one by a veth pair
(made by the test with iproute2; needs root), and cuts the link for longer than three heartbeats, the
way a cable pull or a dead Wi-Fi does: no FIN, no RST, just silence. Where namespaces cannot be made the
test is skipped with the reason.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ROOT, Server, ServerProcess, _environ, _stop

from embedded_server.agent import fs as agent_fs

BOUNDARY = "oc-fault-boundary"


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if agent_fs.UPLOAD_MARK in p.name]


async def test_server_killed_mid_upload_leaves_nothing_behind(
    server: Any, start_agent: Any, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "keep.bin").write_bytes(b"original")
    host = server.register("mid-upload")
    start_agent(host["host_key"], HOME=str(home))
    await server.wait_for_status(host["id"], "online")
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    request = (
        f"POST /api/v1/opencomputers/hosts/{host['id']}/fs/upload?path=keep.bin HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {server.token}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(head) + 64 * 1024 * 1024}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", int(server.base_url.rsplit(":", 1)[1])))
    try:
        sock.sendall(request + head + os.urandom(4 * 1024 * 1024))
        deadline = time.monotonic() + 10
        while not leftovers(home) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert leftovers(home), "the agent never started writing"
        server.restart(kill=True)
    finally:
        sock.close()
    deadline = time.monotonic() + 10
    while leftovers(home) and time.monotonic() < deadline:  # the agent lost its stream: it discards
        await asyncio.sleep(0.05)
    assert not leftovers(home)
    assert (home / "keep.bin").read_bytes() == b"original"
    await server.wait_for_status(host["id"], "online", timeout=20)


# --- a network cut -----------------------------------------------------------------------------------


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def netns() -> Iterator[tuple[str, str, str]]:
    """``(namespace, host-side link, host-side address)``: a namespace joined to this one by a veth pair."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2")
    name = f"oc-cut-{os.getpid()}"
    outside, inside = f"occ{os.getpid() % 100000}h", f"occ{os.getpid() % 100000}a"
    octet = 16 + os.getpid() % 200
    here, there = f"10.{octet}.231.1", f"10.{octet}.231.2"
    try:
        ip("netns", "add", name)
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"cannot make a network namespace here: {exc}")
    try:
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", name)
        ip("addr", "add", f"{here}/30", "dev", outside)
        ip("link", "set", outside, "up")
        ip("netns", "exec", name, "ip", "addr", "add", f"{there}/30", "dev", inside)
        ip("netns", "exec", name, "ip", "link", "set", inside, "up")
        ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield name, outside, here
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", outside], capture_output=True, timeout=10)


async def test_a_network_cut_longer_than_the_heartbeats_loses_no_output(
    netns: tuple[str, str, str], tmp_path: Path
) -> None:
    namespace, link, address = netns
    proc = ServerProcess(
        tmp_path / "data", tmp_path / "server.log", {"OC_HEARTBEAT_INTERVAL": "1"}, bind=address
    )
    proc.start()
    agent = None
    try:
        server = Server(proc)
        host = server.register("behind-the-cut")
        env = _environ(
            OC_SERVER_URL=proc.base_url,
            OC_HOST_KEY=host["host_key"],
            OC_AGENT_STATE_DIR=str(tmp_path / "agent-state"),
        )
        with open(tmp_path / "agent.log", "ab") as log:
            agent = subprocess.Popen(
                ["ip", "netns", "exec", namespace, sys.executable, "-m", "embedded_server.agent"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        await server.wait_for_status(host["id"], "online", timeout=20)
        command = "for i in $(seq 1 80); do echo line $i; sleep 0.1; done"
        async with httpx.AsyncClient(headers=server.headers(), timeout=20) as client:
            job = (
                await client.post(f"{server.api_url}/hosts/{host['id']}/exec", json={"command": command})
            ).json()
            await asyncio.sleep(1)
            ip("link", "set", link, "down")  # the cable is pulled: silence, no FIN, no RST
            await server.wait_for_status(host["id"], "offline", timeout=15)
            await asyncio.sleep(1)
            ip("link", "set", link, "up")
            await server.wait_for_status(host["id"], "online", timeout=30)
            deadline = time.monotonic() + 30
            while True:
                final = (await client.get(f"{server.api_url}/hosts/{host['id']}/exec/{job['id']}")).json()
                if final["status"] not in ("queued", "running") or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        assert final["status"] == "completed", final
        assert final["stdout"] == "".join(f"line {i}\n" for i in range(1, 81))
    finally:
        if agent is not None:
            _stop(agent)
        proc.stop()
