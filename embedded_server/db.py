"""SQLite storage (WAL): one connection per process, schema migrations keyed by ``user_version``.

Every statement is a quick indexed lookup, so callers run them inline on the event loop. Other
processes (``oc-server tenant add``, tests) may write the same file concurrently; WAL plus a busy
timeout makes that safe.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel

# The core's and the first sections' tables. Each entry moves the schema one version up; never edit a
# released entry, append a new one. A new section keeps its tables to itself: Database.migrate_section.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE tenants (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id TEXT NOT NULL REFERENCES tenants(id),
        token_hash TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE hosts (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        tenant_id TEXT NOT NULL REFERENCES tenants(id),
        name TEXT NOT NULL,
        region TEXT,
        labels TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL,
        host_key_hash TEXT NOT NULL UNIQUE,
        agent TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        status_changed_at TEXT,
        last_seen_at TEXT
    );
    CREATE INDEX hosts_by_tenant ON hosts(tenant_id, seq);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id TEXT NOT NULL,
        host_id TEXT,
        type TEXT NOT NULL,
        data TEXT NOT NULL,
        timestamp TEXT NOT NULL
    );
    CREATE INDEX events_by_tenant ON events(tenant_id, id);
    CREATE INDEX events_by_host ON events(host_id, id);
    """,
    """
    CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        tenant_id TEXT NOT NULL,
        host_id TEXT NOT NULL,
        status TEXT NOT NULL,
        command TEXT NOT NULL,
        args TEXT NOT NULL DEFAULT '[]',
        env TEXT NOT NULL DEFAULT '[]',
        cwd TEXT,
        timeout INTEGER NOT NULL,
        exit_code INTEGER,
        error TEXT,
        truncated INTEGER NOT NULL DEFAULT 0,
        output_bytes INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        started_at TEXT,
        completed_at TEXT
    );
    CREATE INDEX jobs_by_host ON jobs(host_id, seq);
    CREATE INDEX jobs_unfinished ON jobs(status) WHERE status IN ('queued', 'running')
    """,
]


# The API tokens' columns added after the core's first release, versioned on their own (as a section's
# tables are) so that they never compete with the core's numbering.
TOKEN_MIGRATIONS: list[str] = [
    "ALTER TABLE api_tokens ADD COLUMN read_only INTEGER NOT NULL DEFAULT 0",  # issue 17: read-only scope
]


class Database:
    """A thin wrapper over one sqlite3 connection with row dicts and explicit transactions."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists()
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
        if fresh:
            os.chmod(path, 0o600)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.migrate()

    def migrate(self) -> None:
        """Run the core migrations this database has not seen yet (``PRAGMA user_version``), then the
        API tokens' own (:data:`TOKEN_MIGRATIONS`)."""
        with self.transaction():
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                self._run_script(script)
                self.conn.execute(f"PRAGMA user_version = {number}")
        self.migrate_section("api_tokens", TOKEN_MIGRATIONS)

    def migrate_section(self, section: str, scripts: list[str]) -> None:
        """Bring a section's own tables up to date: ``scripts[i]`` moves ``section`` from version ``i``
        to ``i + 1`` (versions kept in ``section_schema``). A section calls it from its ``install``, so a
        new section adds its tables without touching :data:`MIGRATIONS`; never edit a released script,
        append a new one."""
        with self.transaction():
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS section_schema (section TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            row = self.conn.execute(
                "SELECT version FROM section_schema WHERE section = ?", (section,)
            ).fetchone()
            version = row[0] if row else 0
            for number, script in enumerate(scripts[version:], start=version + 1):
                self._run_script(script)
                self.conn.execute(
                    "INSERT INTO section_schema (section, version) VALUES (?, ?)"
                    " ON CONFLICT(section) DO UPDATE SET version = excluded.version",
                    (section, number),
                )

    def _run_script(self, script: str) -> None:
        # Statement by statement: executescript() would commit, breaking the transaction.
        for statement in script.split(";"):
            if statement.strip():
                self.conn.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``: takes the write lock up front, so concurrent writers wait."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        """Run one statement."""
        return self.conn.execute(sql, params)

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        """The first row of a query as a dict, or None."""
        row = self.conn.execute(sql, params).fetchone()
        return dict(row) if row else None

    def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Every row of a query as dicts."""
        return [dict(row) for row in self.conn.execute(sql, params).fetchall()]

    def insert(self, table: str, values: dict[str, Any]) -> sqlite3.Cursor:
        """INSERT one row of ``values`` (encoded with :func:`to_row`) into ``table``."""
        row = to_row(values)
        names = ", ".join(row)
        marks = ", ".join("?" * len(row))
        return self.conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(row.values()))

    def update(self, table: str, row_id: str, values: dict[str, Any]) -> None:
        """UPDATE the ``table`` row whose ``id`` is ``row_id`` with ``values`` (encoded with :func:`to_row`)."""
        row = to_row(values)
        assignments = ", ".join(f"{name} = ?" for name in row)
        self.conn.execute(f"UPDATE {table} SET {assignments} WHERE id = ?", (*row.values(), row_id))

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


# --- rows <-> models ---------------------------------------------------------------------------------
# One codec for every store: a model's dict, list and nested-model fields are JSON text in their
# column, booleans are 0/1, timestamps the UTC ISO 8601 strings the models parse and format.

M = TypeVar("M", bound=BaseModel)

_JSON_FIELDS: dict[type[BaseModel], frozenset[str]] = {}


def _is_json(annotation: Any) -> bool:
    if get_origin(annotation) in (Union, UnionType):
        return any(_is_json(arg) for arg in get_args(annotation) if arg is not type(None))
    origin = get_origin(annotation) or annotation
    return origin in (dict, list) or (isinstance(origin, type) and issubclass(origin, BaseModel))


def json_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields of ``model`` that are stored as JSON text."""
    names = _JSON_FIELDS.get(model)
    if names is None:
        names = frozenset(name for name, info in model.model_fields.items() if _is_json(info.annotation))
        _JSON_FIELDS[model] = names
    return names


def from_row(model: type[M], row: dict[str, Any], **values: Any) -> M:
    """A ``model`` from a database row: its columns that are fields of the model (others, such as
    ``seq`` or a key hash, are left out), JSON columns decoded; ``values`` add or replace fields."""
    encoded = json_fields(model)
    fields: dict[str, Any] = {}
    for name in model.model_fields:
        if name in values:
            fields[name] = values[name]
        elif name in row:
            value = row[name]
            fields[name] = json.loads(value) if name in encoded and isinstance(value, str) else value
    return model.model_validate(fields)


def to_row(values: dict[str, Any]) -> dict[str, Any]:
    """Column values for an INSERT or UPDATE: dicts, lists and models as JSON text, booleans as 0/1."""
    row: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, BaseModel):
            value = value.model_dump_json()
        elif isinstance(value, dict | list):
            value = json.dumps(value)
        elif isinstance(value, bool):
            value = int(value)
        row[name] = value
    return row
