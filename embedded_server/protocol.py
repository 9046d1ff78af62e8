"""The agent wire protocol (docs/protocol.md): paths, message types and close codes, shared by both ends."""

from __future__ import annotations

import json
from typing import Any

AGENT_PATH = "/opencomputers/ws/agent"
STREAM_PATH = (
    "/opencomputers/ws/agent/stream"  # dialled by the agent: ?job_id= (a job) or ?stream_id= (a request)
)
TERMINAL_PATH = "/opencomputers/ws/terminal"  # client side, ?ticket=
DESKTOP_PATH = "/opencomputers/ws/desktop"  # client side, ?ticket=

HELLO_TIMEOUT = 10.0  # seconds the server waits for the agent's hello
MISSED_HEARTBEATS = 3  # silence for this many intervals drops the connection

# Message types
HELLO = "hello"
WELCOME = "welcome"
PING = "ping"
PONG = "pong"
REQUEST = "request"
RESPONSE = "response"
# On a job's stream WebSocket
JOB_RESUME = "resume"  # server -> agent: {"offset": output bytes the server already has}
JOB_EXIT = "exit"  # agent -> server, after the last output byte
JOB_DONE = "done"  # server -> agent: nothing more is needed (exit stored, or the job is over): drop it

# Close codes: those in REFUSALS mean "do not retry"; any other close means "redial with backoff".
CLOSE_BAD_HELLO = 4400
CLOSE_UNKNOWN_KEY = 4401
CLOSE_REVOKED = 4403
CLOSE_REPLACED = 4409
CLOSE_HEARTBEAT_LOST = 4000
CLOSE_UNKNOWN_JOB = 4404  # stream for a job the server does not know (for this host)
CLOSE_UNKNOWN_STREAM = 4404  # stream_id nobody waits for (any more): the agent drops that stream

# Close codes of the client-side session WebSockets (terminal, desktop); the reason says more.
CLOSE_TICKET_REFUSED = 4401  # unknown, forged, expired or already used ticket
CLOSE_SESSION_HOST_GONE = 4404  # the ticket's host was revoked or deleted since
CLOSE_SESSION_HOST_OFFLINE = 4409  # the host's agent is not connected
CLOSE_SESSION_AGENT_FAILED = 4502  # the agent could not open the session (the reason says why)

REFUSALS = {
    CLOSE_BAD_HELLO: "the server refused the handshake (protocol mismatch: update oc-agent)",
    CLOSE_UNKNOWN_KEY: "the server does not know this host key; check --host-key or register the host again",
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
}


class AgentError(Exception):
    """Raised by an agent handler to answer with ``{"error": {"code", "message"}}`` (no traceback logged)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode(type_: str, **fields: Any) -> str:
    return json.dumps({"type": type_, **fields}, separators=(",", ":"))


def decode(text: str | bytes) -> dict[str, Any]:
    """A message object, or ValueError when the frame is not a JSON object with a string ``type``."""
    message = json.loads(text)
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ValueError("frame is not a JSON object with a 'type'")
    return message
