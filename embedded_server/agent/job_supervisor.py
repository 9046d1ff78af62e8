"""A job's supervisor: the small process that runs one job so the job outlives its agent.

Each supervisor runs in a session of its own (a SIGKILL of the agent or of its process group does not
reach it). It is forked by the agent's *launcher* (``python -I …/job_supervisor.py --launcher``, one
per agent, started once: a fork of it takes about a millisecond where starting Python takes tens), or,
where there is no fork, started as ``python -I …/job_supervisor.py`` with the spec on stdin and its
events on stdout. The spec is one JSON line read from the agent's end of a socket pair — command,
environment and the secret values to mask travel there, never in an argv or an environment another
user could read. The supervisor then

- starts the job in a session of its own and holds its stdout and stderr pipes;
- masks the secret values (:mod:`.masking`) and appends the output to the job's spool (the records of
  :mod:`.durable`, ``STATE_DIR/jobs/<job_id>.spool``), whether or not an agent is there to read it;
- enforces the timeout, and cancels on ``cancel`` written to the FIFO ``JOB_DIR/ctl`` (or SIGTERM):
  SIGTERM to the whole process tree, SIGKILL :data:`KILL_GRACE` s later; ``kill`` is SIGKILL at once;
- records the end in ``JOB_DIR/exit.json`` (after the last output byte is in the spool) and exits.

``JOB_DIR`` is ``STATE_DIR/supervised/<job_id>/`` (0700). The supervisor holds an exclusive lock on
``JOB_DIR/lock`` for its whole life: an agent that can take the lock knows the supervisor is gone.
``JOB_DIR/job.json`` says what runs (pids, start, deadline; no environment). On the socket it tells the
agent that started it one JSON line when the job has started (``{"pid", "started_at"}``) or could not
(``{"error"}``), then ``o`` lines as output is spooled and ``x`` when the end is recorded; once that
agent is gone it writes nothing more, and a restarted agent follows the files instead. The wire between
agent and server is unchanged (docs/protocol.md). It imports little on purpose.

The operating-system specific parts are the functions under "platform" below (spawn in a session of its
own, adopt orphans, kill a whole tree) and :func:`launcher` (fork).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import struct
import subprocess
import sys
import time
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no fork, locks or FIFOs of this kind (the platform layer's part)
    fcntl = None  # type: ignore[assignment]

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
READ_SIZE = 256 * 1024  # bytes read from a job's pipe at a time
PIPE_SIZE = 1 << 20  # bytes: the job's pipes are widened to this where the OS allows
F_SETPIPE_SZ = 1031
RECORD = struct.Struct("<BI")  # as durable.RECORD: stream id, payload length
SPEC_LIMIT = 16 << 20  # bytes: the largest spec accepted
EXIT, JOB, LOCK, CTL, LOG = "exit.json", "job.json", "lock", "ctl", "supervisor.log"  # in the job dir


_MASKER: Any = None  # the Masker class, once imported


def _masker_class() -> Any:
    """:class:`.masking.Masker`, imported without importing the package (a lean start) when run by path."""
    if _MASKER is not None:
        return _MASKER
    if __package__:
        from .masking import Masker

        return Masker
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "masking.py")
    spec = importlib.util.spec_from_file_location("oc_agent_masking", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Masker


# --- platform: the OS-specific calls (POSIX here; Windows would use a Job Object) ------------------------


def spawn_tree(argv: list[str], env: dict[str, str], cwd: str | None) -> subprocess.Popen[bytes]:
    """Start ``argv`` as the leader of a new session (its own process group), stdin from the null
    device, stdout and stderr to pipes.

    Raises:
        OSError: it could not be started (``filename`` names what was missing); ValueError: an argument
        the OS cannot take (a NUL byte).
    """
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )


def adopt_orphans() -> None:
    """Become the reaper of the job's orphaned descendants (Linux's child subreaper), so a process that
    left the job's group (``setsid``, double fork) is still found by :func:`kill_tree`."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def kill_tree(pgid: int, sig: int) -> None:
    """Send ``sig`` to the job's process group ``pgid`` and to every other descendant of this process."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for pid in _descendants():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _descendants() -> list[int]:
    try:
        import psutil
    except ImportError:  # the process group alone, then
        return []
    try:
        return [p.pid for p in psutil.Process().children(recursive=True)]
    except psutil.Error:
        return []


# --- the supervisor ------------------------------------------------------------------------------------


def _write_json(path: str, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` at once (a temporary file renamed over it), mode 0600."""
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(data).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


