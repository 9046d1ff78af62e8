"""What MIOSA's Go SDK (miosa-go v2, the reference's dialect) expects on the wire, and the guarantees a
retrying client relies on: no 5xx once a job is accepted, ``Idempotency-Key`` replays (real server,
real agent; plain httpx as the Go SDK's requests)."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import time
from pathlib import Path
from typing import Any

from conftest import api, error
from conftest import online_host_id as online_host

FINAL = ("completed", "failed", "cancelled")


async def data_frames(client: Any, url: str, **kwargs: Any) -> list[Any]:
    """Every ``data:`` of an SSE answer, as the Go SDK reads them: JSON, except the ``[DONE]`` it stops
    at (which must come last); ``event:`` and ``id:`` are ignored, lines stay under 64 KiB."""
    frames: list[Any] = []
    async with client.stream(kwargs.pop("method", "GET"), url, **kwargs) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            assert len(line) < 64 * 1024
            if line.startswith("data:"):
                text = line[5:].strip()
                frames.append(text if text == "[DONE]" else json.loads(text))
    assert frames and frames[-1] == "[DONE]" and "[DONE]" not in frames[:-1]
    return frames[:-1]


def output(frames: list[dict[str, Any]], stream: str) -> bytes:
    """The bytes of one stream's chunk frames (``encoding: base64`` decoded)."""
    out = b""
    for frame in frames:
        if frame["type"] == "exec_chunk" and frame["stream"] == stream:
            data = frame["data"]
            out += base64.b64decode(data) if frame.get("encoding") == "base64" else data.encode()
    return out


