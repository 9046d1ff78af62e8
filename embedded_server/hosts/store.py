"""Host records and their lifecycle. Every change is stored first, then announced as an event."""

from __future__ import annotations

import json
from typing import Any

from oc_tui.api.models import (
    Host,
    HostCreate,
    HostRegistration,
    HostUpdate,
    format_timestamp,
    utcnow,
)

from ..auth import HOST_KEY_PREFIX, host_for_key
from ..crypto import hash_secret, new_token
from ..db import Database, from_row, to_row
from ..identity import fingerprint
from ..ids import new_id
from .events import EventLog

IDENTITY_SCHEMA = [
    """
    CREATE TABLE host_identities (
        host_id TEXT PRIMARY KEY REFERENCES hosts(id),
        public_key TEXT NOT NULL,
        enrolled_at TEXT NOT NULL
    )
    """
]
"""The identity each host's agent enrolled with (embedded_server/identity.py): its Ed25519 public key."""


def host_json(host: Host) -> dict[str, Any]:
    """The host as the API shows it (JSON-ready)."""
    return host.model_dump(mode="json")


class HostStore:
    """Host records: registration, changes, status; every change is announced on ``events``."""

    def __init__(self, db: Database, events: EventLog) -> None:
        self.db = db
        self.events = events
        db.migrate_section("host_identity", IDENTITY_SCHEMA)

    def get(self, tenant_id: str, host_id: str) -> Host | None:
        """The tenant's host, or None (also when it is another tenant's)."""
        row = self.db.one("SELECT * FROM hosts WHERE id = ? AND tenant_id = ?", (host_id, tenant_id))
        return from_row(Host, row) if row else None

    def row(self, host_id: str) -> dict[str, Any] | None:
        """The host's row, whoever's it is, or None."""
        return self.db.one("SELECT * FROM hosts WHERE id = ?", (host_id,))

    def by_key(self, host_key: str) -> dict[str, Any] | None:
        """The host row a host key belongs to (revoked ones included: the caller refuses those)."""
        return host_for_key(self.db, host_key)

    def page(self, tenant_id: str, page: int, per_page: int) -> tuple[list[Host], int]:
        """Newest registration first (ties impossible: ``seq`` is the insertion order)."""
        total = self.db.one("SELECT COUNT(*) AS n FROM hosts WHERE tenant_id = ?", (tenant_id,))
        rows = self.db.all(
            "SELECT * FROM hosts WHERE tenant_id = ? ORDER BY seq DESC LIMIT ? OFFSET ?",
            (tenant_id, per_page, (page - 1) * per_page),
        )
        return [from_row(Host, r) for r in rows], int(total["n"] if total else 0)

    def labels(self, tenant_id: str) -> list[dict[str, str]]:
        """The labels of each of the tenant's hosts."""
        rows = self.db.all("SELECT labels FROM hosts WHERE tenant_id = ?", (tenant_id,))
        return [json.loads(row["labels"] or "{}") for row in rows]

    def create(self, tenant_id: str, spec: HostCreate) -> HostRegistration:
        """Register a ``pending`` host; the answer carries its host key (shown this once)."""
        host_id, host_key, now = new_id("host"), new_token(HOST_KEY_PREFIX), format_timestamp(utcnow())
        self.db.insert(
            "hosts",
            {
                "id": host_id,
                "tenant_id": tenant_id,
                "name": spec.name,
                "region": spec.region,
                "labels": spec.labels,
                "status": "pending",
                "host_key_hash": hash_secret(host_key),
                "created_at": now,
                "updated_at": now,
                "status_changed_at": now,
            },
        )
        host = self.get(tenant_id, host_id)
        assert host is not None
        self.events.append(tenant_id, host_id, "host_registered", {"host": host_json(host)})
        return HostRegistration(**host.model_dump(), host_key=host_key)

    def update(self, host: Host, change: HostUpdate) -> Host:
        """Apply the fields the request set; ``region: null`` clears the region. No change, no event."""
        fields: dict[str, Any] = {}
        if change.name is not None:
            fields["name"] = change.name
        if "region" in change.model_fields_set:
            fields["region"] = change.region
        if change.labels is not None:
            fields["labels"] = change.labels
        current = to_row({"name": host.name, "region": host.region, "labels": host.labels})
        fields = {k: v for k, v in fields.items() if current[k] != to_row({k: v})[k]}
        if not fields:
            return host
        fields["updated_at"] = format_timestamp(utcnow())
        self.db.update("hosts", host.id, fields)
        updated = self.get(host.tenant_id, host.id)
        assert updated is not None
        self.events.append(host.tenant_id, host.id, "host_updated", {"host": host_json(updated)})
        return updated

    def set_status(
        self, host_id: str, status: str, *, agent: dict[str, Any] | None = None, seen_at: str | None = None
    ) -> None:
        """Move a host to ``status`` (revoked is final), noting the time; emits ``status_change``."""
        row = self.row(host_id)
        if row is None or row["status"] == "revoked":
            return
        now = format_timestamp(utcnow())
        fields: dict[str, Any] = {"last_seen_at": seen_at} if seen_at else {}
        if agent is not None:
            fields["agent"] = agent
        if row["status"] != status:
            fields.update(status=status, status_changed_at=now, updated_at=now)
        if fields:
            self.db.update("hosts", host_id, fields)
        if row["status"] != status:
            data = {"status": status, "previous": row["status"]}
            self.events.append(row["tenant_id"], host_id, "status_change", data)

    def purge(self, host: Host) -> None:
        """Delete a (revoked) host and every row of every section that names it (any table with a
        ``host_id`` column; the event log keeps its history), then emit ``host_deleted``."""
        tables = [
            row["name"]
            for row in self.db.all("SELECT name FROM sqlite_master WHERE type = 'table'")
            if row["name"] not in ("hosts", "events")
            and any(
                column["name"] == "host_id" for column in self.db.all(f"PRAGMA table_info({row['name']})")
            )
        ]
        with self.db.transaction() as conn:
            for table in tables:  # names from the schema itself, never from a request
                conn.execute(f"DELETE FROM {table} WHERE host_id = ?", (host.id,))  # noqa: S608
            conn.execute("DELETE FROM hosts WHERE id = ?", (host.id,))
        self.events.append(host.tenant_id, host.id, "host_deleted", {"host": host_json(host)})

    def pin_identity(self, host_id: str, public_key: str, remote_addr: str | None) -> bool:
        """Pin ``public_key`` as the host's identity when it has none (its first connection: an
        ``identity_enrolled`` event); whether ``public_key`` is the host's identity now. Another key
        is refused: an ``identity_refused`` event names where it came from and its fingerprint."""
        row = self.row(host_id)
        if row is None:
            return False
        now = format_timestamp(utcnow())
        inserted = (
            self.db.execute(
                "INSERT OR IGNORE INTO host_identities (host_id, public_key, enrolled_at) VALUES (?, ?, ?)",
                (host_id, public_key, now),
            ).rowcount
            == 1
        )
        pinned = self.db.one("SELECT public_key FROM host_identities WHERE host_id = ?", (host_id,))
        if pinned is None:
            return False
        data = {"fingerprint": fingerprint(public_key), "remote_addr": remote_addr}
        if pinned["public_key"] != public_key:
            self.events.append(row["tenant_id"], host_id, "identity_refused", data)
            return False
        if inserted:
            self.events.append(row["tenant_id"], host_id, "identity_enrolled", data)
        return True

    def touch(self, host_id: str, seen_at: str) -> None:
        """Store the host's last-seen time (no event)."""
        self.db.execute("UPDATE hosts SET last_seen_at = ? WHERE id = ?", (seen_at, host_id))

    def mark_stale_online_offline(self) -> None:
        """At start no agent is connected yet: hosts a previous run left online are offline now."""
        for row in self.db.all("SELECT id FROM hosts WHERE status = 'online'"):
            self.set_status(row["id"], "offline")
