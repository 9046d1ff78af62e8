"""Jobs: records in the DB, output in a durable log (``durable.OutputLog``) per job, its SSE stream.

A job's output log lives in ``DATA_DIR/jobs``; the agent fills it over the job's stream WebSocket (see
:meth:`JobStore.serve_agent_stream`) and clients read it as SSE (:meth:`JobStore.stream`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import signal
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.websockets import WebSocket

from oc_tui.api.models import Job, JobCreate, format_timestamp, utcnow

from .. import durable, protocol
from ..db import Database, from_row, to_row
from ..durable import OutputLog
from ..ids import new_id

log = logging.getLogger("oc_server.jobs")

FINAL = ("completed", "failed", "cancelled")
TIMED_OUT = "timed out after"  # how the error of a job killed at its timeout begins
# The job's ``state`` in MIOSA's hosted vocabulary (its Python SDK), from our ``status`` (the reference's).
STATES = {"queued": "queued", "running": "running", "completed": "succeeded", "failed": "failed"}
STATES["cancelled"] = "canceled"
LIST_OUTPUT = 4096  # bytes of each stream a list entry carries
OWNER = "job"  # job events carry ``job_id``


def _now() -> str:
    return format_timestamp(utcnow())


# --- records -----------------------------------------------------------------------------------------


def state_of(row: dict[str, Any]) -> str:
    """The job's ``state`` in MIOSA's hosted vocabulary (``succeeded``, ``timeout``, ``canceled`` …)."""
    status = str(row.get("status") or "")
    if status == "failed" and str(row.get("error") or "").startswith(TIMED_OUT):
        return "timeout"
    return STATES.get(status, status)


def elapsed_ms(row: dict[str, Any]) -> int | None:
    """Milliseconds from the job's start to its end; None while it has not both."""
    started, ended = row.get("started_at"), row.get("completed_at")
    if not started or not ended:
        return None
    return max(0, round((parse_timestamp(ended) - parse_timestamp(started)).total_seconds() * 1000))


def parse_timestamp(value: str) -> datetime:
    """A stored timestamp (UTC ISO 8601 with ``Z``) as a datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def sdk_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The fields MIOSA's hosted dialect reads beside the reference's (docs/api.md, "MIOSA's SDKs"):
    ``job_id``, ``cmd``, ``state``, ``timeout_ms``, ``ended_at``, ``inserted_at``, ``tenant_id``, and the
    job-list row's ``kind``, ``duration_ms``, ``dispatched_at``."""
    return {
        "job_id": row["id"],
        "tenant_id": row["tenant_id"],
        "cmd": row["command"],
        "state": state_of(row),
        "timeout_ms": int(row["timeout"]) * 1000,
        "ended_at": row["completed_at"],
        "inserted_at": row["created_at"],
        "kind": "exec",
        "duration_ms": elapsed_ms(row),
        "dispatched_at": row["started_at"] or row["created_at"],
    }


def job_model(row: dict[str, Any], stdout: bytes = b"", stderr: bytes = b"") -> Job:
    """The API's Job from its row and the (first) output bytes of each stream, with the fields of MIOSA's
    hosted dialect (:func:`sdk_fields`) as extras."""
    job = from_row(
        Job, row, stdout=stdout.decode("utf-8", "replace"), stderr=stderr.decode("utf-8", "replace")
    )
    return job.model_copy(update=sdk_fields(row))


