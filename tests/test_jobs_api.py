"""Jobs end to end: a real oc-server, a real oc-agent, real processes (no mocks of our code)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import api, error, rss
from conftest import online_host_id as online_host

# --- helpers -----------------------------------------------------------------------------------------


async def run(
    client: httpx.AsyncClient, host_id: str, wait: float | None = 20, **body: Any
) -> dict[str, Any]:
    params = {"wait": wait} if wait else {}
    response = await client.post(f"/hosts/{host_id}/exec", json=body, params=params)
    assert response.status_code == 201, response.text
    return response.json()


async def get_job(client: httpx.AsyncClient, host_id: str, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/hosts/{host_id}/exec/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def wait_job(
    client: httpx.AsyncClient, host_id: str, job_id: str, timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = await get_job(client, host_id, job_id)
        if job["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            return job
        await asyncio.sleep(0.05)


async def sse(
    client: httpx.AsyncClient, host_id: str, job_id: str, last_event_id: str | None = None
) -> AsyncIterator[tuple[str | None, str, Any]]:
    """(id, kind, data) of each SSE event; data is the parsed JSON, or the raw text for [DONE].

    The wire speaks MIOSA's vocabulary (docs/api.md): an ``exec_chunk`` is reported as the kind of its
    ``stream`` (``stdout``/``stderr``), ``exec_result``/``exec_error`` as ``exit``; the frame's own
    ``event:`` and ``type`` are checked to agree here."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    async with client.stream("GET", f"/hosts/{host_id}/exec/{job_id}/stream", headers=headers) as resp:
        assert resp.status_code == 200, await resp.aread()
        assert resp.headers["content-type"].startswith("text/event-stream")
        event_id, event, data = None, "message", None
        async for line in resp.aiter_lines():
            if line == "":
                if data is not None:
                    yield event_id, wire_kind(event, data), data
                event_id, event, data = None, "message", None
            elif line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                assert len(line) < 64 * 1024
                data = line[6:] if line == "data: [DONE]" else json.loads(line[6:])


def wire_kind(event: str, data: Any) -> str:
    """The kind of an event (see :func:`sse`), after checking the frame is self-describing."""
    if event == "message":
        return event
    assert data["type"] == event, (event, data)
    if event == "exec_chunk":
        assert data["stream"] in ("stdout", "stderr") and isinstance(data["data"], str)
        return str(data["stream"])
    if event in ("exec_result", "exec_error"):
        assert (event == "exec_result") == (data["exit_code"] is not None)
        return "exit"
    return event


def chunk_bytes(data: dict[str, Any]) -> bytes:
    """The bytes of an ``exec_chunk``: its text, or base64 with ``"encoding": "base64"``."""
    if data.get("encoding") == "base64":
        return base64.b64decode(data["data"])
    return str(data["data"]).encode()


