"""The agent's job runner: run each job under a supervisor of its own and deliver its output.

Each job runs under a small per-job supervisor process (:mod:`.job_supervisor`, as container runtimes'
shims do), started detached in a session of its own so the job outlives the agent: the supervisor holds
the job's pipes, masks the secret values (:mod:`.masking`) and appends the output to the job's spool
``STATE_DIR/jobs/<job_id>.spool``, enforces the timeout (the whole process tree gets SIGTERM, SIGKILL 2 s
later), takes ``cancel`` through a FIFO in its job dir ``STATE_DIR/supervised/<job_id>/`` and records the
end in ``exit.json`` there. The agent follows
the spool (:class:`~.durable.Spool` in follow mode) and :func:`~.durable.deliver` sends it over the
job's durable stream, resuming after any loss, ending with the ``exit`` frame; once the server answers
``done`` the job's spool and dir are deleted.

An agent that starts finds the job dirs a previous agent process left (it was killed, or crashed) and
re-adopts them: a job still running is followed again (and can be cancelled), a job that ended while no
agent was there is delivered with its real end, and a job whose supervisor is gone without recording an
end is reported as such (``reason: "supervisor_gone"``, what is left of its process group is killed).
A stopped agent (SIGTERM) still ends its jobs. The wire is docs/protocol.md, "Jobs and supervisors".

Where there is no supervisor (Windows so far; ``OC_AGENT_SUPERVISOR=0`` anywhere) the agent runs each
job itself (:class:`DirectJob`): the same answers and output stream, but the job ends with the agent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .. import protocol
from . import job_supervisor as sup
from . import platform
from .capabilities import Capability
from .durable import Spool, deliver
from .masking import Masker
from .streams import StreamDialer
from .system import work_env

log = logging.getLogger("oc_agent.jobs")

JOB_ID = re.compile(r"job_[A-Za-z0-9]{3,64}")
STREAM_KEY = "job_id"  # names a job's durable stream (query and exit frame)
KILL_GRACE = sup.KILL_GRACE  # seconds between SIGTERM and SIGKILL
INLINE_WINDOW = 0.25  # seconds a start with "wait" may wait for the job to end and answer with its result
INLINE_BYTES = 64 * 1024  # output up to this much is answered inline; more goes over the stream
POLL = 0.1  # seconds between looks at the files of a job whose supervisor we have no pipe to
START_TIMEOUT = 10.0  # seconds a supervisor may take to say whether the job started
SUPERVISOR = Path(sup.__file__)  # run by path: a lean start, without importing our package
GONE = "supervisor gone: the process that ran the job on the host ended before recording the job's end"


# --- platform: the OS-specific calls of the agent's side -------------------------------------------------
# Supervisors need POSIX (fork, Unix sockets, FIFOs, flock): on Windows the agent runs jobs itself
# (DirectJob); the supervisor's calls refuse there with NO_SUPERVISOR's message. Starting and killing a
# process tree is the platform layer's (:func:`.platform.spawn_options`, :func:`.platform.adopt`: a Job
# Object on Windows).

NO_SUPERVISOR = sup.NOT_HERE


class Launcher:
    """The agent's supervisor launcher: one small process (``job_supervisor.py --launcher``, in a session
    of its own) that forks a supervisor per job, so a job does not wait for Python to start. Started on
    first use, restarted if it died; it exits when the agent closes its socket (or dies)."""

    def __init__(self) -> None:
        # A plain Popen, not an asyncio subprocess: the launcher outlives our close of its socket by a
        # moment, and asyncio's child watcher would then warn, on the agent's exit, of a loop detached
        # with a pending handler (that warning was the last line of a refused agent's log).
        self.process: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None

    async def _start(self) -> socket.socket:
        if sys.platform == "win32":
            raise OSError(errno.ENOSYS, NO_SUPERVISOR)
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", str(SUPERVISOR), "--launcher"],
                stdin=theirs.fileno(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={},
                **platform.spawn_options(),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)  # a launcher that stopped reading is replaced, never waited for
        self.sock = ours
        return ours

    async def supervisor(self) -> socket.socket:
        """A new supervisor, waiting for its spec: the agent's end of its socket pair.

        Raises:
            OSError: no launcher could be started or reached (always on Windows: :data:`NO_SUPERVISOR`).
        """
        if sys.platform == "win32":
            raise OSError(errno.ENOSYS, NO_SUPERVISOR)
        for attempt in (0, 1):
            sock = self.sock
            if sock is None or self.process is None or self.process.poll() is not None:
                self.close()
                sock = await self._start()
            ours, theirs = socket.socketpair()
            try:
                socket.send_fds(sock, [b"j"], [theirs.fileno()])
                return ours
            except OSError:
                ours.close()
                self.close()  # it died: start another
                if attempt:
                    raise
            finally:
                theirs.close()
        raise OSError("no supervisor launcher")  # not reached

    def close(self) -> None:
        """Close our end: the launcher exits (the supervisors it forked carry on)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.process = None