def end_event(row: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """The final SSE event of a job's stream: ``exec_result`` when its process exited with a status,
    ``exec_error`` with a ``reason`` otherwise (cancelled, timed out, killed, lost, never started).

    Returns:
        (type, ``data`` JSON ``{status, exit_code, error}``, top-level fields for MIOSA's SDKs).
    """
    data = {"status": row.get("status"), "exit_code": row.get("exit_code"), "error": row.get("error")}
    fields: dict[str, Any] = {**data, "state": state_of(row), "elapsed_ms": elapsed_ms(row)}
    if row.get("exit_code") is not None:
        return "exec_result", json.dumps(data), fields
    fields["reason"] = row.get("error") or ("cancelled" if row.get("status") == "cancelled" else "failed")
    return "exec_error", json.dumps(data), fields


def describe_exit(info: dict[str, Any], timeout: int) -> tuple[str, int | None, str | None]:
    """(status, exit_code, error) from the agent's exit frame."""
    reason, code, sig = info.get("reason"), info.get("exit_code"), info.get("signal")
    if reason == "cancelled":
        return "cancelled", code, None
    if reason == "timeout":
        return "failed", None, f"{TIMED_OUT} {timeout} s"
    if code == 0:
        return "completed", 0, None
    if code is not None:
        return "failed", int(code), None
    if sig is not None:
        try:
            name = signal.Signals(int(sig)).name
        except ValueError:
            name = f"signal {sig}"
        return "failed", None, f"killed by {name}"
    return "failed", None, str(info.get("error") or "ended without an exit status")


class JobStore:
    """The jobs of every host: rows, output logs, and the live state of unfinished ones.

    Args:
        db: the database.
        directory: where the output logs are.
        cap: bytes of output stored per job at most.
    """

    def __init__(self, db: Database, directory: Path, cap: int) -> None:
        self.db = db
        self.directory = directory
        self.cap = cap
        self.live: dict[str, OutputLog] = {}  # unfinished jobs' outputs
        self.starting: set[str] = set()  # jobs whose start request is in flight

    # --- rows ----------------------------------------------------------------------------------------

    def row(self, host_id: str, job_id: str) -> dict[str, Any] | None:
        """The job's row if it is ``host_id``'s, else None."""
        return self.db.one("SELECT * FROM jobs WHERE id = ? AND host_id = ?", (job_id, host_id))

    def create(self, tenant_id: str, host_id: str, spec: JobCreate) -> dict[str, Any]:
        """Store a new ``queued`` job and open its output log; returns its row."""
        now = _now()
        row: dict[str, Any] = to_row(
            {
                "id": new_id("job"),
                "tenant_id": tenant_id,
                "host_id": host_id,
                "status": "queued",
                "command": spec.command,
                "args": spec.args or [],
                "env": spec.env or [],
                "cwd": spec.cwd,
                "timeout": spec.timeout,
                "exit_code": None,
                "error": None,
                "truncated": 0,
                "output_bytes": 0,
                "created_at": now,
                "updated_at": now,
                "started_at": None,
                "completed_at": None,
            }
        )
        self.db.insert("jobs", row)
        self.live[row["id"]] = OutputLog(self.directory, row["id"], self.cap, truncated=False, finished=False)
        return row

    def mark_running(self, job_id: str, started_at: str) -> None:
        """A queued job's process started at ``started_at``."""
        self.db.execute(
            "UPDATE jobs SET status = 'running', started_at = ?, updated_at = ? WHERE id = ? AND status = 'queued'",
            (started_at, _now(), job_id),
        )

    def page(self, host_id: str, page: int, per_page: int) -> tuple[list[Job], int]:
        """One page of the host's jobs, newest first, each with the first output; and the total."""
        total = self.db.one("SELECT COUNT(*) AS n FROM jobs WHERE host_id = ?", (host_id,))
        rows = self.db.all(
            "SELECT * FROM jobs WHERE host_id = ? ORDER BY seq DESC LIMIT ? OFFSET ?",
            (host_id, per_page, (page - 1) * per_page),
        )
        jobs = []
        for row in rows:
            out = self.output(row)
            stdout, stderr = out.split(2 * LIST_OUTPUT)
            jobs.append(job_model(row, stdout[:LIST_OUTPUT], stderr[:LIST_OUTPUT]))
        return jobs, int(total["n"] if total else 0)

    def full(self, row: dict[str, Any]) -> Job:
        """The job with all its stored output."""
        stdout, stderr = self.output(row).split(self.cap)
        return job_model(row, stdout, stderr)

    def output(self, row: dict[str, Any]) -> OutputLog:
        """The live output of an unfinished job, else a fresh view of the stored one."""
        out = self.live.get(row["id"])
        if out is None:
            finished = row["status"] in FINAL
            out = OutputLog(
                self.directory, row["id"], self.cap, truncated=bool(row["truncated"]), finished=finished
            )
            if not finished:
                self.live[row["id"]] = out
        return out

    async def finish(
        self,
        row: dict[str, Any],
        status: str,
        exit_code: int | None,
        error: str | None,
        exit_info: dict[str, Any],
        started_at: str | None = None,
    ) -> None:
        """Store the job's end (a job already final keeps its status) and end its streams."""
        out = self.output(row)
        now = _now()
        self.db.execute(
            "UPDATE jobs SET status = CASE WHEN status IN ('queued', 'running') THEN ? ELSE status END,"
            " exit_code = ?, error = COALESCE(error, ?), truncated = ?, output_bytes = ?, updated_at = ?,"
            " completed_at = COALESCE(completed_at, ?), started_at = COALESCE(started_at, ?) WHERE id = ?",
            (status, exit_code, error, int(out.truncated), out.stored, now, now, started_at, row["id"]),
        )
        self.live.pop(row["id"], None)
        await out.finish(exit_info)

    async def finish_inline(self, row: dict[str, Any], exit_info: dict[str, Any], output: list[Any]) -> None:
        """A job that ended before its start was answered: its output and exit came with the answer."""
        out = self.output(row)
        for stream, encoded in output:
            out.store(int(stream), memoryview(base64.b64decode(encoded)))
        status, exit_code, error = describe_exit(exit_info, row["timeout"])
        await self.finish(row, status, exit_code, error, exit_info, started_at=_now())

    async def fail(self, row: dict[str, Any], error: str) -> None:
        """End the job as ``failed`` with ``error``."""
        await self.finish(row, "failed", None, error, {"status": "failed", "error": error})

    def unfinished(self, host_id: str) -> list[dict[str, Any]]:
        """The rows of the host's queued and running jobs."""
        return self.db.all(
            "SELECT * FROM jobs WHERE host_id = ? AND status IN ('queued', 'running')", (host_id,)
        )

    async def reconcile(self, host_id: str, known: list[str]) -> None:
        """The host's agent (re)connected knowing ``known``: its other unfinished jobs are lost."""
        keep = set(known) | self.starting
        for row in self.unfinished(host_id):
            if row["id"] not in keep:
                log.info("job %s is no longer known by its agent: failed", row["id"])
                await self.fail(row, "lost by the agent")

    async def host_revoked(self, host_id: str) -> None:
        """Its host was revoked: its unfinished jobs fail (its agent kills them when it is refused)."""
        for row in self.unfinished(host_id):
            await self.fail(row, "host revoked")

    async def host_purged(self, host_id: str) -> None:
        """Its (revoked) host is purged: its jobs' output files go (the rows go with the host's)."""
        for row in self.db.all("SELECT id FROM jobs WHERE host_id = ?", (host_id,)):
            self.delete_output(row["id"])

    async def agent_hello(self, host_id: str, hello: dict[str, Any]) -> None:
        """The host's agent (re)connected: reconcile with the jobs its hello says it still has."""
        if isinstance(hello.get("jobs"), list):  # jobs the agent no longer has are lost
            await self.reconcile(host_id, [str(j) for j in hello["jobs"]])

    # --- the agent's output stream, and SSE ----------------------------------------------------------

    async def serve_agent_stream(self, ws: WebSocket, host_id: str, job_id: str) -> None:
        """One job's output from its agent (``STREAM_PATH?job_id=``, docs/protocol.md)."""
        row = self.row(host_id, job_id)
        if row is None:
            await ws.close(protocol.CLOSE_UNKNOWN_JOB)
            return

        async def exited(message: dict[str, Any]) -> None:
            status, exit_code, error = describe_exit(message, row["timeout"])
            await self.finish(row, status, exit_code, error, message)

        await durable.serve_agent_stream(ws, self.output(row), exited)

    def stream(self, row: dict[str, Any], last_event_id: int | None, keepalive: float) -> AsyncIterator[str]:
        """A job's SSE stream: stored output from ``last_event_id`` (a log offset), then live, then exit.

        The reader is registered now, before the response starts, so live output past the cap cannot
        slip by between the client's request and the first byte of the response."""
        return durable.sse(self.events(row, last_event_id), keepalive)

    def events(
        self, row: dict[str, Any], last_event_id: int | None, extra: dict[str, Any] | None = None
    ) -> AsyncGenerator[str, None]:
        """The SSE frames of a job's stream (for ``durable.sse``), its reader registered now; ``extra``:
        more fields on every event (a fan-out's ``host_id``; see ``durable.log_events``)."""
        out = self.output(row)
        reader = durable.open_reader(out)
        job_id = row["id"]

        def exit_event() -> tuple[str, str, dict[str, Any]]:
            return end_event(self.db.one("SELECT * FROM jobs WHERE id = ?", (job_id,)) or {})

        return durable.log_events(out, reader, OWNER, last_event_id, exit_event, extra)

    def shutdown(self) -> None:
        """Server stopping: end every live stream (uvicorn would wait for them); clients resume later."""
        for out in self.live.values():
            for reader in list(out.readers):
                out.cut(reader)

    def close(self) -> None:
        """Server stopped: close the live logs' files."""
        for out in self.live.values():
            out.close_files()

    def delete_output(self, job_id: str) -> None:
        """Remove a job's output log files."""
        for suffix in (".out", ".runs"):
            with contextlib.suppress(OSError):
                os.unlink(self.directory / f"{job_id}{suffix}")