async def collect(
    client: httpx.AsyncClient, host_id: str, job_id: str, last_event_id: str | None = None
) -> tuple[dict[str, bytes], list[tuple[str | None, str, Any]]]:
    out = {"stdout": bytearray(), "stderr": bytearray(), "all": bytearray()}
    events = []
    async for event_id, event, data in sse(client, host_id, job_id, last_event_id):
        events.append((event_id, event, data))
        if event in ("stdout", "stderr"):
            assert data["stream"] == event and data["job_id"] == job_id and data["timestamp"].endswith("Z")
            chunk = chunk_bytes(data)
            out[event] += chunk
            out["all"] += chunk
    return {k: bytes(v) for k, v in out.items()}, events


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def gone(pid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        await asyncio.sleep(0.05)
    return False


async def pids_in(path: Path, count: int, timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            pids = [int(p) for p in path.read_text().split()]
            if len(pids) >= count:
                return pids
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never held {count} pids")


# --- running -----------------------------------------------------------------------------------------


async def test_exec_with_shell_and_wait_returns_the_completed_job(server: Any, start_agent: Any) -> None:
    host_id = await online_host(server, start_agent)
    async with api(server) as client:
        job = await run(client, host_id, command="echo hello $((1+2)); echo oops >&2")
        assert job["status"] == "completed", job
        assert job["id"].startswith("job_") and job["host_id"] == host_id
        assert job["stdout"] == "hello 3\n" and job["stderr"] == "oops\n"
        assert job["exit_code"] == 0 and job["error"] is None and job["truncated"] is False
        assert job["completed_at"] >= job["started_at"] >= job["created_at"]
        assert job["timeout"] == 60 and job["args"] == [] and job["output_bytes"] == 13
        assert await get_job(client, host_id, job["id"]) == job


async def test_exec_with_args_runs_without_a_shell(server: Any, start_agent: Any) -> None:
    host_id = await online_host(server, start_agent)
    async with api(server) as client:
        job = await run(client, host_id, command="echo", args=["$HOME", "a  b", "*"])
        assert job["status"] == "completed" and job["stdout"] == "$HOME a  b *\n"
        assert job["args"] == ["$HOME", "a  b", "*"]


async def test_env_and_cwd(server: Any, start_agent: Any, tmp_path: Path) -> None:
    host_id = await online_host(server, start_agent)
    async with api(server) as client:
        job = await run(
            client,
            host_id,
            command="echo $GREETING-$OTHER; pwd",
            env=["GREETING=hi there", "OTHER="],
            cwd=str(tmp_path),
        )
        assert job["stdout"] == f"hi there-\n{tmp_path}\n"
        assert job["env"] == ["GREETING=hi there", "OTHER="] and job["cwd"] == str(tmp_path)
        home = await run(client, host_id, command="pwd", cwd="~")
        assert home["stdout"] == os.path.expanduser("~") + "\n"


async def test_args_env_and_cwd_arrive_exactly_as_given(
    server: Any, start_agent: Any, tmp_path: Path
) -> None:
    """Whitespace is data: leading, trailing and lone newlines reach the process unchanged."""
    spaced = tmp_path / " spaced dir "
    spaced.mkdir()
    host_id = await online_host(server, start_agent)
    script = "import json, os, sys; print(json.dumps([sys.argv[1:], os.environ['A'], os.getcwd()]))"
    args = ["-c", script, "  lead", "trail  ", "\n"]
    async with api(server) as client:
        job = await run(client, host_id, command="python3", args=args, env=["A=  padded  "], cwd=str(spaced))
        assert job["status"] == "completed", job
        assert json.loads(job["stdout"]) == [["  lead", "trail  ", "\n"], "  padded  ", str(spaced)]
        assert job["args"] == args and job["env"] == ["A=  padded  "] and job["cwd"] == str(spaced)
        # no cwd: the home of the agent's user (as Files and terminals), not where the agent was started
        job = await run(client, host_id, command="python3", args=["-c", "import os; print(os.getcwd())"])
        assert job["stdout"].strip() == os.path.realpath(os.environ["HOME"]), job


async def test_the_agents_own_settings_never_reach_a_job(server: Any, start_agent: Any) -> None:
    """The host key (and any other OC_* setting of the agent) stays with the agent."""
    host = server.register("keeper")
    start_agent(host["host_key"], OC_VNC_PASSWORD="hunter2")
    await server.wait_for_status(host["id"], "online")
    async with api(server) as client:
        job = await run(client, host["id"], command="env")
        assert job["status"] == "completed" and "PATH=" in job["stdout"]
        assert host["host_key"] not in job["stdout"] and "hunter2" not in job["stdout"]
        assert "OC_HOST_KEY" not in job["stdout"]


async def test_answers_at_once_without_wait(server: Any, start_agent: Any) -> None:
    host_id = await online_host(server, start_agent)
    async with api(server) as client:
        started = time.monotonic()
        job = await run(client, host_id, wait=None, command="sleep 1; echo done")
        assert time.monotonic() - started < 0.9
        assert job["status"] in ("queued", "running") and job["completed_at"] is None
        short = await run(client, host_id, wait=0.2, command="sleep 2")
        assert short["status"] == "running"
        final = await wait_job(client, host_id, job["id"])
        assert final["status"] == "completed" and final["stdout"] == "done\n"


@pytest.mark.parametrize(
    ("body", "params", "fragment"),
    [
        ({"command": "true", "env": ["NOEQUALS"]}, {}, "env"),
        ({"command": "true", "env": ["1BAD=x"]}, {}, "env"),
        ({"command": "true", "timeout": 0}, {}, "timeout"),
        ({"command": "true", "timeout": 86401}, {}, "timeout"),
        ({"command": "true", "shell": True}, {}, "shell: is not a known field"),
        ({"command": "   "}, {}, "command"),
        ({}, {}, "command: is required"),
        ({"command": "true"}, {"wait": 301}, "wait"),
        ({"command": "true"}, {"wait": 0}, "wait"),
        ({"command": "echo a\0b"}, {}, "command: must not contain a NUL"),
        ({"command": "echo", "args": ["a\0b"]}, {}, "args: must not contain a NUL"),
        ({"command": "true", "env": ["A=x\0y"]}, {}, "env: must not contain a NUL"),
        ({"command": "true", "cwd": "/tmp\0x"}, {}, "cwd: must not contain a NUL"),
    ],
)
async def test_validation_errors(
    server: Any, start_agent: Any, body: dict[str, Any], params: dict[str, Any], fragment: str
) -> None:
    host = server.register("strict")
    async with api(server) as client:
        response = await client.post(f"/hosts/{host['id']}/exec", json=body, params=params)
        assert error(response) == (400, "VALIDATION_ERROR")
        assert fragment in response.json()["error"]["message"]


async def test_offline_host_is_409_and_ids_are_checked(server: Any) -> None:
    host = server.register("asleep")
    async with api(server) as client:
        response = await client.post(f"/hosts/{host['id']}/exec", json={"command": "true"})
        assert error(response) == (409, "HOST_OFFLINE")
        assert (await client.get(f"/hosts/{host['id']}/exec")).json()["data"] == []  # nothing recorded
        assert error(await client.get(f"/hosts/{host['id']}/exec/nope")) == (400, "INVALID_ID")
        assert error(await client.get(f"/hosts/{host['id']}/exec/job_abcdef")) == (404, "NOT_FOUND")
        assert error(await client.delete(f"/hosts/{host['id']}/exec/job_abcdef")) == (404, "NOT_FOUND")


async def test_nonzero_exit_and_could_not_start_are_failed(
    server: Any, start_agent: Any, tmp_path: Path
) -> None:
    host_id = await online_host(server, start_agent)
    async with api(server) as client:
        job = await run(client, host_id, command="echo partial; exit 3")
        assert job["status"] == "failed" and job["exit_code"] == 3 and job["stdout"] == "partial\n"
        missing = await run(client, host_id, command="/no/such/program", args=["x"])
        assert missing["status"] == "failed" and missing["exit_code"] is None
        assert missing["error"].startswith("could not start: ") and "/no/such/program" in missing["error"]
        bad_cwd = await run(client, host_id, command="true", cwd=str(tmp_path / "absent"))
        assert bad_cwd["status"] == "failed" and bad_cwd["error"].startswith("could not start: ")
        events = [e async for e in sse(client, host_id, missing["id"])]
        assert [e[1] for e in events] == ["exit", "message"] and events[-1][2] == "[DONE]"
        assert events[0][2]["data"] == {"status": "failed", "exit_code": None, "error": missing["error"]}


async def test_timeout_kills_the_process_tree(server: Any, start_agent: Any, tmp_path: Path) -> None:
    host_id = await online_host(server, start_agent)
    pids = tmp_path / "pids"
    async with api(server) as client:
        started = time.monotonic()
        job = await run(client, host_id, command=f"sleep 300 & echo $! $$ > {pids}; wait", timeout=1)
        assert time.monotonic() - started < 5
        assert job["status"] == "failed" and job["exit_code"] is None
        assert job["error"] == "timed out after 1 s"
        for pid in await pids_in(pids, 2):
            assert await gone(pid), f"pid {pid} survived the timeout"


async def test_cancel_kills_the_process_tree(server: Any, start_agent: Any, tmp_path: Path) -> None:
    host_id = await online_host(server, start_agent)
    pids = tmp_path / "pids"
    async with api(server) as client:
        job = await run(
            client, host_id, wait=None, command=f"sleep 300 & sleep 300 & echo $! $$ > {pids}; wait"
        )
        first, shell = await pids_in(pids, 2)
        response = await client.delete(f"/hosts/{host_id}/exec/{job['id']}")
        assert response.status_code == 204
        for pid in (first, shell):
            assert await gone(pid), f"pid {pid} survived the cancel"
        cancelled = await get_job(client, host_id, job["id"])
        assert cancelled["status"] == "cancelled" and cancelled["completed_at"]
        again = await client.delete(f"/hosts/{host_id}/exec/{job['id']}")
        assert again.status_code == 204
        assert (await get_job(client, host_id, job["id"]))["updated_at"] == cancelled["updated_at"]
        done = await run(client, host_id, command="true")
        assert (await client.delete(f"/hosts/{host_id}/exec/{done['id']}")).status_code == 204
        assert (await get_job(client, host_id, done["id"]))["status"] == "completed"


async def test_list_is_newest_first_and_paginated(server: Any, start_agent: Any) -> None:
    host_id = await online_host(server, start_agent)
    async with api(server) as client:
        ids = [(await run(client, host_id, command=f"echo {i}"))["id"] for i in range(5)]
        page1 = (await client.get(f"/hosts/{host_id}/exec", params={"per_page": 2})).json()
        page3 = (await client.get(f"/hosts/{host_id}/exec", params={"per_page": 2, "page": 3})).json()
        assert page1["meta"] == {"total": 5, "page": 1, "per_page": 2}
        assert [j["id"] for j in page1["data"]] == ids[::-1][:2]
        assert [j["id"] for j in page3["data"]] == ids[:1] and page3["data"][0]["stdout"] == "0\n"
        bad = await client.get(f"/hosts/{host_id}/exec", params={"per_page": 101})
        assert error(bad) == (400, "VALIDATION_ERROR")


async def test_another_tenants_jobs_are_404(server: Any, start_agent: Any) -> None:
    host_id = await online_host(server, start_agent)
    _, other = server.new_tenant()
    async with api(server) as client, api(server, other) as stranger:
        job = await run(client, host_id, command="echo secret")
        for method, path in [
            ("GET", f"/hosts/{host_id}/exec"),
            ("POST", f"/hosts/{host_id}/exec"),
            ("GET", f"/hosts/{host_id}/exec/{job['id']}"),
            ("DELETE", f"/hosts/{host_id}/exec/{job['id']}"),
            ("GET", f"/hosts/{host_id}/exec/{job['id']}/stream"),
        ]:
            body = {"command": "true"} if method == "POST" else None
            assert error(await stranger.request(method, path, json=body)) == (404, "NOT_FOUND")
        other_host = server.register("theirs", token=other)
        wrong = await client.get(f"/hosts/{other_host['id']}/exec/{job['id']}")
        assert error(wrong) == (404, "NOT_FOUND")


# --- streaming ---------------------------------------------------------------------------------------


async def test_stream_keeps_order_binary_bytes_and_ends_with_exit(server: Any, start_agent: Any) -> None:
    host_id = await online_host(server, start_agent)
    script = (
        "import sys,time\n"
        "o,e=sys.stdout.buffer,sys.stderr.buffer\n"
        "o.write(b'text \\xc3\\xa9\\n');o.flush();time.sleep(0.05)\n"
        "e.write(b'\\xff\\xfe\\x00raw');e.flush();time.sleep(0.05)\n"
        "o.write(bytes(range(256)));o.flush();time.sleep(0.05)\n"
        "o.write('caf\\u00e9'.encode()[:4]);o.flush();time.sleep(0.2);o.write(b'\\xa9!');o.flush()\n"
        "sys.exit(4)\n"
    )
    async with api(server) as client:
        job = await run(client, host_id, wait=None, command="python3", args=["-c", script])
        out, events = await collect(client, host_id, job["id"])
        assert out["stdout"] == "text é\n".encode() + bytes(range(256)) + "café!".encode()
        assert out["stderr"] == b"\xff\xfe\x00raw"
        assert out["all"].index(b"\xff\xfe") < out["all"].index(bytes(range(256)))
        kinds = [e[1] for e in events]
        assert kinds[-2:] == ["exit", "message"] and events[-1][2] == "[DONE]"
        assert events[-2][2]["data"] == {"status": "failed", "exit_code": 4, "error": None}
        texts = [e[2]["data"] for e in events if e[1] == "stdout" and "encoding" not in e[2]]
        assert "text é\n" in texts
        assert any("caf" in t for t in texts) and all("\ufffd" not in t for t in texts)
        ids = [int(e[0]) for e in events if e[0]]
        assert ids == sorted(ids) and ids[-2:] == [len(out["all"]), len(out["all"]) + 1]  # offsets; exit: +1
        record = await get_job(client, host_id, job["id"])
        assert record["stderr"] == "\ufffd\ufffd\x00raw" and record["output_bytes"] == len(out["all"])
        stored = list(server.data_dir.rglob(f"{job['id']}.*"))  # the output log: this user's only
        assert stored and all(path.stat().st_mode & 0o777 == 0o600 for path in stored), stored
        # a late subscriber gets all of it again; resuming after the exit gives only [DONE]
        again, _ = await collect(client, host_id, job["id"])
        assert again == out
        tail = [e async for e in sse(client, host_id, job["id"], last_event_id=events[-2][0])]
        assert tail == [(None, "message", "[DONE]")]


async def test_100_mb_stream_with_bounded_server_memory(server: Any, start_agent: Any) -> None:
    """100 MB through one stream while the server's RSS stays far below it. The first 64 MiB are stored
    (event ids are their offsets); the rest reaches the connected reader live, after a `truncated` event."""
    host_id = await online_host(server, start_agent)
    size, cap = 100_000_000, 64 << 20
    pid = server.process.pid
    before = peak = rss(pid)
    async with api(server) as client:
        command = f"sleep 0.3; head -c {size} /dev/zero | tr '\\0' 'x'"
        job = await run(client, host_id, wait=None, command=command, timeout=120)
        received, kinds = 0, []
        async for event_id, event, data in sse(client, host_id, job["id"]):
            kinds.append(event)
            if event == "stdout":
                chunk = chunk_bytes(data)
                assert chunk == b"x" * len(chunk)
                received += len(chunk)
                assert int(event_id) == received if received <= cap else event_id is None
                if len(kinds) % 16 == 0:
                    peak = max(peak, rss(pid))
            elif event == "truncated":
                assert received == cap and event_id == str(cap + 1) and data["data"] == {"limit": cap}
            elif event == "exit":
                assert data["data"]["status"] == "completed" and event_id == str(cap + 2)
        assert received == size and kinds.count("truncated") == 1 and kinds[-2:] == ["exit", "message"]
        final = await get_job(client, host_id, job["id"])
        assert final["output_bytes"] == cap and final["truncated"] is True
    assert peak - before < 40_000_000, f"server RSS grew by {(peak - before) >> 20} MiB"


async def test_resume_with_last_event_id_loses_nothing_and_repeats_nothing(
    server: Any, start_agent: Any
) -> None:
    host_id = await online_host(server, start_agent)
    size = 30_000_000
    script = "import sys\nfor i in range(300000): sys.stdout.write('%099d\\n' % i)\n"
    async with api(server) as client:
        job = await run(client, host_id, wait=None, command="python3", args=["-c", script])
        received = bytearray()
        last_id = None
        async for event_id, event, data in sse(client, host_id, job["id"]):
            if event == "stdout":
                received += chunk_bytes(data)
                last_id = event_id
                if len(received) > 10_000_000:
                    break  # drop the connection mid-stream
        assert last_id is not None and int(last_id) == len(received)
        async for event_id, event, data in sse(client, host_id, job["id"], last_event_id=last_id):
            if event == "stdout":
                received += chunk_bytes(data)
                assert int(event_id) == len(received)
        assert len(received) == size
        assert received == "".join(f"{i:099d}\n" for i in range(300000)).encode()


async def test_output_over_the_cap_is_truncated_and_marked(extra_server: Any, start_agent: Any) -> None:
    capped = extra_server(OC_JOB_OUTPUT_CAP="100000")
    host = capped.register("capped")
    start_agent(host["host_key"], OC_SERVER_URL=capped.base_url)
    await capped.wait_for_status(host["id"], "online")
    async with api(capped) as client:
        job = await run(client, host["id"], command="head -c 300000 /dev/zero | tr '\\0' 'y'; echo end >&2")
        assert job["status"] == "completed" and job["truncated"] is True
        assert job["output_bytes"] == 100000 and job["stdout"] == "y" * 100000 and job["stderr"] == ""
        out, events = await collect(client, host["id"], job["id"])
        assert out["stdout"] == b"y" * 100000
        kinds = [e[1] for e in events]
        assert kinds[-3:] == ["truncated", "exit", "message"]
        assert events[-3][2]["data"] == {"limit": 100000} and events[-3][0] == "100001"
        # a subscriber connected while the job runs also gets the output past the cap, live
        job = await run(
            client, host["id"], wait=None, command="sleep 0.5; head -c 300000 /dev/zero | tr '\\0' 'z'"
        )
        out, events = await collect(client, host["id"], job["id"])
        assert out["stdout"] == b"z" * 300000
        assert [e[1] for e in events].count("truncated") == 1
        # the cap cuts a two-byte character in half: the stored half is sent (as base64) at once
        script = "import sys,time\nsys.stdout.write('a' + 'é' * 60000); sys.stdout.flush(); time.sleep(3)\n"
        job = await run(client, host["id"], wait=None, command="python3", args=["-c", script])
        started, got = time.monotonic(), bytearray()
        async for _, event, data in sse(client, host["id"], job["id"]):
            if event == "stdout":
                got += chunk_bytes(data)
            if event == "truncated":
                break
        assert time.monotonic() - started < 2.5, "the reader waited for the rest of a cut character"
        assert bytes(got) == ("a" + "é" * 60000).encode()[:100000]
        assert (await client.delete(f"/hosts/{host['id']}/exec/{job['id']}")).status_code == 204


# --- survival ----------------------------------------------------------------------------------------


async def test_job_survives_server_restarts(server: Any, start_agent: Any) -> None:
    """The control connection and the job's stream drop (twice: SIGTERM, then SIGKILL) while the job prints;
    the agent keeps the job, spools, and delivers everything when it is back. The record ends correct."""
    host_id = await online_host(server, start_agent)
    command = "for i in $(seq 1 30); do echo line $i; sleep 0.1; done; echo fin >&2"
    async with api(server) as client:
        job = await run(client, host_id, wait=None, command=command)
        await asyncio.sleep(0.5)
    server.restart()
    await asyncio.sleep(0.5)
    server.restart(kill=True)
    async with api(server) as client:
        final = await wait_job(client, host_id, job["id"], timeout=20)
        assert final["status"] == "completed", final
        assert final["stdout"] == "".join(f"line {i}\n" for i in range(1, 31)) and final["stderr"] == "fin\n"
        out, events = await collect(client, host_id, job["id"])
        assert out["stdout"].decode() == final["stdout"] and events[-2][1] == "exit"


async def test_job_survives_an_agent_reconnect(server: Any, start_agent: Any) -> None:
    """The agent freezes long enough for the server to drop its control connection (heartbeats lost),
    then wakes and redials: the job it kept is still running and ends correct."""
    host = server.register("flaky")
    agent = start_agent(host["host_key"])
    await server.wait_for_status(host["id"], "online")
    command = "for i in $(seq 1 25); do echo tick $i; sleep 0.1; done"
    async with api(server) as client:
        job = await run(client, host["id"], wait=None, command=command)
        await asyncio.sleep(0.3)
        agent.send_signal(signal.SIGSTOP)
        await server.wait_for_status(host["id"], "offline", timeout=10)
        agent.send_signal(signal.SIGCONT)
        await server.wait_for_status(host["id"], "online", timeout=15)
        assert (await get_job(client, host["id"], job["id"]))["status"] in ("running", "completed")
        final = await wait_job(client, host["id"], job["id"])
        assert final["status"] == "completed", final
        assert final["stdout"] == "".join(f"tick {i}\n" for i in range(1, 26))


async def test_spool_is_deleted_once_the_server_has_the_exit(
    server: Any, start_agent: Any, tmp_path: Path
) -> None:
    host_id = await online_host(server, start_agent)
    [state] = tmp_path.glob("agent-state-*")  # the one agent's state dir
    spools = state / "jobs"
    async with api(server) as client:
        job = await run(client, host_id, wait=None, command="sleep 0.3; echo spooled")
        await asyncio.sleep(0.1)
        assert [p.name for p in spools.iterdir()] == [f"{job['id']}.spool"]
        assert (await wait_job(client, host_id, job["id"]))["stdout"] == "spooled\n"
        deadline = time.monotonic() + 5
        while list(spools.iterdir()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert list(spools.iterdir()) == []


async def test_revoking_a_host_fails_its_running_jobs_and_kills_them(
    server: Any, start_agent: Any, tmp_path: Path
) -> None:
    host_id = await online_host(server, start_agent)
    pids = tmp_path / "pids"
    async with api(server) as client:
        job = await run(client, host_id, wait=None, command=f"sleep 300 & echo $! > {pids}; wait")
        (pid,) = await pids_in(pids, 1)
        assert (await client.delete(f"/hosts/{host_id}")).status_code == 204
        final = await get_job(client, host_id, job["id"])
        assert final["status"] == "failed" and final["error"] == "host revoked"
        assert await gone(pid), "the revoked host's agent left its job running"
        response = await client.post(f"/hosts/{host_id}/exec", json={"command": "true"})
        assert error(response) == (409, "HOST_REVOKED")


async def test_job_the_agent_lost_is_failed(server: Any, start_agent: Any) -> None:
    host = server.register("forgetful")
    agent = start_agent(host["host_key"])
    await server.wait_for_status(host["id"], "online")
    async with api(server) as client:
        job = await run(client, host["id"], wait=None, command="sleep 30")
        agent.stop()  # a stopped agent kills its jobs; a new one does not know them
        start_agent(host["host_key"])
        await server.wait_for_status(host["id"], "online")
        final = await wait_job(client, host["id"], job["id"], timeout=10)
        assert final["status"] == "failed" and final["error"] == "lost by the agent"


async def test_exec_to_an_agent_that_does_not_answer_is_accepted_queued_and_settled_later(
    server: Any, start_agent: Any, tmp_path: Path
) -> None:
    """The agent is connected but frozen: the start is never confirmed. The job was stored, so the API
    must not answer 5xx (MIOSA's Go SDK retries a 5xx POST and would run it twice): 201 with the job
    ``queued``; once the agent is back its record says what became of it, and that agrees with whether
    the command ran."""
    host = server.register("frozen")
    agent = start_agent(host["host_key"])
    await server.wait_for_status(host["id"], "online")
    marker = tmp_path / "ran"
    async with api(server) as client:
        agent.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            response = await client.post(f"/hosts/{host['id']}/exec", json={"command": f"touch {marker}"})
            assert time.monotonic() - started < 5  # the call timeout (3 s) or the heartbeat loss (1.5 s)
            assert response.status_code == 201, response.text
            job = response.json()
            assert job["status"] == "queued" and job["state"] == "queued" and job["exit_code"] is None
            listed = (await client.get(f"/hosts/{host['id']}/exec")).json()
            assert listed["meta"]["total"] == 1 and listed["data"][0]["id"] == job["id"]
        finally:
            agent.send_signal(signal.SIGCONT)
        await server.wait_for_status(host["id"], "online", timeout=15)  # the agent redials (or stayed)
        final = await wait_job(client, host["id"], job["id"], timeout=15)
        assert final["status"] in ("completed", "failed"), final
        await asyncio.sleep(0.5)
        assert marker.exists() == (final["status"] == "completed"), final
        assert (await client.get(f"/hosts/{host['id']}/exec")).json()["meta"]["total"] == 1


async def test_cancel_of_a_running_job_on_an_offline_host_is_409(
    server: Any, start_agent: Any, tmp_path: Path
) -> None:
    """Nothing can kill the job while its agent is gone: 409 HOST_OFFLINE, and the job is left running."""
    host = server.register("gone")
    agent = start_agent(host["host_key"])
    await server.wait_for_status(host["id"], "online")
    pids = tmp_path / "pids"
    async with api(server) as client:
        job = await run(client, host["id"], wait=None, command=f"echo $$ > {pids}; exec sleep 300")
        (pid,) = await pids_in(pids, 1)
        try:
            agent.send_signal(signal.SIGKILL)
            await server.wait_for_status(host["id"], "offline", timeout=10)
            response = await client.delete(f"/hosts/{host['id']}/exec/{job['id']}")
            assert error(response) == (409, "HOST_OFFLINE")
            after = await get_job(client, host["id"], job["id"])
            assert after["status"] == "running" and after["completed_at"] is None and after["error"] is None
            assert alive(pid)  # the job runs in a session of its own: the agent's death did not kill it
        finally:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
