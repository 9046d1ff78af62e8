"""Every job method of the client against the real embedded server and a real agent running real
processes: run (with and without ``?wait``), list, get, cancel, and the output stream with resume."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from oc_tui.api import OpenComputersClient, errors, models
from oc_tui.api.streams import JobExit, OutputChunk, OutputTruncated, job_output_bytes, job_output_item


async def collect(stream: Any) -> list[models.JobEvent]:
    async with stream:
        return [event async for event in stream]


def output_of(events: list[models.JobEvent], kind: str = "stdout") -> bytes:
    return b"".join(job_output_bytes(event) for event in events if event.type == kind)


def test_job_output_bytes_reads_text_and_base64() -> None:
    def event(data: dict[str, Any]) -> models.JobEvent:
        return models.JobEvent(type="stdout", job_id="job_abc", data=data, timestamp=models.utcnow())

    assert job_output_bytes(event({"text": "héllo\n"})) == "héllo\n".encode()
    assert job_output_bytes(event({"b64": "/w=="})) == b"\xff"
    assert job_output_bytes(event({"b64": "not base64!"})) == b""
    assert job_output_bytes(event({"status": "completed"})) == b""


async def test_run_with_wait_returns_the_finished_job(client: OpenComputersClient, host: dict) -> None:
    job = await client.run_job(host["id"], "echo hello; echo oops >&2; exit 3", wait=10)
    assert isinstance(job, models.Job)
    assert job.id.startswith("job_") and job.host_id == host["id"]
    assert (job.status, job.exit_code) == ("failed", 3)
    assert job.stdout == "hello\n" and job.stderr == "oops\n"
    assert job.completed_at is not None

    ok = await client.run_job(host["id"], "printf", args=["%s|%s", "a b", "$HOME"], wait=10)
    assert (ok.status, ok.exit_code, ok.stdout) == ("completed", 0, "a b|$HOME")  # no shell: no expansion

    env = await client.run_job(host["id"], "echo $GREETING", env=["GREETING=hi"], cwd="/", wait=10)
    assert env.stdout == "hi\n"


async def test_run_answers_at_once_then_list_get_and_stream(client: OpenComputersClient, host: dict) -> None:
    first = await client.run_job(host["id"], "true", wait=10)
    job = await client.run_job(host["id"], "echo one; sleep 0.3; echo two")
    assert job.status in ("queued", "running")

    events = await asyncio.wait_for(collect(client.job_events(host["id"], job.id)), 15)
    assert output_of(events) == b"one\ntwo\n"
    assert events[-1].type == "exit"
    assert events[-1].data["status"] == "completed" and events[-1].data["exit_code"] == 0
    assert all(event.job_id == job.id for event in events)

    done = await client.get_job(host["id"], job.id)
    assert (done.status, done.exit_code, done.stdout) == ("completed", 0, "one\ntwo\n")

    page = await client.list_jobs(host["id"])
    assert [j.id for j in page.data] == [job.id, first.id]  # newest first

    # a late subscriber gets everything from the start
    again = await asyncio.wait_for(collect(client.job_events(host["id"], job.id)), 15)
    assert output_of(again) == b"one\ntwo\n"


async def test_stream_is_binary_exact_and_resumes(client: OpenComputersClient, host: dict) -> None:
    job = await client.run_job(
        host["id"], r"printf 'a\377\376b\n'; printf 'line2\n'; printf 'err\n' >&2", wait=10
    )
    events = await asyncio.wait_for(collect(client.job_events(host["id"], job.id)), 15)
    assert output_of(events) == b"a\xff\xfeb\nline2\n"
    assert output_of(events, "stderr") == b"err\n"

    # resume after the first event: the rest, nothing twice
    output = [e for e in events if e.type in ("stdout", "stderr")]
    assert output[0].event_id
    rest = await asyncio.wait_for(
        collect(client.job_events(host["id"], job.id, last_event_id=output[0].event_id)), 15
    )
    assert job_output_bytes(output[0]) + output_of(rest) + output_of(rest, "stderr") == (
        output_of(events) + output_of(events, "stderr")
    )
    assert rest[-1].type == "exit"


def test_job_output_items_are_typed() -> None:
    def event(kind: str, data: dict[str, Any], event_id: str | None = None) -> models.JobEvent:
        return models.JobEvent(
            type=kind, job_id="job_abc", data=data, timestamp=models.utcnow(), event_id=event_id
        )

    chunk = job_output_item(event("stderr", {"b64": "/w=="}, "7"))
    assert chunk == OutputChunk("stderr", b"\xff", "7") and chunk.stderr
    assert job_output_item(event("truncated", {"limit": 1024})) == OutputTruncated(1024)
    end = job_output_item(event("exit", {"status": "failed", "exit_code": 3, "error": None, "extra": 1}))
    assert isinstance(end, JobExit)
    assert (end.status, end.exit_code, end.error, end.data["extra"]) == ("failed", 3, None, 1)
    assert job_output_item(event("something_new", {})) is None


async def test_job_output_gives_bytes_in_order_then_the_exit(client: OpenComputersClient, host: dict) -> None:
    job = await client.run_job(host["id"], r"printf 'a\377\n'; sleep 0.2; printf 'err\n' >&2; exit 4")

    async def follow() -> list[Any]:
        async with client.job_output(host["id"], job.id) as output:
            items = [item async for item in output]
            assert output.last_event_id == items[-1].event_id
            return items

    items = await asyncio.wait_for(follow(), 15)
    chunks = [item for item in items if isinstance(item, OutputChunk)]
    assert b"".join(c.data for c in chunks if c.stream == "stdout") == b"a\xff\n"
    assert b"".join(c.data for c in chunks if c.stderr) == b"err\n"
    assert isinstance(items[-1], JobExit) and not any(isinstance(i, JobExit) for i in items[:-1])
    assert (items[-1].status, items[-1].exit_code) == ("failed", 4)


async def test_cancel_kills_a_running_job(client: OpenComputersClient, host: dict) -> None:
    job = await client.run_job(host["id"], "sleep 30")
    for _ in range(100):
        if (await client.get_job(host["id"], job.id)).status == "running":
            break
        await asyncio.sleep(0.05)
    await client.cancel_job(host["id"], job.id)
    events = await asyncio.wait_for(collect(client.job_events(host["id"], job.id)), 15)
    assert events[-1].type == "exit" and events[-1].data["status"] == "cancelled"
    assert (await client.get_job(host["id"], job.id)).status == "cancelled"
    await client.cancel_job(host["id"], job.id)  # cancelling a finished job: no error, no change


async def test_errors(client: OpenComputersClient, server: Any) -> None:
    offline = server.register("never-connected")
    with pytest.raises(errors.HostOfflineError) as info:
        await client.run_job(offline["id"], "true")
    assert info.value.status == 409
    with pytest.raises(errors.NotFoundError):
        await client.get_job(offline["id"], "job_doesnotexist")
    with pytest.raises(errors.NotFoundError):
        await collect(client.job_events(offline["id"], "job_doesnotexist"))
