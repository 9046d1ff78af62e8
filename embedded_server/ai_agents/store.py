"""AI agent sessions in the database: the sessions, their transcripts (the chat messages the model
sees), their numbered events (what the SSE stream serves, ``id:`` = the event's number) and each
tenant's model configuration.

Everything a session needs to continue lives here, so a control-plane restart resumes a session from
its transcript (``loop.py``).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from oc_tui.api.models import AgentSession, format_timestamp, utcnow

from ..db import Database, from_row
from ..ids import new_id

FINAL = ("completed", "failed", "cancelled")
OWNER = "session"  # session events carry ``session_id``

MIGRATIONS = [
    """
    CREATE TABLE ai_agent_sessions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        tenant_id TEXT NOT NULL,
        host_id TEXT NOT NULL,
        task TEXT NOT NULL,
        status TEXT NOT NULL,
        model_id TEXT,
        max_turns INTEGER NOT NULL,
        turns_used INTEGER NOT NULL DEFAULT 0,
        approval INTEGER NOT NULL DEFAULT 0,
        tools TEXT NOT NULL DEFAULT '[]',
        context TEXT NOT NULL DEFAULT '{}',
        budget TEXT NOT NULL DEFAULT '{}',
        tokens_used INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        error TEXT,
        pending_approval TEXT,
        current_tool TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        started_at TEXT,
        completed_at TEXT
    );
    CREATE INDEX ai_agent_sessions_host ON ai_agent_sessions (host_id, seq);
    CREATE TABLE ai_agent_messages (
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        message TEXT NOT NULL,
        PRIMARY KEY (session_id, seq)
    );
    CREATE TABLE ai_agent_events (
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        PRIMARY KEY (session_id, seq)
    );
    CREATE TABLE ai_agent_config (
        tenant_id TEXT PRIMARY KEY,
        base_url TEXT NOT NULL,
        model TEXT NOT NULL,
        key_secret TEXT NOT NULL,
        streaming INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    );
    """
]

JSON_COLUMNS = ("tools", "context", "budget", "pending_approval", "current_tool")


def now() -> str:
    """The current time as the API writes it."""
    return format_timestamp(utcnow())


@dataclass(frozen=True)
class ModelConfig:
    """Where a tenant's sessions get their model: an OpenAI-compatible ``base_url``, the default
    ``model``, the name of the tenant secret with the API key (``key_secret``, "" = none needed) and
    whether answers are read as a stream (``streaming``)."""

    base_url: str
    model: str
    key_secret: str
    streaming: bool = True

    @property
    def configured(self) -> bool:
        """Whether sessions can run: a base URL and a model are set."""
        return bool(self.base_url and self.model)

    def public(self) -> dict[str, Any]:
        """The configuration as ``GET /agent/config`` answers it."""
        return {
            "base_url": self.base_url,
            "model": self.model,
            "api_key_secret": self.key_secret,
            "streaming": self.streaming,
            "configured": self.configured,
        }


class SessionStore:
    """The AI agent sessions of every tenant, and a change signal per session for live readers.

    Args:
        db: the database (its ``ai_agent_*`` tables are made here).
        default: the model configuration of tenants that set none (server flags and environment).
    """

    def __init__(self, db: Database, default: ModelConfig) -> None:
        db.migrate_section("ai_agents", MIGRATIONS)
        self.db = db
        self.default = default
        self._changed: dict[str, asyncio.Event] = {}

    # --- configuration ---------------------------------------------------------------------------------

    def config(self, tenant_id: str) -> ModelConfig:
        """The tenant's model configuration (the server's default when it set none)."""
        row = self.db.one("SELECT * FROM ai_agent_config WHERE tenant_id = ?", (tenant_id,))
        if row is None:
            return self.default
        return ModelConfig(row["base_url"], row["model"], row["key_secret"], bool(row["streaming"]))

    def set_config(self, tenant_id: str, config: ModelConfig) -> None:
        """Store the tenant's model configuration."""
        self.db.execute(
            "INSERT INTO ai_agent_config (tenant_id, base_url, model, key_secret, streaming, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(tenant_id) DO UPDATE SET base_url = excluded.base_url,"
            " model = excluded.model, key_secret = excluded.key_secret, streaming = excluded.streaming,"
            " updated_at = excluded.updated_at",
            (tenant_id, config.base_url, config.model, config.key_secret, int(config.streaming), now()),
        )

    # --- sessions --------------------------------------------------------------------------------------

    def create(self, tenant_id: str, host_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Store a new ``pending`` session; ``fields``: task, model_id, max_turns, approval, tools,
        context, budget. Returns its row."""
        stamp = now()
        values: dict[str, Any] = {
            "id": new_id("session"),
            "tenant_id": tenant_id,
            "host_id": host_id,
            "status": "pending",
            "created_at": stamp,
            "updated_at": stamp,
            **fields,
        }
        self.db.insert("ai_agent_sessions", values)
        row = self.row(host_id, values["id"])
        assert row is not None
        return row

    def row(self, host_id: str, session_id: str) -> dict[str, Any] | None:
        """The session's row (JSON columns decoded) if it is ``host_id``'s, else None."""
        row = self.db.one(
            "SELECT * FROM ai_agent_sessions WHERE id = ? AND host_id = ?", (session_id, host_id)
        )
        return _decoded(row) if row else None

    def get(self, session_id: str) -> dict[str, Any] | None:
        """The session's row (JSON columns decoded), whoever's it is."""
        row = self.db.one("SELECT * FROM ai_agent_sessions WHERE id = ?", (session_id,))
        return _decoded(row) if row else None

    def update(self, session_id: str, **values: Any) -> None:
        """Change some of the session's columns (``updated_at`` follows)."""
        self.db.update("ai_agent_sessions", session_id, {**values, "updated_at": now()})

    def unfinished(self) -> list[dict[str, Any]]:
        """Every session that is pending or running (a restart resumes them)."""
        rows = self.db.all(
            "SELECT * FROM ai_agent_sessions WHERE status IN ('pending', 'running') ORDER BY seq"
        )
        return [_decoded(row) for row in rows]

    def running(self, tenant_id: str) -> int:
        """How many of the tenant's sessions are pending or running."""
        row = self.db.one(
            "SELECT COUNT(*) AS n FROM ai_agent_sessions WHERE tenant_id = ? AND status IN ('pending', 'running')",
            (tenant_id,),
        )
        return int(row["n"] if row else 0)

    def page(self, host_id: str, page: int, per_page: int) -> tuple[list[AgentSession], int]:
        """One page of the host's sessions, newest first, and the total."""
        total = self.db.one("SELECT COUNT(*) AS n FROM ai_agent_sessions WHERE host_id = ?", (host_id,))
        rows = self.db.all(
            "SELECT * FROM ai_agent_sessions WHERE host_id = ? ORDER BY seq DESC LIMIT ? OFFSET ?",
            (host_id, per_page, (page - 1) * per_page),
        )
        return [session_model(_decoded(row)) for row in rows], int(total["n"] if total else 0)

    # --- transcript --------------------------------------------------------------------------------------

    def messages(self, session_id: str) -> list[dict[str, Any]]:
        """The session's chat messages, in order."""
        rows = self.db.all(
            "SELECT message FROM ai_agent_messages WHERE session_id = ? ORDER BY seq", (session_id,)
        )
        return [json.loads(row["message"]) for row in rows]

    def add_message(self, session_id: str, message: dict[str, Any]) -> None:
        """Append a chat message to the session's transcript."""
        self.db.execute(
            "INSERT INTO ai_agent_messages (session_id, seq, message) VALUES (?, (SELECT COALESCE(MAX(seq), 0)"
            " + 1 FROM ai_agent_messages WHERE session_id = ?), ?)",
            (session_id, session_id, json.dumps(message)),
        )

    # --- events ------------------------------------------------------------------------------------------

    def add_event(self, session_id: str, type_: str, data: dict[str, Any]) -> int:
        """Append an event (numbered from 1) and wake the session's live readers; returns its number."""
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM ai_agent_events WHERE session_id = ?", (session_id,)
            ).fetchone()
            seq = int(row[0])
            conn.execute(
                "INSERT INTO ai_agent_events (session_id, seq, type, data, timestamp) VALUES (?, ?, ?, ?, ?)",
                (session_id, seq, type_, json.dumps(data, ensure_ascii=False), now()),
            )
        self.notify(session_id)
        return seq

    def events(self, session_id: str, after: int, limit: int = 200) -> list[dict[str, Any]]:
        """Up to ``limit`` events numbered after ``after``: rows ``{seq, type, data (JSON text), timestamp}``."""
        return self.db.all(
            "SELECT seq, type, data, timestamp FROM ai_agent_events WHERE session_id = ? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            (session_id, after, limit),
        )

    def changed(self, session_id: str) -> asyncio.Event:
        """The event set at the session's next change (take it, check the state, then wait on it)."""
        return self._changed.setdefault(session_id, asyncio.Event())

    def notify(self, session_id: str) -> None:
        """Wake whoever waits for the session's next change."""
        event = self._changed.pop(session_id, None)
        if event is not None:
            event.set()


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    for name in JSON_COLUMNS:
        if isinstance(row.get(name), str):
            row[name] = json.loads(row[name])
    return row


def session_model(row: dict[str, Any]) -> AgentSession:
    """The API's session from its row, with the fields MIOSA's Python SDK reads beside the
    reference's (``session_id``, ``model``, ``tools``, ``started_at``, ``ended_at``, ``result_summary``)
    and ours (``approval``, ``pending_approval``, ``tokens_used``, ``context``, ``budget``)."""
    extra = {
        "approval": bool(row["approval"]),
        "session_id": row["id"],
        "model": row["model_id"],
        "ended_at": row["completed_at"],
        "result_summary": row["result"],
    }
    return from_row(AgentSession, {**row, **extra})
