"""Server-side fan-out: one request starts a job on every member, a record follows them, one SSE stream
carries every member's output and end, and one call cancels them all (docs/api.md, "Fan-out").

Members that are offline or revoked are reported at once, never waited for. With a ``batch_size`` at
most that many jobs run at a time, the next member starting as one ends (as ``salt -b``); with
``stop_on_failure`` the first member that fails stops the members not yet started (``skipped``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, model_validator

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import Host, JobCreate, format_timestamp, utcnow

from .. import durable
from ..durable import OutputLog
from ..errors import ApiProblem
from ..hub import Hub
from ..ids import new_id
from ..jobs.dialects import ExecRequest
from ..jobs.routes import cancel, launch
from ..jobs.store import FINAL, JobStore
from .store import GroupStore

log = logging.getLogger("oc_server.fanout")

MAX_MEMBERS = 10_000  # hosts in one fan-out
INLINE_WAIT = 0.25  # seconds an agent may hold a start's answer for a job that ends at once (no stream)
STREAM_QUEUE = 256  # frames of a combined stream waiting for its client
OWNER = "fanout"  # member and end events carry ``fanout_id``
SAVE_EVERY = 1.0  # seconds between saves of a batched fan-out's record while it starts members


class FanOutRequest(ExecRequest):
    """``POST /groups/{id}/exec`` and ``POST /fanouts``: the job (either exec dialect) and the options;
    an ad-hoc fan-out names its hosts by ``host_ids``, a ``tag_query`` or a ``group_id`` (one of them)."""

    batch_size: int | None = Field(default=None, ge=1, le=MAX_MEMBERS)
    stop_on_failure: bool = False
    host_ids: list[str] | None = Field(default=None, min_length=1, max_length=MAX_MEMBERS)
    tag_query: dict[str, Any] | None = None
    group_id: str | None = None

    @model_validator(mode="after")
    def _no_stream(self) -> FanOutRequest:
        if self.stream is not None:
            raise ValueError("stream: a fan-out's output is at /fanouts/{id}/stream")
        return self

    def targets(self) -> int:
        """How many ways of naming hosts were sent."""
        return sum(value is not None for value in (self.host_ids, self.tag_query, self.group_id))


@dataclass
class Member:
    """One host's part in a fan-out."""

    host_id: str
    host_name: str
    job_id: str | None = None
    status: str | None = None
    exit_code: int | None = None
    error: str | None = None
    out: OutputLog | None = field(default=None, repr=False)
    settled: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    """Set once the member has a job (or never will): its stream can be read."""

    def json(self) -> dict[str, Any]:
        """The ``fan_out`` entry: ``{host_id, host_name, job_id, status, exit_code}`` or ``{host_id,
        host_name, error}`` (plus ``status: skipped`` for one a failure or a cancel kept from starting)."""
        body: dict[str, Any] = {"host_id": self.host_id, "host_name": self.host_name}
        if self.job_id is not None:
            body.update(job_id=self.job_id, status=self.status, exit_code=self.exit_code)
            if self.error:
                body["error"] = self.error
        else:
            if self.status is not None:
                body["status"] = self.status
            if self.error is not None:
                body["error"] = self.error
        return body

    @property
    def ended(self) -> bool:
        """It will not change any more."""
        return (self.job_id is None and self.status != "pending") or self.status in FINAL


