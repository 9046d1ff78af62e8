"""AI agent sessions end to end: the real server runs the loop against a scripted OpenAI-compatible
server (real HTTP, streamed and not), the tools run on a real agent's host (files, jobs), and the
stream is read as both of MIOSA's SDKs read it."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import api, error, online_host_id
from scripted_llm import Reply, Script, answer, call, scripted_llm

from oc_tui.api.models import Job

FINAL = ("completed", "failed", "cancelled")


@pytest.fixture
def llm() -> Any:
    with scripted_llm() as script:
        yield script


async def configure(
    client: httpx.AsyncClient, llm: Script, *, streaming: bool = True, key_secret: str = ""
) -> None:
    body = {
        "base_url": llm.base_url,
        "model": "scripted-1",
        "api_key_secret": key_secret,
        "streaming": streaming,
    }
    response = await client.put("/agent/config", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["configured"] is True


async def dispatch(client: httpx.AsyncClient, host_id: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/hosts/{host_id}/agent/dispatch", json=body)
    assert response.status_code == 201, response.text
    session = response.json()
    assert session["id"].startswith("sess_") and session["status"] in ("pending", "running")
    return session


async def wait_session(
    client: httpx.AsyncClient, host_id: str, session_id: str, done: Any = None, timeout: float = 30
) -> dict[str, Any]:
    """Poll the session until ``done(session)`` (default: a final status)."""
    check = done or (lambda s: s["status"] in FINAL)
    deadline = time.monotonic() + timeout
    while True:
        session = (await client.get(f"/hosts/{host_id}/agent/sessions/{session_id}")).json()
        if check(session):
            return session
        if time.monotonic() > deadline:
            raise AssertionError(f"session not there after {timeout} s: {session}")
        await asyncio.sleep(0.05)


async def go_frames(
    client: httpx.AsyncClient, url: str, **headers: str
) -> list[tuple[str | None, dict[str, Any]]]:
    """The stream as the Go SDK reads it: every ``data:`` line is JSON (it would stop at ``[DONE]``; the
    stream has none, it ends), lines under 64 KiB. Returns ``(id, data)`` pairs."""
    frames: list[tuple[str | None, dict[str, Any]]] = []
    event_id = None
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            assert len(line) < 64 * 1024
            if line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("data:"):
                frames.append((event_id, json.loads(line[5:])))  # [DONE] would fail here, as in Python's SDK
    return frames


def tool_results(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


async def test_a_session_works_on_the_host(
    server: Any, start_agent: Any, llm: Script, tmp_path: Path
) -> None:
    """Streamed answers: write, run, edit, read, list, then a final answer; the file is there, the command
    is a job of the host, the model saw every result, the stream ends for both SDKs and resumes."""
    host_id = await online_host_id(server, start_agent)
    work = tmp_path / "x"
    target = work / "hello.txt"
    llm.plan(
        call("write_file", path=str(target), content="hi\n"),
        call("run_command", command="cat hello.txt; echo $OC_AGENT_SESSION", cwd=str(work)),
        call("edit_file", path=str(target), old_text="hi", new_text="hello"),
        call("read_file", path=str(target)),
        call("list_dir", path=str(work)),
        answer("Done: **hello.txt** says hello."),
    )
    async with api(server) as client:
        await configure(client, llm)
        session = await dispatch(
            client, host_id, task="create hello.txt", context={"team": "ops"}, max_turns=10
        )
        sid = session["id"]
        session = await wait_session(client, host_id, sid)
        assert session["status"] == "completed", session
        assert session["turns_used"] == 6 and session["completed_at"] and session["error"] is None
        assert session["result_summary"] == "Done: **hello.txt** says hello."
        assert target.read_text() == "hello\n"
        # the model got the task with its context, then every tool's result
        first = llm.requests[0]
        assert first["model"] == "scripted-1" and first["stream"] is True
        assert (
            "create hello.txt" in first["messages"][1]["content"]
            and "team: ops" in first["messages"][1]["content"]
        )
        assert {t["function"]["name"] for t in first["tools"]} == {
            "run_command",
            "read_file",
            "write_file",
            "edit_file",
            "list_dir",
        }
        results = tool_results(llm.requests[-1])
        assert results[0].startswith("wrote 3 bytes")
        assert "exit_code: 0" in results[1] and f"hi\n{sid}" in results[1]
        assert results[2] == f"replaced 1 occurrence in {target}"
        assert results[3] == "hello\n"
        assert "hello.txt" in results[4]
        # run_command was a job of the host, its environment naming the session
        jobs = (await client.get(f"/hosts/{host_id}/exec")).json()["data"]
        assert len(jobs) == 1 and jobs[0]["status"] == "completed"
        assert f"OC_AGENT_SESSION={sid}" in jobs[0]["env"]
        assert Job.model_validate(jobs[0]).agent_session == sid  # what the Jobs tab shows

        # the stream, as the Go SDK reads it: JSON data lines, ending after the final status
        url = f"/hosts/{host_id}/agent/sessions/{sid}/stream"
        frames = await go_frames(client, url)
        types = [data["type"] for _, data in frames]
        assert (
            types[0] == "status" and types[-1] == "status" and frames[-1][1]["data"]["status"] == "completed"
        )
        assert (
            types.count("turn_started") == 6
            and types.count("tool_call") == 5
            and types.count("tool_result") == 5
        )
        assert "final_answer" in types
        assert all(data["session_id"] == sid and data["timestamp"].endswith("Z") for _, data in frames)
        ids = [int(i or 0) for i, _ in frames]
        assert ids == list(range(1, len(frames) + 1))
        run = next(
            d["data"] for _, d in frames if d["type"] == "tool_call" and d["data"]["name"] == "run_command"
        )
        assert run["arguments"]["cwd"] == str(work)
        ran = next(
            d["data"] for _, d in frames if d["type"] == "tool_result" and d["data"]["name"] == "run_command"
        )
        assert ran["job_id"] == jobs[0]["id"] and ran["exit_code"] == 0
        # /events is the same stream; Last-Event-ID resumes after an event
        again = await go_frames(
            client, f"/hosts/{host_id}/agent/sessions/{sid}/events", **{"Last-Event-ID": "5"}
        )
        assert again == frames[5:]

        listed = (await client.get(f"/hosts/{host_id}/agent/sessions")).json()
        assert [s["id"] for s in listed["data"]] == [sid] and listed["meta"]["total"] == 1
        # cancelling a finished session changes nothing
        assert (await client.delete(f"/hosts/{host_id}/agent/sessions/{sid}")).status_code == 204
        assert (await client.get(f"/hosts/{host_id}/agent/sessions/{sid}")).json()["status"] == "completed"


async def test_miosa_python_sdk_agent_methods(server: Any, start_agent: Any, llm: Script) -> None:
    """MIOSA's Python SDK, unchanged: dispatch (with its extra fields), list, get, events (to the end,
    no [DONE] to trip over), cancel."""
    from miosa import Miosa
    from miosa.resources.open_computers.types import AgentDispatchParams

    host_id = await online_host_id(server, start_agent)
    llm.plan(call("list_dir", path="/"), answer("The root has the usual directories."))
    async with api(server) as client:
        secret = {"name": "LLM_KEY", "value": "sk-test-1234"}
        assert (await client.post("/secrets", json=secret)).status_code == 201
        await configure(client, llm, streaming=False, key_secret="LLM_KEY")
    agents = Miosa(api_key=server.token, base_url=server.base_url + "/api/v1").open_computers.agents
    params = AgentDispatchParams(
        task="look around", model="scripted-2", max_turns=4, tools=["list_dir"], budget={"max_tokens": 1000}
    )
    session = await asyncio.to_thread(agents.dispatch, host_id, params)
    assert session.id.startswith("sess_") and session.host_id == host_id and session.max_turns == 4
    assert session.model == "scripted-2" and session.tools == ["list_dir"]
    events = await asyncio.to_thread(lambda: list(agents.events(host_id, session.id)))
    assert events[-1].type == "status" and events[-1].data["status"] == "completed"
    assert all(e.session_id == session.id for e in events)
    assert [e.type for e in events if e.type in ("tool_call", "tool_result", "final_answer")] == [
        "tool_call",
        "tool_result",
        "final_answer",
    ]
    got = await asyncio.to_thread(agents.get, host_id, session.id)
    assert got.status.value == "completed" and got.turns_used == 2 and got.result_summary
    listed = await asyncio.to_thread(agents.list, host_id)
    assert [s.id for s in listed.data] == [session.id]
    assert [t["function"]["name"] for t in llm.requests[0]["tools"]] == ["list_dir"]
    assert llm.requests[0]["model"] == "scripted-2" and "stream" not in llm.requests[0]
    assert llm.keys == ["Bearer sk-test-1234"] * 2  # the key came from the tenant secret, to the model only
    await asyncio.to_thread(agents.cancel, host_id, session.id)  # finished: nothing changes


async def test_max_turns_and_model_errors(server: Any, start_agent: Any, llm: Script) -> None:
    """Non-streamed answers: a model that never stops is stopped at max_turns; a model error fails the
    session with the error stated."""
    host_id = await online_host_id(server, start_agent)
    llm.default = call("list_dir", path="/")
    async with api(server) as client:
        await configure(client, llm, streaming=False)
        session = await dispatch(client, host_id, task="loop forever", max_turns=2)
        session = await wait_session(client, host_id, session["id"])
        assert session["status"] == "failed" and session["turns_used"] == 2
        assert session["error"] == "max_turns (2) reached before a final answer"
        assert llm.arrived == 2

        llm.default = None
        llm.plan(Reply(error=(400, "model 'scripted-1' does not exist")))
        session = await dispatch(client, host_id, task="fail")
        session = await wait_session(client, host_id, session["id"])
        assert session["status"] == "failed"
        assert session["error"] == "the model endpoint answered 400: model 'scripted-1' does not exist"
        frames = await go_frames(client, f"/hosts/{host_id}/agent/sessions/{session['id']}/stream")
        assert [d["type"] for _, d in frames][-2:] == ["error", "status"]
        assert frames[-2][1]["data"]["message"] == session["error"]

        await configure(client, llm, key_secret="NO_SUCH_KEY")
        session = await wait_session(client, host_id, (await dispatch(client, host_id, task="x"))["id"])
        assert session["status"] == "failed" and "NO_SUCH_KEY" in session["error"], session
        assert llm.arrived == 3


async def test_cancel_during_a_model_call_and_during_a_command(
    server: Any, start_agent: Any, llm: Script, tmp_path: Path
) -> None:
    """Cancel drops the model call in flight, and kills a running command's process tree."""
    host_id = await online_host_id(server, start_agent)
    llm.plan(Reply(hold=True))
    async with api(server) as client:
        await configure(client, llm)
        session = await dispatch(client, host_id, task="think long")
        await llm.wait_requests(1)
        started = time.monotonic()
        assert (await client.delete(f"/hosts/{host_id}/agent/sessions/{session['id']}")).status_code == 204
        assert time.monotonic() - started < 5
        session = (await client.get(f"/hosts/{host_id}/agent/sessions/{session['id']}")).json()
        assert session["status"] == "cancelled" and session["completed_at"]

        pid_file = tmp_path / "pid"
        llm.plan(call("run_command", command=f"echo $$ > {pid_file}; sleep 60"))
        session = await dispatch(client, host_id, task="sleep")
        sid = session["id"]
        deadline = time.monotonic() + 15
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline, "the command did not start"
            await asyncio.sleep(0.05)
        pid = int(pid_file.read_text())
        assert (await client.delete(f"/hosts/{host_id}/agent/sessions/{sid}")).status_code == 204
        assert (await client.get(f"/hosts/{host_id}/agent/sessions/{sid}")).json()["status"] == "cancelled"
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists():
            assert time.monotonic() < deadline, "the command's process outlived the cancel"
            await asyncio.sleep(0.05)
        jobs = (await client.get(f"/hosts/{host_id}/exec")).json()["data"]
        assert jobs[0]["status"] == "cancelled"
        assert llm.arrived == 2  # no model call after the cancel


