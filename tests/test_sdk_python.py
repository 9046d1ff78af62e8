"""MIOSA's official Python SDK (``pip install miosa``, 2.19.x), unchanged, against a real oc-server and a
real oc-agent: every ``open_computers`` method the server implements, with its results checked.

The SDK is synchronous (its async twin is used once): its calls run in a thread, since the server
fixtures are async.
"""

from __future__ import annotations

import asyncio
import base64
import stat
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

miosa = pytest.importorskip("miosa")
from miosa import AsyncMiosa, Miosa  # noqa: E402
from miosa.errors import NotFoundError  # noqa: E402
from miosa.resources.open_computers.types import (  # noqa: E402
    HostCreateParams,
    HostStatus,
    JobChunkEvent,
    JobEnvVar,
    JobErrorEvent,
    JobResultEvent,
    JobRunParams,
    JobState,
)

T = TypeVar("T")


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a synchronous SDK call in a thread."""
    return await asyncio.to_thread(function, *args, **kwargs)


def sdk(server: Any) -> Any:
    """The SDK's ``open_computers`` for this test's tenant, as a user would make it."""
    return Miosa(api_key=server.token, base_url=server.base_url + "/api/v1").open_computers


async def sdk_host(server: Any, start_agent: Any, oc: Any, name: str = "sdk-box") -> str:
    """A host registered through the SDK, its agent running, online; its ID."""
    host = await call(oc.hosts.create, HostCreateParams(name=name, labels={"env": "prod"}))
    assert host.status == HostStatus.PENDING and host.host_key and host.labels == {"env": "prod"}
    start_agent(host.host_key)
    await server.wait_for_status(host.id, "online", timeout=15)
    return str(host.id)


def chunks(events: list[Any]) -> dict[str, bytes]:
    """The output bytes of ``exec_chunk`` events per stream (``encoding: base64`` decoded)."""
    out = {"stdout": b"", "stderr": b""}
    for event in events:
        if isinstance(event, JobChunkEvent):
            extra = event.model_extra or {}
            data = event.data or ""
            raw = base64.b64decode(data) if extra.get("encoding") == "base64" else data.encode()
            out[event.stream] += raw
    return out


async def test_hosts_jobs_and_streams(server: Any, start_agent: Any) -> None:
    oc = sdk(server)
    host_id = await sdk_host(server, start_agent, oc)

    listed = await call(oc.hosts.list)
    assert host_id in [h.id for h in listed.data] and listed.meta["per_page"] == 20  # the default page
    got = await call(oc.hosts.get, host_id)
    assert got.status == HostStatus.ONLINE and got.labels == {"env": "prod"} and got.host_key is None

    # jobs.run: blocks until the end; MIOSA's dialect (cmd, env as {name, value}, timeout_ms)
    script = "echo out $FOO; echo err >&2; exit 3"
    params = JobRunParams(
        cmd="sh", args=["-c", script], env=[JobEnvVar(name="FOO", value="bar")], timeout_ms=20000
    )
    result = await call(oc.jobs.run, host_id, params)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out bar\n", "err\n")
    job = await call(oc.jobs.get, host_id, result.job_id)
    assert job.id == result.job_id and job.cmd == "sh" and job.args == ["-c", script]
    assert job.state == JobState.FAILED and job.exit_code == 3 and job.timeout_ms == 20000
    assert job.started_at and job.ended_at and job.inserted_at and job.tenant_id == server.tenant_id
    ok = await call(oc.jobs.run, host_id, JobRunParams(cmd="uname -a"))
    assert ok.exit_code == 0 and ok.stdout.startswith("Linux") and ok.stderr == ""
    assert (await call(oc.jobs.get, host_id, ok.job_id)).state == JobState.SUCCEEDED
    assert (await call(oc.jobs.get, host_id, ok.job_id)).timeout_ms == 30000  # the hosted default

    # jobs.run_stream: 200 text/event-stream on the POST; chunks in order, one exec_result last
    command = "printf 'one\\n'; sleep 0.2; printf 'two\\n' >&2; sleep 0.2; printf 'bin\\377\\n'; exit 0"
    events = await call(lambda: list(oc.jobs.run_stream(host_id, JobRunParams(cmd=command))))
    assert isinstance(events[-1], JobResultEvent) and events[-1].exit_code == 0
    assert events[-1].elapsed_ms is not None and events[-1].elapsed_ms >= 300
    assert all(isinstance(e, JobChunkEvent) for e in events[:-1])
    assert chunks(events) == {"stdout": b"one\nbin\xff\n", "stderr": b"two\n"}
    order = [(e.stream, e.data) for e in events[:-1]]
    assert order.index(("stdout", "one\n")) < order.index(("stderr", "two\n"))
    # the binary chunk says it is base64, so its bytes are exact
    assert any((e.model_extra or {}).get("encoding") == "base64" for e in events[:-1])

    # jobs.start (202, durable) + jobs.stream of it + jobs.get
    started = await call(
        oc.jobs.start, host_id, "sleep 0.3; echo started $X", env=[{"name": "X", "value": "y"}]
    )
    job_id = started["id"]
    assert started["links"]["stream"].endswith(f"/exec/{job_id}/stream") and started["job"]["id"] == job_id
    streamed = await call(lambda: list(oc.jobs.stream(host_id, job_id)))
    assert chunks(streamed)["stdout"] == b"started y\n" and isinstance(streamed[-1], JobResultEvent)
    assert (await call(oc.jobs.get, host_id, job_id)).state == JobState.SUCCEEDED
    assert (await call(oc.jobs.get, host_id, job_id)).timeout_ms == 30000
    # a terminal job's stream replays its stored output (oc-server keeps it; see docs/api.md)
    replayed = await call(lambda: list(oc.jobs.stream(host_id, job_id)))
    assert [type(e) for e in replayed] == [type(e) for e in streamed] and chunks(replayed) == chunks(streamed)

    # jobs.cancel: the job's record and its stream end as canceled
    long = await call(oc.jobs.start, host_id, "sleep 30")
    await call(oc.jobs.cancel, host_id, long["id"])
    canceled = await call(oc.jobs.get, host_id, long["id"])
    assert canceled.state == JobState.CANCELED and canceled.ended_at
    ended = await call(lambda: list(oc.jobs.stream(host_id, long["id"])))
    assert len(ended) == 1 and isinstance(ended[0], JobErrorEvent) and ended[0].reason

    # a timeout: exit_code None, state timeout, the stream ends with exec_error
    late = await call(oc.jobs.run, host_id, JobRunParams(cmd="sleep 10", timeout_ms=1000))
    assert late.exit_code is None
    assert (await call(oc.jobs.get, host_id, late.job_id)).state == JobState.TIMEOUT

    # jobs.list: {"jobs": [...]} newest first, at most ``limit``
    recent = await call(oc.jobs.list, host_id, limit=2)
    assert [row.job_id for row in recent.jobs] == [late.job_id, long["id"]]
    assert recent.jobs[1].status == "cancelled" and recent.jobs[0].dispatched_at
    everything = await call(oc.jobs.list, host_id)
    assert len(everything.jobs) == 6 and all(row.kind == "exec" for row in everything.jobs)
    finished = [row for row in everything.jobs if row.job_id == result.job_id]
    assert finished[0].completed_at and finished[0].duration_ms is not None


async def test_run_stream_to_an_offline_host_is_an_error_in_the_stream(server: Any) -> None:
    """Every stream answers 200 and puts its error in the stream: the SDK yields an exec_error."""
    oc = sdk(server)
    host = await call(oc.hosts.create, HostCreateParams(name="never-online"))
    events = await call(lambda: list(oc.jobs.run_stream(host.id, JobRunParams(cmd="true"))))
    assert len(events) == 1 and isinstance(events[0], JobErrorEvent) and "offline" in (events[0].reason or "")


async def test_files(server: Any, start_agent: Any, tmp_path: Any) -> None:
    oc = sdk(server)
    host_id = await sdk_host(server, start_agent, oc, "sdk-files")
    root = tmp_path / "sdk"
    await call(oc.files.mkdir, host_id, str(root / "deep" / "er"))
    assert (root / "deep" / "er").is_dir()
    data = bytes(range(256)) * 1000 + "é\n".encode()
    entry = await call(oc.files.upload, host_id, str(root / "deep" / "blob.bin"), data, "blob.bin")
    assert entry.name == "blob.bin" and entry.size == len(data) and entry.is_dir is False
    assert entry.path == str(root / "deep" / "blob.bin") and entry.modified_at.endswith("Z")
    assert (root / "deep" / "blob.bin").read_bytes() == data

    info = await call(oc.files.stat, host_id, str(root / "deep" / "blob.bin"))
    assert stat.S_ISREG(info.mode) and info.mode == (root / "deep" / "blob.bin").lstat().st_mode
    assert info.size == len(data) and info.is_dir is False and info.is_symlink is False
    folder = await call(oc.files.stat, host_id, str(root / "deep"))
    assert stat.S_ISDIR(folder.mode) and folder.is_dir

    listing = await call(oc.files.list, host_id, str(root / "deep"))
    assert listing.path == str(root / "deep")
    assert [(e.name, e.is_dir) for e in listing.entries] == [("blob.bin", False), ("er", True)]
    assert all(isinstance((e.model_extra or {}).get("mode"), int) for e in listing.entries)

    assert await call(oc.files.download, host_id, str(root / "deep" / "blob.bin")) == data

    await call(oc.files.delete, host_id, str(root / "deep" / "blob.bin"))
    assert not (root / "deep" / "blob.bin").exists()
    with pytest.raises(NotFoundError):
        await call(oc.files.stat, host_id, str(root / "deep" / "blob.bin"))
    await call(oc.files.delete, host_id, str(root / "deep"), recursive=True)
    assert not (root / "deep").exists()


async def test_tags_are_labels(server: Any, start_agent: Any) -> None:
    """Tags ↔ labels: ``k=v`` is the label ``k: v``, a bare ``k`` the label ``k: ""``, both ways."""
    oc = sdk(server)
    host = await call(oc.hosts.create, HostCreateParams(name="tagged", labels={"env": "prod", "gpu": ""}))
    other = await call(oc.hosts.create, HostCreateParams(name="other", labels={"zone": "b"}))

    catalog = await call(oc.tags.list_catalog)
    assert catalog.tags == ["env=prod", "gpu", "zone=b"]

    added = await call(oc.tags.add_host_tag, host.id, "fast")
    assert added.host.id == host.id and added.host.tags == ["env=prod", "fast", "gpu"]
    again = await call(oc.tags.add_host_tag, host.id, "fast")  # idempotent
    assert again.host.tags == added.host.tags
    moved = await call(oc.tags.add_host_tag, host.id, "env=dev")  # sets the label's value
    assert moved.host.tags == ["env=dev", "fast", "gpu"]
    assert (await call(oc.hosts.get, host.id)).labels == {"env": "dev", "fast": "", "gpu": ""}

    removed = await call(oc.tags.remove_host_tag, host.id, "gpu")
    assert removed.host.tags == ["env=dev", "fast"]
    untouched = await call(oc.tags.remove_host_tag, host.id, "env")  # exactly: "env" is not "env=dev"
    assert untouched.host.tags == ["env=dev", "fast"]

    replaced = await call(oc.tags.replace_host_tags, host.id, tags=["team=core", "linux"])
    assert replaced.host.tags == ["linux", "team=core"]
    assert (await call(oc.hosts.get, host.id)).labels == {"linux": "", "team": "core"}
    assert (await call(oc.tags.list_catalog)).tags == ["linux", "team=core", "zone=b"]
    assert (await call(oc.hosts.get, other.id)).labels == {"zone": "b"}


async def test_tickets_revoke_and_the_async_client(server: Any, start_agent: Any) -> None:
    oc = sdk(server)
    host_id = await sdk_host(server, start_agent, oc, "sdk-tickets")
    terminal = await call(oc.terminal.ticket, host_id)
    assert terminal.ticket.startswith("tk_") and "/opencomputers/ws/terminal?ticket=" in terminal.ws_url
    desktop = await call(oc.desktop.ticket, host_id)
    assert desktop.ticket.startswith("tk_") and "/opencomputers/ws/desktop?ticket=" in desktop.ws_url
    assert terminal.expires_at.endswith("Z")

    client = AsyncMiosa(api_key=server.token, base_url=server.base_url + "/api/v1")
    result = await client.open_computers.jobs.run(host_id, JobRunParams(cmd="echo", args=["async"]))
    assert result.exit_code == 0 and result.stdout == "async\n"
    events = [e async for e in client.open_computers.jobs.run_stream(host_id, JobRunParams(cmd="echo hi"))]
    assert chunks(events)["stdout"] == b"hi\n" and isinstance(events[-1], JobResultEvent)

    await call(oc.hosts.revoke, host_id)
    assert (await call(oc.hosts.get, host_id)).status == HostStatus.REVOKED
    with pytest.raises(NotFoundError):
        await call(oc.hosts.get, "host_doesnotexist")