def supervisor_alive(directory: Path) -> bool:
    """Whether a supervisor still holds the job dir's lock (False when the dir has no lock file)."""
    if sys.platform == "win32":
        return False
    import fcntl

    try:
        fd = os.open(directory / sup.LOCK, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases it if we got it
    return False


def kill_leftovers(directory: Path) -> None:
    """Kill what is left of the process group of a job whose supervisor is gone (checked to be the same
    process by its start time, so a reused pid is left alone)."""
    try:
        info = json.loads((directory / sup.JOB).read_text())
        pid, started = int(info["pid"]), float(info["started_at"])
        import psutil

        if abs(psutil.Process(pid).create_time() - started) > 2.0:
            return
        platform.adopt(pid).kill()  # SIGKILL to its process group
    except (OSError, ValueError, KeyError, TypeError, ImportError):
        return
    except Exception as exc:  # psutil.Error: the process is gone, or not ours to see
        log.debug("leftovers of %s: %s", directory.name, exc)


def send_command(directory: Path, command: str) -> bool:
    """Write ``command`` to the job's control FIFO; False when no supervisor reads it (it is gone)."""
    if sys.platform == "win32":
        return False
    try:
        fd = os.open(directory / sup.CTL, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # ENXIO: nobody has it open for reading; ENOENT: never made
        return False
    try:
        os.write(fd, command.encode() + b"\n")
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def discard(directory: Path, spool: Path) -> None:
    """Delete a job's supervisor dir and its spool (what is missing is fine)."""
    shutil.rmtree(directory, ignore_errors=True)
    spool.unlink(missing_ok=True)


# --- jobs -------------------------------------------------------------------------------------------


class AgentJob:
    """One job: its dir, the spool its supervisor writes, and what the agent knows of its end.

    Args:
        job_id: the job's ID; directory: its supervisor's dir; spool: its spool file.

    ``events`` is our socket to its supervisor, None for a job adopted from a previous agent process.
    """

    def __init__(self, job_id: str, directory: Path, spool: Path) -> None:
        self.id = job_id
        self.dir = directory
        self.events: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.spool = Spool(spool, follow=True)
        self.pid = 0
        self.started_at = time.time()
        self.exit: dict[str, Any] | None = None
        self.done = asyncio.Event()
        self.follow_task: asyncio.Task[None] | None = None
        self.stream_task: asyncio.Task[None] | None = None

    async def follow(self) -> None:
        """Follow the supervisor's files until the job's end is known: woken by its events while we have
        its pipe, looking every :data:`POLL` s otherwise."""
        try:
            if self.events is not None:
                reader = self.events[0]
                while not (line := await reader.readline()).startswith(b"x"):
                    self.spool.refresh()
                    if not line:  # it exited (or was killed)
                        break
            while not self.check_end():
                self.spool.refresh()
                await asyncio.sleep(POLL)
        finally:
            self.hang_up()

    def hang_up(self) -> None:
        """Close our socket to the supervisor (it carries on without us)."""
        if self.events is not None:
            self.events[1].close()
            self.events = None

    def check_end(self) -> bool:
        """Take the end the supervisor recorded, or find it gone without one; True once the end is known."""
        if self.exit is not None:
            return True
        alive = supervisor_alive(self.dir)
        try:
            info = json.loads((self.dir / sup.EXIT).read_text())
        except (OSError, ValueError):
            if alive:
                return False
            log.warning("job %s: its supervisor is gone without recording the job's end", self.id)
            kill_leftovers(self.dir)
            info = {"reason": "supervisor_gone", "exit_code": None, "signal": None, "error": GONE}
            info["finished_at"] = time.time()
        self.spool.refresh()
        self.exit = info
        self.done.set()
        self.spool.finish(info)
        log.debug("job %s ended: %s", self.id, info)
        return True

    def remove(self) -> None:
        """Delete the job's spool and dir."""
        discard(self.dir, self.spool.path)

    def kill(self, command: str = "cancel") -> None:
        """Ask the supervisor to end the tree: ``cancel`` (SIGTERM, SIGKILL 2 s later) or ``kill``."""
        if self.exit is None and not send_command(self.dir, command):
            self.check_end()  # nobody to ask: it is gone (or just ended)


class _Pipes(asyncio.SubprocessProtocol):
    """A :class:`DirectJob`'s process: its output and its end."""

    def __init__(self, job: DirectJob) -> None:
        self.job = job

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.job.append(fd, data)

    def connection_lost(self, exc: Exception | None) -> None:  # process gone and both pipes closed
        self.job.finished()


class DirectJob(AgentJob):
    """A job the agent runs itself, without a supervisor: where there is none (Windows, so far), or with
    ``OC_AGENT_SUPERVISOR=0``. It starts as a tree of its own (:func:`.platform.adopt`: a process group on
    POSIX, a Job Object on Windows), the agent masks and spools its output, enforces its timeout and ends
    its tree on cancel; it does not outlive the agent."""

    def __init__(self, job_id: str, directory: Path, spool: Path) -> None:
        super().__init__(job_id, directory, spool)
        self.tree: platform.ProcessTree | None = None
        self.transport: asyncio.SubprocessTransport | None = None
        self.maskers: dict[int, Masker] = {}
        self.reason = "exited"  # or "timeout" / "cancelled"
        self._timers: list[asyncio.TimerHandle] = []

    async def begin(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Start the process of ``spec`` (as a supervisor gets it); ``{"pid", "started_at"}``, or
        ``{"error"}`` when it could not start (as a supervisor's first line)."""
        secrets = list(spec["secrets"])
        self.maskers = {fd: Masker(secrets) for fd in (1, 2)} if secrets else {}
        self.spool = Spool(self.spool.path)  # written here, by the agent itself
        loop = asyncio.get_running_loop()
        options: dict[str, Any] = dict(
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=spec["env"],
            cwd=spec["cwd"],
            **platform.spawn_options(),
        )
        try:
            if spec["shell"]:  # cmd.exe: %ComSpec% /c "command"
                transport, _ = await loop.subprocess_shell(lambda: _Pipes(self), spec["argv"], **options)
            else:
                transport, _ = await loop.subprocess_exec(lambda: _Pipes(self), *spec["argv"], **options)
        except (OSError, ValueError) as exc:  # ValueError: what the OS cannot take (a NUL byte)
            self.spool.close(delete=True)
            what = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
            filename = exc.filename if isinstance(exc, OSError) else None
            return {"error": f"could not start: {what}{f': {filename}' if filename else ''}"}
        self.transport, self.pid = transport, transport.get_pid()
        self.tree = platform.adopt(self.pid)
        self._timers.append(loop.call_later(float(spec["timeout"]), self.kill, "timeout"))
        return {"pid": self.pid, "started_at": self.started_at}

    def append(self, fd: int, data: bytes) -> None:
        """Output from the process's pipe ``fd`` (1 = stdout, 2 = stderr), masked, to the spool."""
        masker = self.maskers.get(fd)
        if masker is not None:
            data = masker.feed(data)
        if data:
            self.spool.append(fd, data)

    def finished(self) -> None:
        """The process is gone and both pipes closed: record the exit."""
        if self.exit is not None:
            return
        for timer in self._timers[:1]:  # the timeout; a pending kill stays armed for what is left
            timer.cancel()
        info = sup.exit_info(self.reason, self.transport.get_returncode() if self.transport else None)
        for fd, masker in self.maskers.items():  # what was held back as a possible start of a value
            rest = masker.flush()
            if rest:
                self.spool.append(fd, rest)
        self.exit = info
        if self.transport is not None:
            self.transport.close()
        if self.tree is not None:
            self.tree.close()
        self.done.set()
        self.spool.finish(info)

    async def follow(self) -> None:
        """Nothing to follow: the end comes from the process itself."""
        await self.done.wait()

    def check_end(self) -> bool:
        """Whether the end is known."""
        return self.exit is not None

    def kill(self, command: str = "cancel") -> None:
        """End the tree: ``cancel`` (SIGTERM, SIGKILL 2 s later), ``timeout`` (the same) or ``kill``."""
        if self.exit is not None or self.tree is None:
            return
        if self.reason == "exited":
            self.reason = "timeout" if command == "timeout" else "cancelled"
        if command == "kill":
            self.tree.kill()
            return
        self.tree.terminate()
        self._timers.append(asyncio.get_running_loop().call_later(KILL_GRACE, self.tree.kill))

    def remove(self) -> None:
        """Close and delete the spool (and the job's dir)."""
        for timer in self._timers:
            timer.cancel()
        self.spool.close(delete=True)
        super().remove()


class JobManager:
    """The jobs of this agent process: start, cancel, list, re-adopt, and the dir they live in.

    Args:
        state_dir: the agent's state dir (0700); spools go to ``state_dir/jobs/<job_id>.spool``, the
            supervisors' dirs are ``state_dir/supervised/<job_id>/``.
        streams: dials each job's durable output stream.
    """

    def __init__(self, state_dir: Path, streams: StreamDialer) -> None:
        self.spool_dir = state_dir / "jobs"
        self.run_dir = state_dir / "supervised"
        for directory in (self.spool_dir, self.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
        for directory in (state_dir, self.spool_dir, self.run_dir):
            platform.secure_dir(str(directory))
        self.streams = streams
        self.jobs: dict[str, AgentJob] = {}
        self.launcher = Launcher()
        # Without supervisors (Windows so far, or OC_AGENT_SUPERVISOR=0) the agent runs jobs itself.
        self.direct = sys.platform == "win32" or os.environ.get("OC_AGENT_SUPERVISOR") == "0"
        self._adopt()

    def _adopt(self) -> None:
        """The job dirs a previous agent process left: adopt each (followed from :meth:`resume`)."""
        for directory in sorted(self.run_dir.iterdir()):
            if not directory.is_dir() or not JOB_ID.fullmatch(directory.name):
                continue
            job = AgentJob(directory.name, directory, self.spool_dir / f"{directory.name}.spool")
            started = (directory / sup.JOB).exists() or (directory / sup.EXIT).exists()
            if not started and not supervisor_alive(directory):  # it never started: nothing to say
                job.remove()
                continue
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                info = json.loads((directory / sup.JOB).read_text())
                job.pid, job.started_at = int(info["pid"]), float(info["started_at"])
            job.spool.refresh()
            self.jobs[job.id] = job
            log.info("job %s: re-adopted from a previous agent process", job.id)
        for stale in self.spool_dir.glob("*.spool"):  # spools no supervisor writes: nothing to follow
            if stale.stem not in self.jobs:
                stale.unlink(missing_ok=True)

    async def resume(self) -> None:
        """Follow and deliver the adopted jobs (on the event loop, once the agent runs)."""
        for job in self.jobs.values():
            if job.follow_task is None:
                self._watch(job)

    def _watch(self, job: AgentJob) -> None:
        job.follow_task = asyncio.create_task(job.follow())
        job.stream_task = asyncio.create_task(
            deliver(job.spool, self.streams, STREAM_KEY, job.id, lambda: self._forget(job, kill=True))
        )

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
        """``job.start``: hand the job to a supervisor and answer once it started (docs/protocol.md).

        Raises:
            AgentError: VALIDATION_ERROR when ``job_id`` is not a job ID (it names the job's dir).
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
        directory, spool = self.run_dir / job_id, self.spool_dir / f"{job_id}.spool"
        discard(directory, spool)
        directory.mkdir(mode=0o700)
        spec = {
            "dir": str(directory),
            "spool": str(spool),
            "argv": launch.args,  # a list, or with "shell" the command line for cmd.exe (Windows)
            "shell": launch.shell,
            "env": env,
            # no cwd: the home of the agent's user, where the Files tab and a terminal open (not the
            # directory the agent happened to be started from)
            "cwd": os.path.expanduser(call.cwd or "~"),
            "timeout": float(call.timeout or 60),
            "secrets": list(call.secrets.values()),
        }
        job = DirectJob(job_id, directory, spool) if self.direct else AgentJob(job_id, directory, spool)
        try:
            if isinstance(job, DirectJob):
                first = await job.begin(spec)
            else:
                first = await self._supervise(job, spec)
        except (OSError, ValueError, TimeoutError) as exc:
            job.hang_up()
            discard(directory, spool)
            log.warning("job %s: its supervisor failed: %s", job_id, exc)
            return {"started": False, "error": f"could not start: the job's supervisor failed ({exc})"}
        except BaseException:  # cancelled, or a failure of ours: the job's dir is not left behind
            job.hang_up()
            discard(directory, spool)
            raise
        if "pid" not in first:
            job.hang_up()
            discard(directory, spool)
            return {"started": False, "error": str(first.get("error") or "could not start")}
        job.pid, job.started_at = int(first["pid"]), float(first["started_at"])
        self.jobs[job_id] = job
        job.follow_task = asyncio.create_task(job.follow())
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

    async def _supervise(self, job: AgentJob, spec: dict[str, Any]) -> dict[str, Any]:
        """Hand ``spec`` to a new supervisor; its first line (``{"pid", "started_at"}`` or ``{"error"}``).

        Raises:
            OSError, ValueError, TimeoutError: the supervisor could not be reached or did not answer.
        """
        if sys.platform == "win32":
            raise OSError(errno.ENOSYS, NO_SUPERVISOR)
        job.events = reader, writer = await asyncio.open_unix_connection(
            sock=await self.launcher.supervisor()
        )
        writer.write(json.dumps(spec).encode() + b"\n")  # the secrets travel on this socket only
        await writer.drain()
        async with asyncio.timeout(START_TIMEOUT):
            first: dict[str, Any] = json.loads(await reader.readline() or b"{}")
        return first

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
        """``job.cancel``: have the job's supervisor kill its process tree and wait (a little longer than
        the grace period) for its end; ``{"known": False}`` for a job this agent does not have."""
        job = self.jobs.get(call.job_id)
        if job is None:
            return {"known": False}
        job.kill()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(KILL_GRACE + 1.0):
                await job.done.wait()
        return {"known": True, "ended": job.exit is not None}

    def _forget(self, job: AgentJob, kill: bool) -> None:
        """Drop the job (the server needs nothing more of it): end its tree if asked, delete its dir."""
        if kill:
            job.kill()  # nothing when it has ended already
        if job.follow_task is not None:
            job.follow_task.cancel()
        job.remove()
        self.jobs.pop(job.id, None)

    def close(self) -> None:
        """The agent is stopping: its jobs' trees are killed (SIGKILL) by their supervisors, their dirs
        deleted. (An agent that dies instead leaves them running, to be re-adopted.)"""
        self.launcher.close()
        for job in list(self.jobs.values()):
            for task in (job.stream_task, job.follow_task):
                if task is not None:
                    task.cancel()
            job.kill("kill")
            job.hang_up()
            job.remove()
        self.jobs.clear()
