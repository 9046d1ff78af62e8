"""The agent wire protocol (docs/protocol.md): paths, message types and close codes, shared by both ends."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

AGENT_PATH = "/opencomputers/ws/agent"
STREAM_PATH = (
    "/opencomputers/ws/agent/stream"  # dialled by the agent: ?job_id= (a job) or ?stream_id= (a request)
)
TERMINAL_PATH = "/opencomputers/ws/terminal"  # client side, ?ticket=
DESKTOP_PATH = "/opencomputers/ws/desktop"  # client side, ?ticket=

MAX_CELLS = 1000  # the most columns or rows of a terminal (pty.open, resize)
HELLO_TIMEOUT = 10.0  # seconds the server waits for the agent's hello
MISSED_HEARTBEATS = 3  # silence for this many intervals drops the connection

# Message types
CHALLENGE = "challenge"  # server -> agent, first frame: {"nonce"} to sign (embedded_server/identity.py)
HELLO = "hello"
WELCOME = "welcome"
PING = "ping"
PONG = "pong"
REQUEST = "request"
RESPONSE = "response"
# On a durable stream WebSocket (a job's output; embedded_server/agent/durable.py)
JOB_RESUME = "resume"  # server -> agent: {"offset": output bytes the server already has}
JOB_EXIT = "exit"  # agent -> server, after the last output byte
JOB_DONE = "done"  # server -> agent: nothing more is needed (exit stored, or the job is over): drop it

# Close codes: those in REFUSALS mean "do not retry"; any other close means "redial with backoff".
CLOSE_BAD_HELLO = 4400
CLOSE_UNKNOWN_KEY = 4401
CLOSE_OTHER_MACHINE = 4402  # the host key is enrolled on another machine (another identity is pinned)
CLOSE_REVOKED = 4403
CLOSE_STALE_STREAM_KEY = 4408  # a stream dialled with a key no connected channel has: redial later
CLOSE_REPLACED = 4409
CLOSE_HEARTBEAT_LOST = 4000
CLOSE_UNKNOWN_JOB = 4404  # stream for a job the server does not know (for this host)
CLOSE_UNKNOWN_STREAM = 4404  # stream_id nobody waits for (any more): the agent drops that stream

# Close codes of the client-side session WebSockets (terminal, desktop); the reason says more.
CLOSE_TICKET_REFUSED = 4401  # unknown, forged, expired or already used ticket
CLOSE_SESSION_HOST_GONE = 4404  # the ticket's host was revoked or deleted since
CLOSE_SESSION_HOST_OFFLINE = 4409  # the host's agent is not connected
CLOSE_SESSION_AGENT_FAILED = 4502  # the agent could not open the session (the reason says why)

PLANE_REASON = "plane="  # the close reason of CLOSE_UNKNOWN_KEY: "plane=<the refusing plane's id>"


def plane_reason(plane_id: str) -> str:
    """The close reason with which a control plane refuses an unknown host key: it names the plane."""
    return PLANE_REASON + plane_id


def refusing_plane(reason: str) -> str | None:
    """The plane id a CLOSE_UNKNOWN_KEY reason names (None from a server that names none)."""
    return reason[len(PLANE_REASON) :] if reason.startswith(PLANE_REASON) else None


REFUSALS = {
    CLOSE_BAD_HELLO: "the server refused the handshake (protocol mismatch: update oc-agent)",
    CLOSE_UNKNOWN_KEY: "the server does not know this host key; check the key file or register the host again",
    CLOSE_OTHER_MACHINE: "this host key is already enrolled on another machine: register this machine as a "
    "host of its own (or revoke the other)",
    CLOSE_REVOKED: "host key was revoked; register the host again",
    CLOSE_REPLACED: "another oc-agent connected with this host key and replaced this one",
}


# Error codes an agent may answer a request with, and the HTTP status the API gives them. Any other code
# (UNKNOWN_METHOD, HANDLER_FAILED …) is 502 AGENT_UNREACHABLE "the agent failed: …".
AGENT_ERROR_STATUS = {
    "NOT_FOUND": 404,
    "FORBIDDEN": 403,
    "VALIDATION_ERROR": 400,
    "NOT_A_DIRECTORY": 400,
    "IS_A_DIRECTORY": 400,
    "DIRECTORY_NOT_EMPTY": 409,
    "ALREADY_EXISTS": 409,
    "CONFLICT": 409,
    "RANGE_NOT_SATISFIABLE": 416,
    "NO_SPACE": 507,  # fs: the host's disk or quota is full
    "NO_VNC_SERVER": 502,  # vnc.open: the reasons reach the client as a 4502 close reason
    "VNC_AUTH_FAILED": 502,
    "VNC_UNSUPPORTED": 502,
    "NOT_LISTENING": 502,  # tunnel.connect, tunnel.websocket: nothing listens on the target port
    "WEBSOCKET_REFUSED": 502,  # tunnel.websocket: the app refused the handshake
}


class AgentError(Exception):
    """Raised by an agent handler to answer with ``{"error": {"code", "message"}}`` (no traceback logged)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- typed requests --------------------------------------------------------------------------------------