async def test_a_session_survives_a_control_plane_restart(
    server: Any, start_agent: Any, llm: Script, tmp_path: Path
) -> None:
    """The server restarts while a command runs: the session waits for that job (it survived) and goes on
    from its transcript to the end."""
    host_id = await online_host_id(server, start_agent)
    mark = tmp_path / "mark"
    llm.plan(
        call("run_command", command=f"touch {mark}; sleep 2; echo finished"),
        answer("It finished."),
    )
    async with api(server) as client:
        await configure(client, llm)
        session = await dispatch(client, host_id, task="run and wait")
        deadline = time.monotonic() + 15
        while not mark.exists():
            assert time.monotonic() < deadline, "the command did not start"
            await asyncio.sleep(0.05)
    await asyncio.to_thread(server.restart)
    async with api(server) as client:
        session = await wait_session(client, host_id, session["id"])
        assert session["status"] == "completed" and session["result_summary"] == "It finished.", session
        assert "finished" in tool_results(llm.requests[-1])[0]
        assert llm.arrived == 2
        jobs = (await client.get(f"/hosts/{host_id}/exec")).json()["data"]
        assert len(jobs) == 1 and jobs[0]["status"] == "completed"


async def test_approval_denied_then_approved_with_an_edit(
    server: Any, start_agent: Any, llm: Script, tmp_path: Path
) -> None:
    """Approval mode: a denied write never happens and the model sees the reason; an approved (edited)
    write happens as edited; a read needs no approval."""
    host_id = await online_host_id(server, start_agent)
    target = tmp_path / "x" / "hello.txt"
    llm.plan(
        call("write_file", path=str(target), content="hello"),
        call("write_file", path=str(target), content="hi"),
        call("read_file", path=str(target)),
        answer("Wrote it."),
    )
    async with api(server) as client:
        await configure(client, llm)
        session = await dispatch(client, host_id, task="write hello.txt", approval=True)
        sid = session["id"]
        base = f"/hosts/{host_id}/agent/sessions/{sid}"

        def waiting(s: dict[str, Any]) -> bool:
            return s["pending_approval"] is not None

        session = await wait_session(client, host_id, sid, waiting)
        pending = session["pending_approval"]
        assert pending["name"] == "write_file" and pending["arguments"]["content"] == "hello"
        wrong = await client.post(f"{base}/approval", json={"call_id": "nope", "decision": "approve"})
        assert error(wrong) == (409, "CONFLICT")
        deny = {"call_id": pending["call_id"], "decision": "deny", "reason": "say hi, not hello"}
        assert (await client.post(f"{base}/approval", json=deny)).status_code == 200
        session = await wait_session(
            client, host_id, sid, lambda s: waiting(s) and s["pending_approval"] != pending
        )
        assert not target.exists()
        assert tool_results(llm.requests[1]) == ["the operator denied this call: say hi, not hello"]
        pending = session["pending_approval"]
        edited = {"path": str(target), "content": "hi\n"}
        approve = {"call_id": pending["call_id"], "decision": "approve", "arguments": edited}
        assert (await client.post(f"{base}/approval", json=approve)).status_code == 200
        session = await wait_session(client, host_id, sid)
        assert session["status"] == "completed" and target.read_text() == "hi\n"
        frames = await go_frames(client, f"{base}/stream")
        decided = [d["data"] for _, d in frames if d["type"] == "approval_decided"]
        assert [d["decision"] for d in decided] == ["deny", "approve"] and decided[1]["arguments"] == edited
        assert sum(d["type"] == "approval_required" for _, d in frames) == 2


