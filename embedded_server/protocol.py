"""The agent wire protocol (docs/protocol.md): paths, message types and close codes, shared by both ends."""

from __future__ import annotations

import json
from typing import Any

AGENT_PATH = "/opencomputers/ws/agent"
STREAM_PATH = "/opencomputers/ws/agent/stream"  # one per job, dialled by the agent

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

REFUSALS = {
    CLOSE_BAD_HELLO: "the server refused the handshake (protocol mismatch: update oc-agent)",
    CLOSE_UNKNOWN_KEY: "the server does not know this host key; check --host-key or register the host again",
    CLOSE_REVOKED: "host key was revoked; register the host again",
    CLOSE_REPLACED: "another oc-agent connected with this host key and replaced this one",
}


def encode(type_: str, **fields: Any) -> str:
    return json.dumps({"type": type_, **fields}, separators=(",", ":"))


def decode(text: str | bytes) -> dict[str, Any]:
    """A message object, or ValueError when the frame is not a JSON object with a string ``type``."""
    message = json.loads(text)
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ValueError("frame is not a JSON object with a 'type'")
    return message
