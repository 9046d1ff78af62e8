"""The agent's jobs: run processes, spool their output to disk, stream it back over one WebSocket per job.

A job's process runs in a session (and so a process group) of its own, so a timeout or a cancel kills
the whole tree: SIGTERM to the group, SIGKILL 2 s later. Its stdout and stderr are appended, in the
order they arrive, to a spool file in the agent's state dir (records ``<stream: u8><length: u32 LE>
<bytes>``), so nothing is held in memory and nothing is lost while the server is away. A stream task
dials ``/opencomputers/ws/agent/stream?job_id=…``, is told how many output bytes the server already has,
sends the rest as binary frames (first byte 1 = stdout, 2 = stderr), follows the spool live and ends with
a text ``exit`` frame; once the server answers ``done`` the spool is deleted. Dropped stream connections
are redialled with backoff; the job itself never depends on a connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import random
import re
import signal
import struct
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from .. import protocol
from .handlers import work_env

log = logging.getLogger("oc_agent.jobs")

RECORD = struct.Struct("<BI")
JOB_ID = re.compile(r"job_[A-Za-z0-9]{3,64}")
READ_SIZE = 256 * 1024  # bytes read from the spool per frame
INDEX_EVERY = 1 << 20  # a (payload offset, file offset) mark every MiB of spool: resuming seeks near it
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
PIPE_SIZE = 1 << 20
F_SETPIPE_SZ = 1031
STREAM_BACKOFF_CAP = 5.0
INLINE_WINDOW = 0.25  # seconds a start with "wait" may wait for the job to end and answer with its result
INLINE_BYTES = 64 * 1024  # output up to this much is answered inline; more goes over the stream


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class _Protocol(asyncio.SubprocessProtocol):
    def __init__(self, job: AgentJob) -> None:
        self.job = job

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.job.append(fd, data)

    def process_exited(self) -> None:
        self.job.leader_exited()

    def connection_lost(self, exc: Exception | None) -> None:  # process gone and both pipes closed
        self.job.finished()


class AgentJob:
    def __init__(self, manager: JobManager, job_id: str, timeout: float) -> None:
        self.manager = manager
        self.id = job_id
        self.timeout = timeout
        self.spool_path = manager.spool_dir / f"{job_id}.spool"
        self._fd = os.open(self.spool_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        self.size = 0  # spool file bytes
        self.written = 0  # output bytes (payloads)
        self.marks: list[tuple[int, int]] = [(0, 0)]  # (payload offset, file offset) at record starts
        self.transport: asyncio.SubprocessTransport | None = None
        self.pid = 0
        self.reason = "exited"  # or "timeout" / "cancelled"
        self.exit: dict[str, Any] | None = None
        self.done = asyncio.Event()
        self._changed = asyncio.Event()
        self._timers: list[asyncio.TimerHandle] = []
        self.stream_task: asyncio.Task[None] | None = None
        self.started_at = time.time()

    # --- output ------------------------------------------------------------------------------------

    def append(self, fd: int, data: bytes) -> None:
        if self._fd < 0:
            return
        if self.size - self.marks[-1][1] >= INDEX_EVERY:
            self.marks.append((self.written, self.size))
        os.writev(self._fd, [RECORD.pack(fd, len(data)), data])
        self.size += RECORD.size + len(data)
        self.written += len(data)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------------------------

    def leader_exited(self) -> None:
        pass

    def finished(self) -> None:
        if self.exit is not None:
            return
        if self._timers:  # the timeout; a pending SIGKILL stays armed for anything still in the group
            self._timers[0].cancel()
        code = self.transport.get_returncode() if self.transport else None
        info: dict[str, Any] = {"reason": self.reason, "exit_code": None, "signal": None}
        if code is not None and code >= 0:
            info["exit_code"] = code
        elif code is not None:
            info["signal"] = -code
        info["finished_at"] = time.time()
        self.exit = info
        if self.transport is not None:
            self.transport.close()
        self.done.set()
        self._notify()
        log.debug("job %s ended: %s", self.id, info)

    def kill(self, reason: str) -> None:
        """Kill the whole process group: SIGTERM now, SIGKILL after the grace period."""
        if self.exit is not None or not self.pid:
            return
        if self.reason == "exited":
            self.reason = reason
        _kill_group(self.pid, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        self._timers.append(loop.call_later(KILL_GRACE, _kill_group, self.pid, signal.SIGKILL))

    def on_timeout(self) -> None:
        log.info("job %s timed out after %g s: killing its process group", self.id, self.timeout)
        self.kill("timeout")

    def close_spool(self, delete: bool) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if delete:
            self.spool_path.unlink(missing_ok=True)

    # --- streaming ---------------------------------------------------------------------------------

    def _seek(self, handle: Any, offset: int) -> int:
        """Position ``handle`` at payload ``offset``; returns how many bytes of the record there to skip."""
        payload, file_pos = 0, 0
        for mark in self.marks:
            if mark[0] <= offset:
                payload, file_pos = mark
        handle.seek(file_pos)
        while payload < offset:
            header = handle.read(RECORD.size)
            if len(header) < RECORD.size:
                return 0
            _, length = RECORD.unpack(header)
            if payload + length > offset:
                handle.seek(-RECORD.size, os.SEEK_CUR)
                return offset - payload
            handle.seek(length, os.SEEK_CUR)
            payload += length
        return 0

    async def send_from(self, ws: ClientConnection, offset: int) -> None:
        """Send output from payload ``offset`` on, live, then the exit frame."""
        offset = max(0, min(offset, self.written))
        with open(self.spool_path, "rb", buffering=0) as handle:
            skip = self._seek(handle, offset)
            file_pos = handle.tell()
            pending = b""
            while True:
                changed = self._changed
                exited = self.exit is not None
                if file_pos < self.size:
                    chunk = pending + handle.read(min(READ_SIZE, self.size - file_pos))
                    file_pos = handle.tell()
                    view = memoryview(chunk)
                    pos, frames, current, parts = 0, [], -1, []
                    while pos + RECORD.size <= len(view):
                        stream, length = RECORD.unpack_from(view, pos)
                        if pos + RECORD.size + length > len(view):
                            break
                        body = view[pos + RECORD.size + skip : pos + RECORD.size + length]
                        skip = 0
                        pos += RECORD.size + length
                        if stream != current and parts:
                            frames.append(bytes([current]) + b"".join(parts))
                            parts = []
                        current = stream
                        parts.append(body)
                    if parts:
                        frames.append(bytes([current]) + b"".join(parts))
                    pending = bytes(view[pos:])
                    for frame in frames:
                        await ws.send(frame)
                    continue
                if exited:
                    await ws.send(
                        protocol.encode(
                            protocol.JOB_EXIT, job_id=self.id, output_bytes=self.written, **(self.exit or {})
                        )
                    )
                    return
                await changed.wait()


class JobManager:
    def __init__(self, state_dir: Path, stream_url: str, host_key: str) -> None:
        self.spool_dir = state_dir / "jobs"
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(state_dir, 0o700)
        # Spools of a previous agent process belong to processes we can no longer follow.
        for stale in self.spool_dir.glob("*.spool"):
            stale.unlink(missing_ok=True)
        self.stream_url = stream_url
        self.host_key = host_key
        self.jobs: dict[str, AgentJob] = {}

    def known(self) -> list[str]:
        """The jobs this agent still has (running, or ended with output the server has not confirmed)."""
        return list(self.jobs)

    async def start(self, params: dict[str, Any]) -> dict[str, Any]:
        job_id = str(params["job_id"])
        if not JOB_ID.fullmatch(job_id):  # it names the spool file
            raise ValueError(f"{job_id!r} is not a job ID")
        if job_id in self.jobs:
            return {"started": True, "pid": self.jobs[job_id].pid}
        command = str(params["command"])
        args = [str(a) for a in params.get("args") or []]
        if args:
            argv = [command, *args]
        elif os.name == "nt":
            argv = ["cmd", "/c", command]
        else:
            argv = ["/bin/sh", "-c", command]
        env = work_env()
        for item in params.get("env") or []:
            key, _, value = str(item).partition("=")
            env[key] = value
        cwd = os.path.expanduser(params["cwd"]) if params.get("cwd") else None
        timeout = float(params.get("timeout") or 60)
        job = AgentJob(self, job_id, timeout)
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.subprocess_exec(
                lambda: _Protocol(job),
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            job.close_spool(delete=True)
            what = exc.strerror or str(exc)
            where = f": {exc.filename}" if exc.filename else ""
            return {"started": False, "error": f"could not start: {what}{where}"}
        job.transport = transport
        job.pid = transport.get_pid()
        for fd in (1, 2):
            pipe = transport.get_pipe_transport(fd)
            handle = pipe.get_extra_info("pipe") if pipe else None
            if handle is not None:
                with contextlib.suppress(OSError, ValueError, ImportError):
                    import fcntl

                    fcntl.fcntl(handle.fileno(), F_SETPIPE_SZ, PIPE_SIZE)
        job._timers.append(loop.call_later(timeout, job.on_timeout))
        self.jobs[job_id] = job
        inline: dict[str, Any] | None = None
        try:
            if params.get("wait"):
                inline = await self._inline(job, min(float(params["wait"]), INLINE_WINDOW))
        finally:  # also when the control connection dropped meanwhile: the job must reach the server
            if inline is None:
                job.stream_task = asyncio.create_task(self._stream(job))
        return inline or {"started": True, "pid": job.pid, "started_at": job.started_at}

    async def _inline(self, job: AgentJob, window: float) -> dict[str, Any] | None:
        """A short job with little output: its whole result, to answer the start with (no stream)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + window
        while job.exit is None and job.written <= INLINE_BYTES:
            changed = job._changed
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                async with asyncio.timeout(remaining):
                    await changed.wait()
            except TimeoutError:
                return None
        if job.exit is None or job.written > INLINE_BYTES:
            return None
        output: list[list[Any]] = []
        raw = job.spool_path.read_bytes()
        pos = 0
        while pos + RECORD.size <= len(raw):
            stream, length = RECORD.unpack_from(raw, pos)
            body = raw[pos + RECORD.size : pos + RECORD.size + length]
            pos += RECORD.size + length
            if output and output[-1][0] == stream:
                output[-1][1] += body
            else:
                output.append([stream, body])
        self._forget(job, kill=False)
        encoded = [[stream, base64.b64encode(body).decode()] for stream, body in output]
        return {
            "started": True,
            "pid": job.pid,
            "started_at": job.started_at,
            "exit": job.exit,
            "output": encoded,
        }

    async def cancel(self, params: dict[str, Any]) -> dict[str, Any]:
        """Kill the job's process tree and wait (a little longer than the grace period) for it to end."""
        job = self.jobs.get(str(params.get("job_id")))
        if job is None:
            return {"known": False}
        job.kill("cancelled")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(KILL_GRACE + 1.0):
                await job.done.wait()
        return {"known": True, "ended": job.exit is not None}

    def _forget(self, job: AgentJob, kill: bool) -> None:
        if kill:
            job.kill("cancelled")
        job.close_spool(delete=True)
        self.jobs.pop(job.id, None)

    async def _stream(self, job: AgentJob) -> None:
        """Deliver the job's output to the server until it confirms the exit; redial on any loss."""
        attempt = 0
        url = f"{self.stream_url}?job_id={job.id}"
        headers = {"Authorization": f"Bearer {self.host_key}"}
        while True:
            try:
                async with connect(
                    url,
                    additional_headers=headers,
                    open_timeout=10,
                    ping_interval=None,
                    max_size=2**22,
                    compression=None,
                    write_limit=2**20,
                ) as ws:
                    first = protocol.decode(await ws.recv())
                    if first["type"] == protocol.JOB_DONE:  # the server needs nothing more
                        self._forget(job, kill=True)
                        return
                    attempt = 0
                    sender = asyncio.create_task(job.send_from(ws, int(first.get("offset") or 0)))
                    try:
                        async for frame in ws:
                            message = protocol.decode(frame)
                            if message["type"] == protocol.JOB_DONE:
                                await ws.close()
                                self._forget(job, kill=job.exit is None)
                                return
                    finally:
                        sender.cancel()
                        with contextlib.suppress(BaseException):
                            await sender
            except asyncio.CancelledError:
                raise
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                if code == protocol.CLOSE_UNKNOWN_JOB or code in protocol.REFUSALS:
                    log.warning("server refused the stream of job %s (%s): stopping it", job.id, code)
                    self._forget(job, kill=True)
                    return
            except (
                OSError,
                TimeoutError,
                InvalidHandshake,
                ValueError,
                KeyError,
                json.JSONDecodeError,
            ) as exc:
                log.debug("stream of job %s: %s", job.id, exc)
            delay = random.uniform(0.05, min(STREAM_BACKOFF_CAP, 0.2 * 2**attempt))
            attempt += 1
            await asyncio.sleep(delay)

    def close(self) -> None:
        """The agent is stopping: its jobs cannot be followed any more, so their process trees are killed."""
        for job in list(self.jobs.values()):
            if job.stream_task is not None:
                job.stream_task.cancel()
            if job.exit is None and job.pid:
                _kill_group(job.pid, signal.SIGKILL)
            job.close_spool(delete=True)
        self.jobs.clear()
