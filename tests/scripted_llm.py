"""An OpenAI-compatible chat-completions server for tests: it answers each request with the next reply
of a plan (tool calls, a final answer, an HTTP error, or a hold until released), over the real wire
format — a JSON body, or with ``"stream": true`` SSE chunks ending in ``data: [DONE]``.

``with scripted_llm() as llm:`` serves it on 127.0.0.1 (``llm.base_url`` ends in ``/v1``); ``llm.plan(
*replies)`` queues replies, ``llm.requests`` keeps every request body, ``llm.arrived`` counts them.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from conftest import serve_http


@dataclass
class Reply:
    """One planned answer: ``content`` and/or ``tool_calls`` (``(name, arguments)``), or an HTTP
    ``error`` ``(status, message)``, or ``hold`` (a request that waits until :meth:`Script.release`)."""

    content: str | None = None
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    error: tuple[int, str] | None = None
    hold: bool = False


def call(name: str, **arguments: Any) -> Reply:
    """A reply that is one tool call."""
    return Reply(tool_calls=[(name, arguments)])


def answer(text: str) -> Reply:
    """A final answer."""
    return Reply(content=text)


class Script:
    """The plan and what came in."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.keys: list[str] = []  # the Authorization header of each request
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.base_url = ""
        self.default: Reply | None = None  # answered when the plan is empty (None: a 500)

    def plan(self, *replies: Reply) -> None:
        with self.lock:
            self.replies.extend(replies)

    def release(self) -> None:
        self.released.set()

    @property
    def arrived(self) -> int:
        return len(self.requests)

    async def wait_requests(self, count: int, timeout: float = 20.0) -> None:
        """Wait until ``count`` requests came (fails the test after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while self.arrived < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.arrived} model requests after {timeout} s, expected {count}")
            await asyncio.sleep(0.02)

    def next(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            self.requests.append(body)
            if self.replies:
                return self.replies.pop(0)
        return self.default or Reply(error=(500, "the plan is empty"))


def completion(reply: Reply, model: str, turn: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{turn}_{i}",
                "type": "function",
                "function": {"name": n, "arguments": json.dumps(a)},
            }
            for i, (n, a) in enumerate(reply.tool_calls)
        ]
    return {
        "id": f"chatcmpl-{turn}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def chunks(reply: Reply, model: str, turn: int) -> Iterator[dict[str, Any]]:
    """The reply as streamed chunks: role, content in pieces, each tool call's name then its arguments
    in pieces, the finish reason."""
    base = {
        "id": f"chatcmpl-{turn}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    text = reply.content or ""
    for start in range(0, len(text), 7):
        yield chunk({"content": text[start : start + 7]})
    for i, (name, arguments) in enumerate(reply.tool_calls):
        head = {
            "index": i,
            "id": f"call_{turn}_{i}",
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        yield chunk({"tool_calls": [head]})
        raw = json.dumps(arguments)
        for start in range(0, len(raw), 9):
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": raw[start : start + 9]}}]})
    yield chunk({}, "tool_calls" if reply.tool_calls else "stop")


@contextmanager
def scripted_llm() -> Iterator[Script]:
    """Serve a :class:`Script` on a free port; yields it with ``base_url`` set."""
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            script.keys.append(self.headers.get("Authorization") or "")
            reply = script.next(body)
            turn = script.arrived
            if reply.hold:
                script.released.wait(60)
                reply = Reply(content="released")
            if reply.error is not None:
                status, message = reply.error
                data = json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            model = str(body.get("model"))
            if body.get("stream"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for piece in chunks(reply, model, turn):
                    self.wfile.write(f"data: {json.dumps(piece)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                return
            data = json.dumps(completion(reply, model, turn)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    with serve_http(Handler) as root:
        script.base_url = root + "/v1"
        try:
            yield script
        finally:
            script.release()
