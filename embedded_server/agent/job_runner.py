"""The agent's job runner: run processes and deliver their output over a durable stream per job.

A job's process runs as a tree of its own (:func:`.platform.adopt`: a session, so a process group, on
POSIX; a Job Object on Windows), so a timeout or a cancel ends the whole tree: SIGTERM to the group
(CTRL_BREAK on Windows), SIGKILL (TerminateJobObject) 2 s later. Its stdout and stderr are appended, in the
order they arrive, to a :class:`~.durable.Spool` in the agent's state dir, so nothing is held in memory
and nothing is lost while the server is away; :func:`~.durable.deliver` dials
``/opencomputers/ws/agent/stream?job_id=…`` and sends it, resuming after any loss, and ends with the
job's ``exit`` frame; once the server answers ``done`` the spool is deleted. The job itself never
depends on a connection. The values of secrets the job was given are masked (``***``) in its output
before it is spooled (:mod:`.masking`), so they reach neither the spool nor the server.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import protocol
from . import platform
from .capabilities import Capability
from .durable import Spool, deliver
from .masking import Masker
from .streams import StreamDialer
from .system import work_env

log = logging.getLogger("oc_agent.jobs")

JOB_ID = re.compile(r"job_[A-Za-z0-9]{3,64}")
STREAM_KEY = "job_id"  # names a job's durable stream (query and exit frame)
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
PIPE_SIZE = 1 << 20
INLINE_WINDOW = 0.25  # seconds a start with "wait" may wait for the job to end and answer with its result
INLINE_BYTES = 64 * 1024  # output up to this much is answered inline; more goes over the stream


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
    """One job: its process, its timers and the spool of its output."""

    def __init__(self, manager: JobManager, job_id: str, timeout: float, secrets: Iterable[str] = ()) -> None:
        self.manager = manager
        secrets = list(secrets)
        # Delivered secret values are masked per stream before anything is spooled (masking.py).
        self.maskers = {fd: Masker(secrets) for fd in (1, 2)} if secrets else {}
        self.id = job_id
        self.timeout = timeout
        self.spool = Spool(manager.spool_dir / f"{job_id}.spool")
        self.transport: asyncio.SubprocessTransport | None = None
        self.tree: platform.ProcessTree | None = None
        self.pid = 0
        self.reason = "exited"  # or "timeout" / "cancelled"
        self.exit: dict[str, Any] | None = None
        self.done = asyncio.Event()
        self._timers: list[asyncio.TimerHandle] = []
        self.stream_task: asyncio.Task[None] | None = None
        self.started_at = time.time()

    def append(self, fd: int, data: bytes) -> None:
        """Output from the process's pipe ``fd`` (1 = stdout, 2 = stderr), masked, to the spool."""
        masker = self.maskers.get(fd)
        if masker is not None:
            data = masker.feed(data)
        if data:
            self.spool.append(fd, data)

    # --- lifecycle ---------------------------------------------------------------------------------

    def leader_exited(self) -> None:
        """The process itself exited (its pipes may still be open in children): nothing to do yet."""

    def finished(self) -> None:
        """The process is gone and both pipes closed: record the exit and wake the stream."""
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
        for fd, masker in self.maskers.items():  # what was held back as a possible start of a value
            rest = masker.flush()
            if rest:
                self.spool.append(fd, rest)
        self.exit = info
        if self.transport is not None:
            self.transport.close()
        if self.tree is not None:  # a pending SIGKILL stays armed on POSIX; a Job Object ends with it
            self.tree.close()
        self.done.set()
        self.spool.finish(info)
        log.debug("job %s ended: %s", self.id, info)

    def kill(self, reason: str) -> None:
        """End the whole process tree: SIGTERM now, SIGKILL after the grace period."""
        if self.exit is not None or self.tree is None:
            return
        if self.reason == "exited":
            self.reason = reason
        self.tree.terminate()
        loop = asyncio.get_running_loop()
        self._timers.append(loop.call_later(KILL_GRACE, self._kill_now))

    def _kill_now(self) -> None:
        if self.tree is not None:
            self.tree.kill()

    def on_timeout(self) -> None:
        """The job's timeout passed: kill its process group (reason ``timeout``)."""
        log.info("job %s timed out after %g s: killing its process group", self.id, self.timeout)
        self.kill("timeout")