async def test_routes_in_process(inprocess: Any) -> None:
    """No model configured: 409 saying how; validation, IDs, other tenants, the configuration."""
    hosts = inprocess.app.state.hub
    host_id = (await inprocess.api.post("/hosts", json={"name": "h"})).json()["id"]
    response = await inprocess.api.post(f"/hosts/{host_id}/agent/dispatch", json={"task": "x"})
    assert error(response, exact=True) == (409, "CONFLICT")
    assert "PUT /api/v1/opencomputers/agent/config" in response.json()["error"]["message"]
    assert (await inprocess.api.get("/agent/config")).json()["configured"] is False
    bad = await inprocess.api.put("/agent/config", json={"base_url": "ftp://x", "model": "m"})
    assert error(bad) == (400, "VALIDATION_ERROR")
    config = {"base_url": "http://127.0.0.1:9/v1/", "model": "m", "api_key_secret": "LLM_KEY"}
    got = (await inprocess.api.put("/agent/config", json=config)).json()
    assert got == {**config, "base_url": "http://127.0.0.1:9/v1", "streaming": True, "configured": True}
    assert (await inprocess.other.get("/agent/config")).json()["configured"] is False
    hosts.is_online = lambda _host_id: False
    response = await inprocess.api.post(f"/hosts/{host_id}/agent/dispatch", json={"task": "x"})
    assert error(response) == (409, "HOST_OFFLINE")
    for body in ({}, {"task": ""}, {"task": "x", "max_turns": 0}, {"task": "x", "tools": ["rm"]}):
        response = await inprocess.api.post(f"/hosts/{host_id}/agent/dispatch", json=body)
        assert error(response) == (400, "VALIDATION_ERROR"), body
    assert error(await inprocess.api.get(f"/hosts/{host_id}/agent/sessions/nope")) == (400, "INVALID_ID")
    missing = await inprocess.api.get(f"/hosts/{host_id}/agent/sessions/sess_abcdefghijkl")
    assert error(missing) == (404, "NOT_FOUND")
    assert error(await inprocess.other.get(f"/hosts/{host_id}/agent/sessions")) == (404, "NOT_FOUND")
    empty = (await inprocess.api.get(f"/hosts/{host_id}/agent/sessions")).json()
    assert empty == {"data": [], "meta": {"total": 0, "page": 1, "per_page": 20}}


