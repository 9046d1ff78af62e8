"""``Idempotency-Key`` on every POST: a retried request gets the first answer again instead of a second
run (MIOSA's Go SDK retries POSTs on 429/5xx; its Python SDK retries a POST only when it carries a key).

Per tenant, a key is remembered for :data:`TTL` seconds with a fingerprint of the request (method, path,
query, body) and the answer (status, content type, body), in SQLite, so a restart keeps it:

- same key, same request → the stored answer, with ``Idempotent-Replayed: true``;
- same key, another request → 422 ``IDEMPOTENCY_KEY_REUSED``;
- same key while the first request is still running → 409 ``CONFLICT`` (retry later);
- an answer of 5xx is not kept (the request may be retried); an event stream (``stream: true`` exec) is
  not replayable: its key is kept, and a retry is answered 409 so the job does not run twice.

Requests outside the API (``/t/…`` tunnels, ``/inference/…`` clusters), requests without a key, other
methods, requests without a valid token (the route answers 401) and
bodies over :data:`MAX_BODY` (uploads: writing the same bytes again is harmless) pass through untouched.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oc_tui.api.errors import ErrorCode

from .auth import bearer, tenant_for_token
from .db import Database
from .deps import API_PREFIX

TTL = 24 * 3600  # seconds a key is remembered
STALE = 600  # seconds after which a request still "running" (a crash) no longer holds its key
MAX_BODY = 1 << 20  # bytes: larger bodies pass through without idempotency
MAX_KEY = 255
HEADER = "idempotency-key"

SCHEMA = [
    """
    CREATE TABLE idempotency (
        tenant_id TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status INTEGER,
        content_type TEXT,
        body BLOB,
        created_at REAL NOT NULL,
        PRIMARY KEY (tenant_id, key)
    );
    CREATE INDEX idempotency_by_age ON idempotency(created_at)
    """
]


def _json_answer(status: int, code: str, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"error": {"code": code, "message": message}}).encode()


class IdempotencyMiddleware:
    """The ASGI middleware (see the module's docstring).

    Args:
        app: the application it wraps.
        db: the database holding the ``idempotency`` table.
    """

    def __init__(self, app: ASGIApp, db: Database) -> None:
        self.app = app
        self.db = db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call: replay, refuse, or run and remember a keyed POST."""
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(API_PREFIX):
            # Only the API's own POSTs: a tunnel's app and a cluster's engine (OpenAI clients send a key
            # with every POST) answer for themselves.
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = headers.get(HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not key or len(key) > MAX_KEY or not key.isprintable():
            await self._answer(
                send, *_json_answer(400, ErrorCode.VALIDATION_ERROR, "Idempotency-Key: invalid")
            )
            return
        token = bearer(headers.get("authorization"))
        tenant_id = tenant_for_token(self.db, token) if token else None
        length = headers.get("content-length", "")
        if tenant_id is None or (length.isdigit() and int(length) > MAX_BODY):
            await self.app(scope, receive, send)
            return
        chunks, body, more = [], b"", True
        while more:  # the body, for the fingerprint; given to the app again below
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = bool(message.get("more_body"))
            if len(body) > MAX_BODY:
                await self.app(scope, _replay(chunks, receive), send)
                return
        await self._keyed(scope, _replay(chunks, receive), send, tenant_id, key, body)

    async def _keyed(
        self, scope: Scope, receive: Receive, send: Send, tenant_id: str, key: str, body: bytes
    ) -> None:
        request = f"{scope['method']} {scope['path']}?{scope.get('query_string', b'').decode('latin-1')}"
        fingerprint = hashlib.sha256(request.encode() + b"\n" + body).hexdigest()
        now = time.time()
        with self.db.transaction():
            self.db.execute("DELETE FROM idempotency WHERE created_at < ?", (now - TTL,))
            self.db.execute("DELETE FROM idempotency WHERE status IS NULL AND created_at < ?", (now - STALE,))
            row = self.db.one("SELECT * FROM idempotency WHERE tenant_id = ? AND key = ?", (tenant_id, key))
            if row is None:
                self.db.execute(
                    "INSERT INTO idempotency (tenant_id, key, fingerprint, created_at) VALUES (?, ?, ?, ?)",
                    (tenant_id, key, fingerprint, now),
                )
        if row is not None:
            await self._seen(send, row, fingerprint)
            return
        captured: dict[str, Any] = {"status": None, "type": None, "body": bytearray(), "stream": False}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = int(message["status"])
                for name, value in message.get("headers", []):
                    if name.decode("latin-1").lower() == "content-type":
                        captured["type"] = value.decode("latin-1")
                captured["stream"] = "text/event-stream" in (captured["type"] or "")
            elif message["type"] == "http.response.body" and not captured["stream"]:
                captured["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self._remember(tenant_id, key, captured)

    def _remember(self, tenant_id: str, key: str, captured: dict[str, Any]) -> None:
        status = captured["status"]
        where = (tenant_id, key)
        if status is None or status >= 500:  # no answer, or one a retry may improve on: forget the key
            self.db.execute("DELETE FROM idempotency WHERE tenant_id = ? AND key = ?", where)
            return
        content_type, body = captured["type"], bytes(captured["body"])
        if captured["stream"]:
            status, body = _json_answer(
                409,
                ErrorCode.CONFLICT,
                "the first request with this Idempotency-Key was answered "
                "with an event stream, which cannot be replayed; use a new key to run it again",
            )
            content_type = "application/json"
        self.db.execute(
            "UPDATE idempotency SET status = ?, content_type = ?, body = ? WHERE tenant_id = ? AND key = ?",
            (status, content_type, body, *where),
        )

    async def _seen(self, send: Send, row: dict[str, Any], fingerprint: str) -> None:
        if row["fingerprint"] != fingerprint:
            await self._answer(
                send,
                *_json_answer(
                    422,
                    ErrorCode.IDEMPOTENCY_KEY_REUSED,
                    "this Idempotency-Key was used for another request within 24 h",
                ),
            )
        elif row["status"] is None:
            message = "the first request with this Idempotency-Key is still running; retry later"
            await self._answer(send, *_json_answer(409, ErrorCode.CONFLICT, message))
        else:
            await self._answer(
                send, int(row["status"]), bytes(row["body"] or b""), row["content_type"], replayed=True
            )

    @staticmethod
    async def _answer(
        send: Send,
        status: int,
        body: bytes,
        content_type: str | None = "application/json",
        *,
        replayed: bool = False,
    ) -> None:
        headers = [(b"content-length", str(len(body)).encode())]
        if content_type:
            headers.append((b"content-type", content_type.encode("latin-1")))
        if replayed:
            headers.append((b"idempotent-replayed", b"true"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` (already read) first, then reads on."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


def install(app: FastAPI) -> None:
    """Create the ``idempotency`` table (a section of its own) and wrap ``app`` in the middleware."""
    db: Database = app.state.db
    db.migrate_section("idempotency", SCHEMA)
    app.add_middleware(IdempotencyMiddleware, db=db)