async def wait_final(client: Any, host_id: str, job_id: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = (await client.get(f"/hosts/{host_id}/exec/{job_id}")).json()
        if job["status"] in FINAL or time.monotonic() > deadline:
            return job
        await asyncio.sleep(0.05)


async def test_reference_dialect_and_data_only_frames(server: Any, start_agent: Any) -> None:
    host_id = await online_host(server, start_agent)
    async with api(server) as client:
        body = {
            "command": "sh",
            "args": ["-c", "echo $A; printf '\\377' >&2; exit 2"],
            "env": ["A=b"],
            "timeout": 5,
        }
        response = await client.post(f"/hosts/{host_id}/exec", json=body, params={"wait": 20})
        assert response.status_code == 201, response.text
        job = response.json()
        # the reference's fields (Go's JobData) and MIOSA's hosted ones, side by side
        assert (job["status"], job["exit_code"], job["stdout"], job["command"]) == ("failed", 2, "b\n", "sh")
        assert job["env"] == ["A=b"] and job["args"] == body["args"] and job["completed_at"]
        assert (job["cmd"], job["state"], job["timeout"], job["timeout_ms"]) == ("sh", "failed", 5, 5000)
        assert job["ended_at"] == job["completed_at"] and job["inserted_at"] == job["created_at"]

        frames = await data_frames(client, f"/hosts/{host_id}/exec/{job['id']}/stream")
        for frame in frames:  # self-describing: Go's JobEvent {type, job_id, data, timestamp}
            assert frame["job_id"] == job["id"] and frame["timestamp"].endswith("Z") and "data" in frame
        assert output(frames, "stdout") == b"b\n" and output(frames, "stderr") == b"\xff"
        end = frames[-1]
        assert end["type"] == "exec_result" and end["exit_code"] == 2 and end["state"] == "failed"
        assert end["data"] == {"status": "failed", "exit_code": 2, "error": None}

        # the same frames on the streaming POST of the hosted dialect
        hosted = {"cmd": "echo", "args": ["x"], "env": [{"name": "K", "value": "V"}], "timeout_ms": 3000}
        posted = await data_frames(
            client, f"/hosts/{host_id}/exec", method="POST", json={**hosted, "stream": True}
        )
        assert output(posted, "stdout") == b"x\n" and posted[-1]["type"] == "exec_result"
        # and the blocking one: 200 with the result
        blocking = await client.post(f"/hosts/{host_id}/exec", json={**hosted, "stream": False})
        assert blocking.status_code == 200 and blocking.json()["stdout"] == "x\n"
        assert blocking.json()["job_id"] == blocking.json()["id"] and blocking.json()["exit_code"] == 0

        # one dialect's fields each: mixing command and cmd that differ, or timeout and timeout_ms, is 400
        for bad in ({"command": "a", "cmd": "b"}, {"command": "a", "timeout": 1, "timeout_ms": 1000}):
            assert error(await client.post(f"/hosts/{host_id}/exec", json=bad)) == (400, "VALIDATION_ERROR")
        # the reference's lists: {data, meta} with the default page of 20
        listed = (await client.get(f"/hosts/{host_id}/exec")).json()
        assert listed["meta"] == {"total": 3, "page": 1, "per_page": 20}


async def test_a_retried_post_runs_once(server: Any, start_agent: Any, tmp_path: Path) -> None:
    """The agent is frozen, so its start is never confirmed: the answer is 201 (queued), not a 5xx the Go
    SDK would retry; a retry with the same Idempotency-Key gets that answer again; the command runs at
    most once and the record says whether it did."""
    host = server.register("frozen")
    agent = start_agent(host["host_key"])
    await server.wait_for_status(host["id"], "online")
    counter = tmp_path / "runs"
    body = {"command": f"echo ran >> {counter}"}
    headers = {"Idempotency-Key": "retry-1"}
    async with api(server) as client:
        agent.send_signal(signal.SIGSTOP)
        try:
            first = await client.post(f"/hosts/{host['id']}/exec", json=body, headers=headers)
            assert first.status_code == 201, first.text
            assert first.json()["status"] == "queued"
            again = await client.post(f"/hosts/{host['id']}/exec", json=body, headers=headers)
            assert again.status_code == 201 and again.json() == first.json()
            assert again.headers["idempotent-replayed"] == "true"
        finally:
            agent.send_signal(signal.SIGCONT)
        final = await wait_final(client, host["id"], first.json()["id"])
        assert final["status"] in ("completed", "failed"), final
        await asyncio.sleep(0.5)
        runs = counter.read_text().count("ran") if counter.exists() else 0
        assert runs == (1 if final["status"] == "completed" else 0)
        assert (await client.get(f"/hosts/{host['id']}/exec")).json()["meta"]["total"] == 1


async def test_idempotency_key_replays_refuses_and_is_per_tenant(
    server: Any, start_agent: Any, tmp_path: Path
) -> None:
    host_id = await online_host(server, start_agent)
    counter = tmp_path / "count"
    url = f"/hosts/{host_id}/exec"
    async with api(server) as client:
        body = {"command": f"echo once >> {counter}"}
        first = await client.post(url, json=body, params={"wait": 10}, headers={"Idempotency-Key": "k1"})
        assert first.status_code == 201 and "idempotent-replayed" not in first.headers
        replay = await client.post(url, json=body, params={"wait": 10}, headers={"Idempotency-Key": "k1"})
        assert (replay.status_code, replay.json()) == (201, first.json())
        assert counter.read_text() == "once\n"
        other = await client.post(url, json={"command": "true"}, headers={"Idempotency-Key": "k1"})
        assert error(other) == (422, "IDEMPOTENCY_KEY_REUSED")
        # an answer that is not a 5xx is kept as it was, errors included
        bad = await client.post(url, json={}, headers={"Idempotency-Key": "k2"})
        assert error(bad) == (400, "VALIDATION_ERROR")
        assert (await client.post(url, json={}, headers={"Idempotency-Key": "k2"})).json() == bad.json()
        # any POST: registering a host twice with one key makes one host
        made = await client.post("/hosts", json={"name": "once"}, headers={"Idempotency-Key": "h1"})
        remade = await client.post("/hosts", json={"name": "once"}, headers={"Idempotency-Key": "h1"})
        assert made.status_code == remade.status_code == 201 and made.json()["id"] == remade.json()["id"]
        # a streamed answer cannot be replayed: the retry is 409, and the job ran once
        stream_body = {"cmd": f"echo streamed >> {counter}", "stream": True}
        frames = await data_frames(
            client, url, method="POST", json=stream_body, headers={"Idempotency-Key": "s1"}
        )
        assert frames[-1]["type"] == "exec_result"
        retried = await client.post(url, json=stream_body, headers={"Idempotency-Key": "s1"})
        assert error(retried) == (409, "CONFLICT") and counter.read_text() == "once\nstreamed\n"
        assert error(await client.post(url, json=body, headers={"Idempotency-Key": ""})) == (
            400,
            "VALIDATION_ERROR",
        )
    _, token = server.new_tenant()
    async with api(server, token) as stranger:  # keys are per tenant
        theirs = await stranger.post("/hosts", json={"name": "once"}, headers={"Idempotency-Key": "h1"})
        assert theirs.status_code == 201 and theirs.json()["id"] != made.json()["id"]