async def test_a_session_survives_the_agents_reconnect(
    server: Any, start_agent: Any, llm: Script, tmp_path: Path
) -> None:
    """The host's agent goes away while a write waits for approval; approved meanwhile, the write waits
    for the agent, which reconnects: the file is written and the session completes."""
    registration = server.register("reconnecting")
    host_id = registration["id"]
    agent = start_agent(registration["host_key"])
    await server.wait_for_status(host_id, "online", timeout=15)
    target = tmp_path / "later.txt"
    llm.plan(call("write_file", path=str(target), content="later"), answer("Written."))
    async with api(server) as client:
        await configure(client, llm)
        sid = (await dispatch(client, host_id, task="write later", approval=True))["id"]
        session = await wait_session(client, host_id, sid, lambda s: s["pending_approval"] is not None)
        agent.stop(signal.SIGKILL)
        await server.wait_for_status(host_id, "offline", timeout=15)
        approve = {"call_id": session["pending_approval"]["call_id"], "decision": "approve"}
        assert (
            await client.post(f"/hosts/{host_id}/agent/sessions/{sid}/approval", json=approve)
        ).status_code == 200
        await asyncio.sleep(0.5)
        assert (await client.get(f"/hosts/{host_id}/agent/sessions/{sid}")).json()["status"] == "running"
        start_agent(registration["host_key"])
        session = await wait_session(client, host_id, sid)
        assert session["status"] == "completed" and target.read_text() == "later"
        assert tool_results(llm.requests[-1]) == [f"wrote 5 bytes to {target}"]


def test_the_client_reads_the_hosted_status_words() -> None:
    """MIOSA's hosted API may answer ``succeeded``/``canceled``: the client's model reads them as ours."""
    from oc_tui.api.models import AgentSession

    base = {"id": "sess_abc", "host_id": "host_abc", "task": "t", "max_turns": 3}
    stamps = {"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
    statuses = [
        AgentSession.model_validate({**base, **stamps, "status": s}).status for s in ("succeeded", "canceled")
    ]
    assert statuses == ["completed", "cancelled"]
