"""Jobs outlive their agent: each runs under a supervisor process of its own (agent/job_supervisor.py).

Real server, real agents, real processes: the agent is killed with SIGKILL while its jobs run, a new
agent process of the same machine (the same state dir) re-adopts them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from conftest import api
from test_jobs_api import alive, collect, get_job, gone, pids_in, run, wait_job


async def machine(server: Any, start_agent: Any, name: str) -> tuple[dict[str, Any], Any]:
    host = server.register(name)
    agent = start_agent(host["host_key"])
    await server.wait_for_status(host["id"], "online")
    return host, agent


async def kill_agent(server: Any, agent: Any, host_id: str) -> None:
    agent.send_signal(signal.SIGKILL)
    agent.wait()
    await server.wait_for_status(host_id, "offline", timeout=10)


async def test_output_of_a_job_spans_an_agent_killed_and_restarted(server: Any, start_agent: Any) -> None:
    """SIGKILL of the agent mid-job: the job runs on, the record stays running, and the restarted agent
    delivers the whole output in order, nothing lost or repeated, with the real exit."""
    host, agent = await machine(server, start_agent, "phoenix")
    command = "for i in $(seq 1 40); do echo line $i; echo err $i >&2; sleep 0.04; done; exit 3"
    async with api(server) as client:
        job = await run(client, host["id"], wait=None, command=command)
        await asyncio.sleep(0.4)
        await kill_agent(server, agent, host["id"])
        during = await get_job(client, host["id"], job["id"])
        assert during["status"] == "running" and during["error"] is None
        start_agent(host["host_key"])
        final = await wait_job(client, host["id"], job["id"])
        assert final["status"] == "failed" and final["exit_code"] == 3 and final["error"] is None, final
        assert final["stdout"] == "".join(f"line {i}\n" for i in range(1, 41))
        assert final["stderr"] == "".join(f"err {i}\n" for i in range(1, 41))
        out, events = await collect(client, host["id"], job["id"])
        assert out["stdout"].decode() == final["stdout"] and out["stderr"].decode() == final["stderr"]
        assert [e[1] for e in events[-2:]] == ["exit", "message"]


async def test_cancel_after_a_restart_ends_the_tree(server: Any, start_agent: Any, tmp_path: Path) -> None:
    host, agent = await machine(server, start_agent, "readopt")
    pids = tmp_path / "pids"
    async with api(server) as client:
        job = await run(client, host["id"], wait=None, command=f"sleep 300 & echo $! $$ > {pids}; wait")
        tree = await pids_in(pids, 2)
        await kill_agent(server, agent, host["id"])
        assert all(alive(pid) for pid in tree)  # the job outlived its agent
        start_agent(host["host_key"])
        await server.wait_for_status(host["id"], "online")
        response = await client.delete(f"/hosts/{host['id']}/exec/{job['id']}")
        assert response.status_code == 204
        for pid in tree:
            assert await gone(pid), f"pid {pid} survived the cancel"
        final = await get_job(client, host["id"], job["id"])
        assert final["status"] == "cancelled" and final["completed_at"]


async def test_the_timeout_is_enforced_while_the_agent_is_down(
    server: Any, start_agent: Any, tmp_path: Path
) -> None:
    """The job times out and ends while no agent runs; the next agent reports its real end."""
    host, agent = await machine(server, start_agent, "unattended")
    pids = tmp_path / "pids"
    async with api(server) as client:
        command = f"echo before; sleep 300 & echo $! $$ > {pids}; wait"
        job = await run(client, host["id"], wait=None, command=command, timeout=1)
        tree = await pids_in(pids, 2)
        await kill_agent(server, agent, host["id"])
        for pid in tree:
            assert await gone(pid, timeout=6), f"pid {pid} outlived the timeout"
        assert (await get_job(client, host["id"], job["id"]))["status"] == "running"  # nobody said yet
        start_agent(host["host_key"])
        final = await wait_job(client, host["id"], job["id"])
        assert final["status"] == "failed" and final["error"] == "timed out after 1 s", final
        assert final["stdout"] == "before\n"


async def supervised(state: Path, job_id: str) -> dict[str, Any]:
    """The job's ``job.json`` (its pid and its supervisor's), once its supervisor wrote it."""
    info = state / "supervised" / job_id / "job.json"
    deadline = time.monotonic() + 10
    while not info.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return dict(json.loads(info.read_text()))


async def test_a_job_whose_supervisor_is_killed_is_reported_as_such(
    server: Any, start_agent: Any, tmp_path: Path
) -> None:
    """Its supervisor killed while the agent runs, or while it is down: either way the job ends failed,
    "supervisor gone", with the output it had, and what was left of it is killed."""
    host, agent = await machine(server, start_agent, "orphaned")
    [state] = tmp_path.glob("agent-state-*")
    async with api(server) as client:
        now, away = [
            await run(client, host["id"], wait=None, command=f"echo {name}; exec sleep 300")
            for name in ("now", "away")
        ]
        records = {job["id"]: await supervised(state, job["id"]) for job in (now, away)}
        os.kill(records[now["id"]]["supervisor"], signal.SIGKILL)
        final = await wait_job(client, host["id"], now["id"])
        await kill_agent(server, agent, host["id"])
        os.kill(records[away["id"]]["supervisor"], signal.SIGKILL)
        start_agent(host["host_key"])
        for job in (final, await wait_job(client, host["id"], away["id"])):
            assert job["status"] == "failed" and job["exit_code"] is None, job
            assert job["error"].startswith("supervisor gone"), job
            assert job["stdout"] == f"{'now' if job['id'] == now['id'] else 'away'}\n"
            assert await gone(records[job["id"]]["pid"]), "the job of a dead supervisor was left running"
