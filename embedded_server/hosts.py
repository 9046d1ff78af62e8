"""Host records and their lifecycle. Every change is stored first, then announced as an event."""

from __future__ import annotations

import json
from typing import Any

from oc_tui.api.models import (
    AgentInfo,
    Host,
    HostCreate,
    HostRegistration,
    HostUpdate,
    format_timestamp,
    utcnow,
)

from .auth import HOST_KEY_PREFIX
from .crypto import hash_secret, new_token
from .db import Database
from .events import EventLog
from .ids import new_id

LAST_SEEN_WRITE_EVERY = 30.0  # seconds: heartbeats refresh last_seen_at in the DB at most this often


def host_model(row: dict[str, Any]) -> Host:
    agent = json.loads(row["agent"]) if row["agent"] else None
    return Host(
        id=row["id"],
        name=row["name"],
        region=row["region"],
        status=row["status"],
        tenant_id=row["tenant_id"],
        labels=json.loads(row["labels"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        status_changed_at=row["status_changed_at"],
        last_seen_at=row["last_seen_at"],
        agent=AgentInfo(**agent) if agent else None,
    )


def host_json(host: Host) -> dict[str, Any]:
    return host.model_dump(mode="json")


class HostStore:
    def __init__(self, db: Database, events: EventLog) -> None:
        self.db = db
        self.events = events

    def get(self, tenant_id: str, host_id: str) -> Host | None:
        row = self.db.one("SELECT * FROM hosts WHERE id = ? AND tenant_id = ?", (host_id, tenant_id))
        return host_model(row) if row else None

    def row(self, host_id: str) -> dict[str, Any] | None:
        return self.db.one("SELECT * FROM hosts WHERE id = ?", (host_id,))

    def page(self, tenant_id: str, page: int, per_page: int) -> tuple[list[Host], int]:
        """Newest registration first (ties impossible: ``seq`` is the insertion order)."""
        total = self.db.one("SELECT COUNT(*) AS n FROM hosts WHERE tenant_id = ?", (tenant_id,))
        rows = self.db.all(
            "SELECT * FROM hosts WHERE tenant_id = ? ORDER BY seq DESC LIMIT ? OFFSET ?",
            (tenant_id, per_page, (page - 1) * per_page),
        )
        return [host_model(r) for r in rows], int(total["n"] if total else 0)

    def create(self, tenant_id: str, spec: HostCreate) -> HostRegistration:
        host_id, host_key, now = new_id("host"), new_token(HOST_KEY_PREFIX), format_timestamp(utcnow())
        self.db.execute(
            "INSERT INTO hosts (id, tenant_id, name, region, labels, status, host_key_hash, created_at,"
            " updated_at, status_changed_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
            (
                host_id,
                tenant_id,
                spec.name,
                spec.region,
                json.dumps(spec.labels),
                hash_secret(host_key),
                now,
                now,
                now,
            ),
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
            fields["labels"] = json.dumps(change.labels)
        current = {"name": host.name, "region": host.region, "labels": json.dumps(host.labels)}
        fields = {k: v for k, v in fields.items() if current[k] != v}
        if not fields:
            return host
        fields["updated_at"] = format_timestamp(utcnow())
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self.db.execute(f"UPDATE hosts SET {assignments} WHERE id = ?", (*fields.values(), host.id))
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
            fields["agent"] = json.dumps(agent)
        if row["status"] != status:
            fields.update(status=status, status_changed_at=now, updated_at=now)
        if fields:
            assignments = ", ".join(f"{name} = ?" for name in fields)
            self.db.execute(f"UPDATE hosts SET {assignments} WHERE id = ?", (*fields.values(), host_id))
        if row["status"] != status:
            data = {"status": status, "previous": row["status"]}
            self.events.append(row["tenant_id"], host_id, "status_change", data)

    def touch(self, host_id: str, seen_at: str) -> None:
        self.db.execute("UPDATE hosts SET last_seen_at = ? WHERE id = ?", (seen_at, host_id))

    def mark_stale_online_offline(self) -> None:
        """At start no agent is connected yet: hosts a previous run left online are offline now."""
        for row in self.db.all("SELECT id FROM hosts WHERE status = 'online'"):
            self.set_status(row["id"], "offline")