# Each request method is a model of its params: the hub sends ``hub.call(host_id, JobCancel(job_id=…))``,
# the agent registers a handler per model class and receives the params parsed. Unknown fields are
# ignored (a newer server may send more to an older agent); a missing or mistyped field is the agent's
# VALIDATION_ERROR (400).


class Call(BaseModel):
    """The params of one agent request method; ``METHOD`` is its name on the wire."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    METHOD: ClassVar[str]

    def params(self) -> dict[str, Any]:
        """The JSON params sent in the request (fields left at None are omitted)."""
        return self.model_dump(mode="json", exclude_none=True)


class StreamCall(Call):
    """A request whose answer is followed by a stream the agent dials back (``stream_id`` set by the hub)."""

    stream_id: str = Field(default="", min_length=0)


class SysInfo(Call):
    """``sys.info``: the host's live facts (CPU, memory, load, uptime)."""

    METHOD = "sys.info"


class JobStart(Call):
    """``job.start``: run a job; with ``wait``, answer with its whole result when it ends that soon."""

    METHOD = "job.start"
    job_id: str
    command: str
    args: list[str] = []
    shell: str | None = None  # without args: sh, bash, zsh, cmd, powershell, pwsh; None: the host's default
    env: list[str] = []  # KEY=VALUE
    cwd: str | None = None
    timeout: float = 60  # seconds
    wait: float | None = None  # seconds
    # Secret values the job gets as environment variables and the agent masks in its output; never
    # logged, never written to the agent's disk (repr=False keeps them out of reprs and tracebacks).
    secrets: dict[str, str] = Field(default_factory=dict, repr=False)


class JobCancel(Call):
    """``job.cancel``: kill a job's process tree; answers ``{"known": bool}``."""

    METHOD = "job.cancel"
    job_id: str


class JobList(Call):
    """``job.list``: the jobs this agent still has."""

    METHOD = "job.list"


class FsList(Call):
    """``fs.list``: a directory's entries (``path`` None: the home directory)."""

    METHOD = "fs.list"
    path: str | None = None


class FsStat(Call):
    """``fs.stat``: one path's metadata."""

    METHOD = "fs.stat"
    path: str


class FsMkdir(Call):
    """``fs.mkdir``: create a directory (and its missing parents when ``parents``)."""

    METHOD = "fs.mkdir"
    path: str
    parents: bool = True


class FsDelete(Call):
    """``fs.delete``: remove a file, a symlink, an empty directory or (``recursive``) a tree."""

    METHOD = "fs.delete"
    path: str
    recursive: bool = False


class FsRead(StreamCall):
    """``fs.read``: a file's bytes over the dialled-back stream."""

    METHOD = "fs.read"
    path: str


class FsWrite(StreamCall):
    """``fs.write``: receive a file's bytes over the stream, written beside the target and renamed."""

    METHOD = "fs.write"
    path: str
    mkdir: bool = False


class PtyOpen(StreamCall):
    """``pty.open``: a login shell on a new PTY of ``cols`` x ``rows`` cells, joined to the stream."""

    METHOD = "pty.open"
    cols: int = Field(default=80, ge=1, le=MAX_CELLS, strict=True)
    rows: int = Field(default=24, ge=1, le=MAX_CELLS, strict=True)


class VncOpen(StreamCall):
    """``vnc.open``: the host's VNC server, authenticated by the agent, relayed as RFB over the stream."""

    METHOD = "vnc.open"


class TunnelConnect(StreamCall):
    """``tunnel.connect``: a TCP connection to ``127.0.0.1:port`` on the host, relayed as bytes on the stream
    (the control plane speaks HTTP/1.1 over it and may reuse it for the next request)."""

    METHOD = "tunnel.connect"
    port: int = Field(ge=1, le=65535, strict=True)


class TunnelWebSocket(StreamCall):
    """``tunnel.websocket``: the agent opens ``ws://127.0.0.1:port{target}`` with ``headers`` and
    ``subprotocols`` and relays its messages on the stream (text as text frames, binary as binary);
    answers ``{"subprotocol": str | None}``."""

    METHOD = "tunnel.websocket"
    port: int = Field(ge=1, le=65535, strict=True)
    target: str = "/"
    headers: list[tuple[str, str]] = []
    subprotocols: list[str] = []


def encode(type_: str, **fields: Any) -> str:
    """A message of type ``type_`` with ``fields`` as compact JSON text (one text frame)."""
    return json.dumps({"type": type_, **fields}, separators=(",", ":"))


def decode(text: str | bytes) -> dict[str, Any]:
    """A message object, or ValueError when the frame is not a JSON object with a string ``type``."""
    message = json.loads(text)
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ValueError("frame is not a JSON object with a 'type'")
    return message