class JobManager:
    """The jobs of this agent process: start, cancel, list, and the spool dir they write to.

    Args:
        state_dir: the agent's state dir; spools go to ``state_dir/jobs`` (stale ones are deleted).
        streams: dials each job's durable output stream.
    """

    def __init__(self, state_dir: Path, streams: StreamDialer) -> None:
        self.spool_dir = state_dir / "jobs"
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        platform.secure_dir(str(state_dir))
        # Spools of a previous agent process belong to processes we can no longer follow.
        for stale in self.spool_dir.glob("*.spool"):
            stale.unlink(missing_ok=True)
        self.streams = streams
        self.jobs: dict[str, AgentJob] = {}

    def capability(self) -> Capability:
        """``job.start``, ``job.cancel`` and ``job.list``, all on the event loop (they own loop state)."""
        return Capability(
            "jobs",
            {
                protocol.JobStart: self.start,
                protocol.JobCancel: self.cancel,
                protocol.JobList: self.list_jobs,
            },
        )

    def known(self) -> list[str]:
        """The jobs this agent still has (running, or ended with output the server has not confirmed)."""
        return list(self.jobs)

    async def list_jobs(self, _call: protocol.JobList) -> dict[str, Any]:
        """``job.list``: ``{"jobs": [ids]}``, as :meth:`known`."""
        return {"jobs": self.known()}

    async def start(self, call: protocol.JobStart) -> dict[str, Any]:
        """``job.start``: spawn the process and answer at once (see docs/protocol.md for the result).

        Raises:
            AgentError: VALIDATION_ERROR when ``job_id`` is not a job ID (it names the spool file).
        """
        job_id = call.job_id
        if not JOB_ID.fullmatch(job_id):
            raise protocol.AgentError("VALIDATION_ERROR", f"{job_id!r} is not a job ID")
        if job_id in self.jobs:
            return {"started": True, "pid": self.jobs[job_id].pid}
        try:
            launch = platform.job_launch(call.command, call.args, call.shell)
        except platform.NoSuchShell as exc:
            return {"started": False, "error": f"could not start: {exc}"}
        env = work_env()
        for item in call.env:
            key, _, value = item.partition("=")
            env[key] = value
        env.update(call.secrets)
        cwd = os.path.expanduser(call.cwd) if call.cwd else None
        timeout = float(call.timeout or 60)
        job = AgentJob(self, job_id, timeout, call.secrets.values())
        loop = asyncio.get_running_loop()
        options: dict[str, Any] = dict(
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
            **platform.spawn_options(),
        )
        try:
            if isinstance(launch.args, str):  # cmd.exe on Windows: %ComSpec% /c "command"
                transport, _ = await loop.subprocess_shell(lambda: _Protocol(job), launch.args, **options)
            else:
                transport, _ = await loop.subprocess_exec(lambda: _Protocol(job), *launch.args, **options)
        except (OSError, ValueError) as exc:  # ValueError: what the OS cannot take (a NUL byte)
            job.spool.close(delete=True)
            what = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
            filename = exc.filename if isinstance(exc, OSError) else None
            where = f": {filename}" if filename else ""
            return {"started": False, "error": f"could not start: {what}{where}"}
        except BaseException:  # cancelled, or a failure of ours: the spool file is not left behind
            job.spool.close(delete=True)
            raise
        job.transport = transport
        job.pid = transport.get_pid()
        job.tree = platform.adopt(job.pid)
        for fd in (1, 2):
            pipe = transport.get_pipe_transport(fd)
            handle = pipe.get_extra_info("pipe") if pipe else None
            if handle is not None:
                with contextlib.suppress(OSError, ValueError):
                    platform.enlarge_pipe(handle.fileno(), PIPE_SIZE)
        job._timers.append(loop.call_later(timeout, job.on_timeout))
        self.jobs[job_id] = job
        inline: dict[str, Any] | None = None
        try:
            if call.wait:
                inline = await self._inline(job, min(call.wait, INLINE_WINDOW))
        finally:  # also when the control connection dropped meanwhile: the job must reach the server
            if inline is None:
                job.stream_task = asyncio.create_task(
                    deliver(job.spool, self.streams, STREAM_KEY, job.id, lambda: self._forget(job, kill=True))
                )
        return inline or {"started": True, "pid": job.pid, "started_at": job.started_at}

    async def _inline(self, job: AgentJob, window: float) -> dict[str, Any] | None:
        """A short job with little output: its whole result, to answer the start with (no stream)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + window
        while job.exit is None and job.spool.written <= INLINE_BYTES:
            changed = job.spool.changed
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                async with asyncio.timeout(remaining):
                    await changed.wait()
            except TimeoutError:
                return None
        if job.exit is None or job.spool.written > INLINE_BYTES:
            return None
        output = job.spool.chunks()
        self._forget(job, kill=False)
        encoded = [[stream, base64.b64encode(body).decode()] for stream, body in output]
        return {
            "started": True,
            "pid": job.pid,
            "started_at": job.started_at,
            "exit": job.exit,
            "output": encoded,
        }

    async def cancel(self, call: protocol.JobCancel) -> dict[str, Any]:
        """``job.cancel``: kill the job's process tree and wait (a little longer than the grace period)
        for it to end; ``{"known": False}`` for a job this agent does not have."""
        job = self.jobs.get(call.job_id)
        if job is None:
            return {"known": False}
        job.kill("cancelled")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(KILL_GRACE + 1.0):
                await job.done.wait()
        return {"known": True, "ended": job.exit is not None}

    def _forget(self, job: AgentJob, kill: bool) -> None:
        """Drop the job (the server needs nothing more of it): kill its tree if asked, delete its spool."""
        if kill:
            job.kill("cancelled")  # nothing when it has ended already
        job.spool.close(delete=True)
        self.jobs.pop(job.id, None)

    def close(self) -> None:
        """The agent is stopping: its jobs cannot be followed any more, so their process trees are killed."""
        for job in list(self.jobs.values()):
            if job.stream_task is not None:
                job.stream_task.cancel()
            if job.exit is None and job.tree is not None:
                job.tree.kill()
                job.tree.close()
            job.spool.close(delete=True)
        self.jobs.clear()