class Supervisor:
    """One job, from its spec to its exit record (see the module's docstring)."""

    def __init__(self, spec: dict[str, Any], events: int) -> None:
        self.dir = str(spec["dir"])
        self.spool = str(spec["spool"])
        self.timeout = float(spec.get("timeout") or 60)
        self.events = events  # -1 once the agent that started us is gone
        secrets = [str(v) for v in spec.get("secrets") or []]
        masker = _masker_class()
        self.maskers = {fd: masker(secrets) for fd in (1, 2)} if secrets else {}
        self.reason = "exited"
        self.returncode: int | None = None
        self.kill_at: float | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def path(self, name: str) -> str:
        """A file of the job's dir."""
        return os.path.join(self.dir, name)

    def tell(self, line: str) -> None:
        """One event line to the agent that started us, never blocking; dropped once it is gone."""
        if self.events < 0:
            return
        try:
            os.write(self.events, line.encode() + b"\n")
        except BlockingIOError:
            pass  # it is behind: it reads the files anyway
        except OSError:
            self.events = -1

    def run(self, argv: list[str], env: dict[str, str], cwd: str | None) -> int:
        """Run the job to its end; returns this process's exit status."""
        lock = os.open(self.path(LOCK), os.O_RDWR | os.O_CREAT, 0o600)
        assert fcntl is not None, "supervisors run on POSIX systems"
        fcntl.flock(lock, fcntl.LOCK_EX)  # held until we exit: the agent's sign of life
        adopt_orphans()
        with contextlib.suppress(FileExistsError):
            os.mkfifo(self.path(CTL), 0o600)
        ctl = os.open(self.path(CTL), os.O_RDWR | os.O_NONBLOCK)  # RDWR: never an EOF, never blocks
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        for sig in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(sig, lambda *_: None)
        for sig in (signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        spool = os.open(self.spool, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self.proc = proc = spawn_tree(argv, env, cwd)
        except (OSError, ValueError) as exc:
            what = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
            filename = exc.filename if isinstance(exc, OSError) else None
            self.tell(json.dumps({"error": f"could not start: {what}{f': {filename}' if filename else ''}"}))
            return 0
        started_at = time.time()
        deadline = time.monotonic() + self.timeout
        _write_json(
            self.path(JOB),
            {
                "pid": proc.pid,
                "supervisor": os.getpid(),
                "started_at": started_at,
                "timeout": self.timeout,
                "deadline": started_at + self.timeout,
            },
        )
        self.tell(json.dumps({"pid": proc.pid, "started_at": started_at}))
        pipes: dict[int, int] = {}
        for stream, handle in ((1, proc.stdout), (2, proc.stderr)):
            assert handle is not None
            fd = handle.fileno()
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
            pipes[fd] = stream
        poller = select.poll()
        for fd in (*pipes, wake_r, ctl):
            poller.register(fd, select.POLLIN)
        abandon_at: float | None = None
        while pipes or self.returncode is None:
            now = time.monotonic()
            if self.reason == "exited" and now >= deadline:
                self.kill("timeout")
            if self.kill_at is not None and now >= self.kill_at:
                kill_tree(proc.pid, signal.SIGKILL)
                self.kill_at = None
                abandon_at = now + KILL_GRACE
            if abandon_at is not None and now >= abandon_at and self.returncode is not None:
                break  # killed, yet something we cannot reach still holds a pipe: the job is over
            wake = min(
                deadline if self.reason == "exited" else (self.kill_at or abandon_at or now), now + 1.0
            )
            for fd, _ in poller.poll(max(0.0, wake - now) * 1000 + 1):
                if fd in pipes:
                    data = os.read(fd, READ_SIZE)
                    if data:
                        self.append(spool, pipes[fd], data)
                    else:
                        poller.unregister(fd)
                        del pipes[fd]
                elif fd == wake_r:
                    signals = os.read(wake_r, 512)
                    if signal.SIGTERM in signals:
                        self.kill("cancelled")
                    self.reap()
                elif fd == ctl:
                    self.command(os.read(ctl, 512))
            if not pipes:  # a lost wake-up must not leave us waiting for an exit we missed
                self.reap()
        if self.kill_at is not None:  # the job ended while being killed: nothing of its tree may stay
            kill_tree(proc.pid, signal.SIGKILL)
        self.finish(spool)
        return 0

    def append(self, spool: int, stream: int, data: bytes) -> None:
        """Masked output of ``stream`` to the spool; tells the agent."""
        masker = self.maskers.get(stream)
        if masker is not None:
            data = masker.feed(data)
        if data:
            os.writev(spool, [RECORD.pack(stream, len(data)), data])
            self.tell("o")

    def reap(self) -> None:
        """Collect every exited child (the job's leader, and orphans we adopted)."""
        assert self.proc is not None
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.proc.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                self.proc.returncode = self.returncode  # Popen must not wait for it again

    def command(self, data: bytes) -> None:
        """Commands from the FIFO: ``cancel`` (SIGTERM, then SIGKILL) or ``kill`` (SIGKILL now)."""
        if b"kill" in data:
            self.kill("cancelled")
            self.kill_at = time.monotonic()
        elif b"cancel" in data:
            self.kill("cancelled")

    def kill(self, reason: str) -> None:
        """SIGTERM to the whole tree now, SIGKILL after the grace period (once; the first reason wins)."""
        if self.reason != "exited" or self.proc is None:
            return
        self.reason = reason
        kill_tree(self.proc.pid, signal.SIGTERM)
        self.kill_at = time.monotonic() + KILL_GRACE

    def finish(self, spool: int) -> None:
        """Flush what the maskers held back, record the end (after the last byte) and tell the agent."""
        for stream, masker in self.maskers.items():
            rest = masker.flush()
            if rest:
                os.writev(spool, [RECORD.pack(stream, len(rest)), rest])
        os.close(spool)
        code = self.returncode
        info: dict[str, Any] = {"reason": self.reason, "exit_code": None, "signal": None}
        if code is not None and code >= 0:
            info["exit_code"] = code
        elif code is not None:
            info["signal"] = -code
        info["finished_at"] = time.time()
        with contextlib.suppress(OSError):  # the agent may have dropped the job dir (it was stopped)
            _write_json(self.path(EXIT), info)
        self.tell("x")


def read_spec(stream: int, limit: int = SPEC_LIMIT) -> dict[str, Any] | None:
    """The JSON spec line from ``stream``; None when it closes first."""
    data = bytearray()
    while b"\n" not in data:
        chunk = os.read(stream, 65536)
        if not chunk or len(data) > limit:
            return None
        data += chunk
    spec: dict[str, Any] = json.loads(data.split(b"\n", 1)[0])
    return spec


def run_job(spec_fd: int, events_fd: int) -> int:
    """Read the spec from ``spec_fd``, run the job telling ``events_fd``; the exit status (0, or 1 when
    the spec is unusable)."""
    try:
        spec = read_spec(spec_fd)
    except (OSError, ValueError):
        return 1
    if spec is None:
        return 0
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    with contextlib.suppress(OSError):  # our own diagnostics, beside the job's files
        log = os.open(os.path.join(str(spec["dir"]), LOG), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 2)
        os.close(log)
    os.set_blocking(events_fd, False)
    argv = [str(a) for a in spec["argv"]]
    env = {str(k): str(v) for k, v in (spec.get("env") or {}).items()}
    cwd = spec.get("cwd")
    return Supervisor(spec, events_fd).run(argv, env, str(cwd) if cwd else None)


def launcher(control: int = 0) -> int:
    """Keep one forked supervisor ready for the next job the agent asks for: the agent sends one byte
    and one end of a socket pair on the Unix socket ``control``; the ready child (in a session of its
    own) takes it, tells us to fork the next one, reads the spec from that socket and tells its events
    on it. A fork of this small, single-threaded process takes about a millisecond where starting Python
    takes tens, and it happens before the job is asked for. Returns 0 once the agent closes ``control``
    (or a ready child died)."""
    global _MASKER
    _MASKER = _masker_class()
    with contextlib.suppress(ImportError):  # imported once here, not in every supervisor
        import ctypes  # noqa: F401

        import psutil  # noqa: F401
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the supervisors are reaped by the system
    import gc

    gc.freeze()  # the collector leaves what every child shares alone: fewer pages copied per fork
    while True:
        taken_r, taken_w = os.pipe()
        if os.fork() == 0:  # the next supervisor
            code = 1
            try:
                os.close(taken_r)
                code = _ready(control, taken_w)
            finally:
                os._exit(code)
        os.close(taken_w)
        taken = os.read(taken_r, 1)  # b"j": it took a job; b"": the agent left (or it died)
        os.close(taken_r)
        if taken != b"j":
            return 0


def _ready(control: int, taken: int) -> int:
    """A forked supervisor: wait for a job on ``control``, say so on ``taken``, run it."""
    import socket

    os.setsid()
    sock = socket.socket(fileno=control)
    try:
        message, fds, _, _ = socket.recv_fds(sock, 1, 1)
    except OSError:
        return 0
    if not message or not fds:
        return 0
    os.write(taken, b"j")
    os.close(taken)
    sock.close()
    for extra in fds[1:]:
        os.close(extra)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    return run_job(fds[0], fds[0])


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.exit(launcher() if sys.argv[1:] == ["--launcher"] else run_job(0, 1))