class FanOutRun:
    """One fan-out: its members, the driver that starts and follows them, the record it keeps."""

    def __init__(
        self,
        record: dict[str, Any],
        members: list[Member],
        spec: JobCreate | None,
        hub: Hub,
        jobs: JobStore,
        store: GroupStore,
    ) -> None:
        self.record = record
        self.members = members
        self.spec = spec
        self.hub, self.jobs, self.store = hub, jobs, store
        self.done = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.stopped_by: str | None = None

    @property
    def id(self) -> str:
        return str(self.record["id"])

    def body(self) -> dict[str, Any]:
        """The record as the API answers it (``fan_out`` the per-host list MIOSA's SDK reads)."""
        body = {key: value for key, value in self.record.items() if key not in ("members", "tenant_id")}
        body["fan_out"] = [member.json() for member in self.members]
        if body["status"] == "running" and all(member.ended for member in self.members):
            body["status"] = "stopped" if self.stopped_by else "completed"  # the driver is about to say so
        body["fanout_id"] = self.id
        if not self.members:
            body["warning"] = "the group has no members"
        return body

    # --- running ----------------------------------------------------------------------------------

    async def begin(self, hosts: list[Host]) -> None:
        """Report the members that cannot run, start the first batch, and leave the rest to the driver."""
        ready: list[Member] = []
        for member, host in zip(self.members, hosts, strict=True):
            if host.status == "revoked":
                member.error = "revoked — not run"
            elif not self.hub.is_online(host.id):
                member.error = "offline — not run"
            else:
                member.status = "pending"
                ready.append(member)
                continue
            member.settled.set()
        batch = self.record["batch_size"] or len(ready)
        first, later = ready[:batch], ready[batch:]
        assert self.spec is not None  # a run rebuilt from its record is never begun
        spec = self.spec
        with self.jobs.db.transaction():  # one commit for the batch's job records, not one each
            rows = [self.jobs.create(self.record["tenant_id"], member.host_id, spec) for member in first]
        await asyncio.gather(*(self._start(member, row) for member, row in zip(first, rows, strict=True)))
        self.store.save_fanout(self._row())
        self.task = asyncio.create_task(self._drive(first, deque(later), batch))

    async def _start(self, member: Member, row: dict[str, Any] | None = None) -> None:
        assert self.spec is not None
        if row is None:
            row = self.jobs.create(self.record["tenant_id"], member.host_id, self.spec)
        member.job_id, member.status, member.out = row["id"], "queued", self.jobs.live[row["id"]]
        try:
            await launch(self.hub, self.jobs, member.host_id, row, self.spec, INLINE_WAIT)
        except ApiProblem:
            pass  # the job is failed with the agent's verdict
        self._refresh(member)
        member.settled.set()

    def _refresh(self, member: Member) -> None:
        row = self.jobs.row(member.host_id, member.job_id or "")
        if row is not None:
            member.status, member.exit_code, member.error = row["status"], row["exit_code"], row["error"]

    async def _drive(self, running: list[Member], pending: deque[Member], batch: int) -> None:
        """Follow the running members to their ends, starting pending ones as room frees up."""
        try:
            waiting: dict[asyncio.Task[bool], Member] = {}
            saved = time.monotonic()

            def follow(member: Member) -> None:
                assert member.out is not None
                waiting[asyncio.create_task(member.out.done.wait())] = member

            for member in running:
                follow(member)
            while waiting or pending:
                if waiting:
                    finished, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                    for task in finished:
                        self._ended(waiting.pop(task))
                if self.stopped_by is not None or self.record["status"] == "cancelled":
                    self._skip(pending)
                while pending and len(waiting) < batch:
                    member = pending.popleft()
                    await self._start(member)
                    follow(member)
                    if time.monotonic() - saved >= SAVE_EVERY:  # the record, not once per start
                        self.store.save_fanout(self._row())
                        saved = time.monotonic()
            if self.record["status"] == "running":
                self.record["status"] = "stopped" if self.stopped_by else "completed"
            self.store.save_fanout(self._row())
        finally:
            self.done.set()

    def _ended(self, member: Member) -> None:
        self._refresh(member)
        if self.record["stop_on_failure"] and member.status != "completed" and self.stopped_by is None:
            self.stopped_by = member.host_name

    def _skip(self, pending: deque[Member]) -> None:
        why = (
            "cancelled — not run"
            if self.record["status"] == "cancelled"
            else f"not run: {self.stopped_by} failed (stop on failure)"
        )
        while pending:
            member = pending.popleft()
            member.status, member.error = "skipped", why
            member.settled.set()

    async def cancel_all(self) -> None:
        """Stop the members not started yet and cancel every running job (waiting for their ends)."""
        if self.done.is_set():
            return
        self.record["status"] = "cancelled"
        for member in self.members:
            if member.status == "pending":
                member.status, member.error = "skipped", "cancelled — not run"
                member.settled.set()
        running = [m for m in self.members if m.job_id and m.status not in FINAL]

        async def one(member: Member) -> None:
            with contextlib.suppress(ApiProblem):
                await cancel(self.hub, self.jobs, member.host_id, member.job_id or "")

        await asyncio.gather(*(one(member) for member in running))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.done.wait()

    def _row(self) -> dict[str, Any]:
        return {**self.record, "members": [member.json() for member in self.members]}

    # --- the combined stream ----------------------------------------------------------------------

    async def frames(self) -> AsyncGenerator[str, None]:
        """Every member's output and end (job events with ``host_id`` and ``fanout_id`` on top), a
        ``member`` event for each one that does not run, then ``fanout_end`` (the record) and
        :data:`~embedded_server.durable.DONE`. Not resumable: a client that reconnects reads it again."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(STREAM_QUEUE)
        extra = {"fanout_id": self.id}

        async def member_frames(member: Member) -> None:
            try:
                await member.settled.wait()
                row = self.jobs.row(member.host_id, member.job_id) if member.job_id else None
                if row is None:
                    data = json.dumps(member.json())
                    fields = member.json()
                    await queue.put(durable.sse_event(None, "member", OWNER, self.id, data, _now(), fields))
                    return
                frames = self.jobs.events(row, None, {**extra, "host_id": member.host_id})
                async for frame in frames:
                    if frame != durable.DONE:
                        await queue.put(frame)
            finally:
                await queue.put(None)

        tasks = [asyncio.create_task(member_frames(member)) for member in self.members]
        try:
            left = len(tasks)
            while left:
                batch = [await queue.get()]
                while not queue.empty() and len(batch) < STREAM_QUEUE:  # what is ready goes in one write
                    batch.append(queue.get_nowait())
                left -= batch.count(None)
                frames = [item for item in batch if item is not None]
                if frames:
                    yield "".join(frames)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self.done.wait()
            body = self.body()
            fields = {"status": body["status"], "summary": summary(self.members)}
            yield durable.sse_event(None, "fanout_end", OWNER, self.id, json.dumps(body), _now(), fields)
            yield durable.DONE
        finally:
            for task in tasks:
                task.cancel()


def summary(members: list[Member]) -> dict[str, int]:
    """How many members ended each way: ``exit 0``, ``exit 2``, ``failed``, ``skipped``, ``not run`` …"""
    counts: dict[str, int] = {}
    for member in members:
        if member.exit_code is not None:
            key = f"exit {member.exit_code}"
        elif member.job_id is None:
            key = "skipped" if member.status == "skipped" else "not run"
        else:
            key = member.status or "unknown"
        counts[key] = counts.get(key, 0) + 1
    return counts


def _now() -> str:
    return format_timestamp(utcnow())


class FanOuts:
    """The fan-outs of every tenant: the live ones in memory, all of them as records in the store."""

    def __init__(self, hub: Hub, jobs: JobStore, store: GroupStore) -> None:
        self.hub, self.jobs, self.store = hub, jobs, store
        self.live: dict[str, FanOutRun] = {}

    async def start(
        self, tenant_id: str, hosts: list[Host], request: FanOutRequest, group_id: str | None
    ) -> FanOutRun:
        """Start ``request``'s job on ``hosts``; answers once every member of the first batch has a job
        (or an error). The run stays live until its last member ended."""
        if len(hosts) > MAX_MEMBERS:
            raise ApiProblem(
                400, ErrorCode.VALIDATION_ERROR, f"a fan-out reaches at most {MAX_MEMBERS} hosts"
            )
        spec = request.spec
        now = _now()
        record = {
            "id": new_id("fanout"),
            "tenant_id": tenant_id,
            "group_id": group_id,
            "command": spec.command,
            "status": "running",
            "batch_size": request.batch_size,
            "stop_on_failure": request.stop_on_failure,
            "created_at": now,
            "updated_at": now,
        }
        run = FanOutRun(record, [Member(h.id, h.name) for h in hosts], spec, self.hub, self.jobs, self.store)
        self.live[run.id] = run
        await run.begin(hosts)
        assert run.task is not None
        run.task.add_done_callback(lambda _: self.live.pop(run.id, None))
        return run

    def get(self, tenant_id: str, fanout_id: str) -> FanOutRun:
        """The tenant's fan-out: the live run, or one rebuilt from its record (404 NOT_FOUND)."""
        run = self.live.get(fanout_id)
        if run is not None and run.record["tenant_id"] == tenant_id:
            return run
        record = self.store.fanout_row(tenant_id, fanout_id)
        members = []
        for entry in record.pop("members"):
            member = Member(str(entry["host_id"]), str(entry.get("host_name") or ""), entry.get("job_id"))
            member.status, member.error = entry.get("status"), entry.get("error")
            member.exit_code = entry.get("exit_code")
            member.settled.set()
            members.append(member)
        run = FanOutRun(record, members, None, self.hub, self.jobs, self.store)
        for member in members:
            if member.job_id:
                run._refresh(member)
        run.done.set()
        return run

    def shutdown(self) -> None:
        """Server stopping: the drivers stop (their running jobs go on; the records say what was left)."""
        for run in list(self.live.values()):
            if run.task is not None:
                run.task.cancel()
