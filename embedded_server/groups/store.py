"""Host groups: rows in ``host_groups`` and ``host_group_members`` (the section's own migrations), tag
queries over labels, and the fan-out records (``fanouts``).

A ``tag_query`` group has no member rows: its members are the tenant's hosts whose labels match its
query, evaluated each time the group is used, so a host that gains a label joins at once.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import Group, GroupCreate, GroupUpdate, Host, format_timestamp, utcnow

from ..db import Database, from_row
from ..errors import ApiProblem
from ..hosts.tags import tags_of
from ..ids import new_id

MIGRATIONS = [
    """
    CREATE TABLE host_groups (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        tenant_id TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT,
        icon TEXT,
        color TEXT,
        kind TEXT NOT NULL,
        tag_query TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (tenant_id, name)
    );
    CREATE TABLE host_group_members (
        group_id TEXT NOT NULL,
        host_id TEXT NOT NULL,
        added_at TEXT NOT NULL,
        PRIMARY KEY (group_id, host_id)
    );
    CREATE TABLE fanouts (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        tenant_id TEXT NOT NULL,
        group_id TEXT,
        command TEXT NOT NULL,
        status TEXT NOT NULL,
        batch_size INTEGER,
        stop_on_failure INTEGER NOT NULL DEFAULT 0,
        members TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX fanouts_by_tenant ON fanouts (tenant_id, seq)
    """
]

MAX_GROUPS = 1000  # per tenant
KEPT_FANOUTS = 200  # fan-out records kept per tenant (older ones are dropped; their jobs stay)


def _now() -> str:
    return format_timestamp(utcnow())


def matches(query: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a host with ``labels`` matches a tag query (``{"and"|"or": [tag | query, ...]}``).

    A tag ``k=v`` needs the label ``k`` with the value ``v``; a bare ``k`` needs the label ``k`` (any
    value). ``{}`` matches nothing, ``{"and": []}`` everything.
    """
    if not query:
        return False
    op, items = next(iter(query.items()))
    results = ((_has_tag(item, labels) if isinstance(item, str) else matches(item, labels)) for item in items)
    return all(results) if op == "and" else any(results)


def _has_tag(tag: str, labels: dict[str, str]) -> bool:
    key, sep, value = tag.partition("=")
    return key in labels and (not sep or labels[key] == value)


def member_json(host: Host) -> dict[str, Any]:
    """A resolved member as MIOSA's Python SDK reads it (``id``, ``name``, ``state``, ``tags`` …), with
    our host's ``status`` and ``labels`` beside."""
    agent = host.agent
    return {
        "id": host.id,
        "name": host.name,
        "os_kind": agent.os if agent else None,
        "arch": agent.arch if agent else None,
        "state": host.status,
        "status": host.status,
        "tags": tags_of(host.labels),
        "labels": host.labels,
        "region": host.region,
        "last_heartbeat": format_timestamp(host.last_seen_at) if host.last_seen_at else None,
        "agent_version": agent.agent_version if agent else None,
    }


class GroupStore:
    """The tenants' host groups and fan-out records."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate_section("groups", MIGRATIONS)

    # --- groups -----------------------------------------------------------------------------------

    def row(self, tenant_id: str, group_id: str) -> dict[str, Any]:
        """The tenant's group row, or 404 NOT_FOUND (another tenant's too)."""
        row = self.db.one("SELECT * FROM host_groups WHERE id = ? AND tenant_id = ?", (group_id, tenant_id))
        if row is None:
            raise ApiProblem(404, ErrorCode.NOT_FOUND, f"group {group_id} not found")
        return row

    def by_name(self, tenant_id: str, name: str) -> dict[str, Any] | None:
        """The tenant's group called ``name``, or None."""
        return self.db.one("SELECT * FROM host_groups WHERE tenant_id = ? AND name = ?", (tenant_id, name))

    def group(self, row: dict[str, Any], member_count: int | None = None) -> Group:
        """The API's Group of a row (``member_count`` resolved when not given)."""
        count = len(self.members(row)) if member_count is None else member_count
        return from_row(Group, row, member_count=count)

    def list_groups(self, tenant_id: str) -> list[Group]:
        """The tenant's groups, oldest first, each with its member count."""
        rows = self.db.all("SELECT * FROM host_groups WHERE tenant_id = ? ORDER BY seq", (tenant_id,))
        if not rows:
            return []
        hosts = self._hosts(tenant_id)
        explicit = self._explicit_counts(tenant_id)
        return [
            self.group(
                row,
                explicit.get(row["id"], 0)
                if row["kind"] == "explicit"
                else sum(matches(json.loads(row["tag_query"]), h.labels) for h in hosts),
            )
            for row in rows
        ]

    def create(self, tenant_id: str, spec: GroupCreate) -> dict[str, Any]:
        """Store a new group (409 CONFLICT: the name is taken); returns its row."""
        count = self.db.one("SELECT COUNT(*) AS n FROM host_groups WHERE tenant_id = ?", (tenant_id,))
        if count and count["n"] >= MAX_GROUPS:
            raise ApiProblem(409, ErrorCode.CONFLICT, f"a tenant has at most {MAX_GROUPS} groups")
        now = _now()
        row: dict[str, Any] = {
            "id": new_id("group"),
            "tenant_id": tenant_id,
            "name": spec.name,
            "description": spec.description,
            "icon": spec.icon,
            "color": spec.color,
            "kind": spec.kind,
            "tag_query": spec.tag_query or {},
            "created_at": now,
            "updated_at": now,
        }
        with self.db.transaction():
            self._insert_named(row)
            if spec.host_ids:
                self._add(tenant_id, row, spec.host_ids)
        return self.row(tenant_id, row["id"])

    def update(self, row: dict[str, Any], change: GroupUpdate) -> dict[str, Any]:
        """Apply the fields ``change`` sent; returns the new row."""
        values = {name: getattr(change, name) for name in change.model_fields_set}
        for name in ("name", "kind", "tag_query"):
            if name in values and values[name] is None:
                raise ApiProblem(400, ErrorCode.VALIDATION_ERROR, f"{name}: must not be null")
        if values:
            values["updated_at"] = _now()
            try:
                self.db.update("host_groups", row["id"], values)
            except sqlite3.IntegrityError:
                raise ApiProblem(
                    409, ErrorCode.CONFLICT, f"a group called {values['name']!r} exists"
                ) from None
        return self.row(row["tenant_id"], row["id"])

    def delete(self, row: dict[str, Any]) -> None:
        """Remove the group and its member list (its fan-out records stay)."""
        with self.db.transaction():
            self.db.execute("DELETE FROM host_group_members WHERE group_id = ?", (row["id"],))
            self.db.execute("DELETE FROM host_groups WHERE id = ?", (row["id"],))

    def add_members(self, row: dict[str, Any], host_ids: list[str]) -> list[str]:
        """Add the tenant's hosts to an explicit group; returns the IDs added (present ones too).

        Raises:
            ApiProblem: 409 CONFLICT, a ``tag_query`` group; 404 NOT_FOUND, a host that is not the
                tenant's (nothing is added then).
        """
        with self.db.transaction():
            return self._add(row["tenant_id"], row, host_ids)

    def remove_member(self, row: dict[str, Any], host_id: str) -> None:
        """Remove a host from an explicit group (a host that is no member: 404)."""
        self._explicit_only(row)
        cursor = self.db.execute(
            "DELETE FROM host_group_members WHERE group_id = ? AND host_id = ?", (row["id"], host_id)
        )
        if cursor.rowcount == 0:
            raise ApiProblem(404, ErrorCode.NOT_FOUND, f"host {host_id} is not a member of {row['id']}")

    def members(self, row: dict[str, Any]) -> list[Host]:
        """The group's hosts now: its member list, or the hosts its tag query matches (by name)."""
        if row["kind"] == "explicit":
            rows = self.db.all(
                "SELECT h.* FROM hosts h JOIN host_group_members m ON m.host_id = h.id"
                " WHERE m.group_id = ? AND h.tenant_id = ? ORDER BY h.name, h.seq",
                (row["id"], row["tenant_id"]),
            )
            return [from_row(Host, r) for r in rows]
        query = json.loads(row["tag_query"] or "{}")
        return [host for host in self._hosts(row["tenant_id"]) if matches(query, host.labels)]

    def select(self, tenant_id: str, host_ids: list[str] | None, query: dict[str, Any] | None) -> list[Host]:
        """The tenant's hosts named by ``host_ids`` (in that order; another tenant's is 404) or matching
        ``query`` (by name): the members of an ad-hoc fan-out."""
        if query is not None:
            return [host for host in self._hosts(tenant_id) if matches(query, host.labels)]
        by_id = {host.id: host for host in self._hosts(tenant_id)}
        missing = [host_id for host_id in host_ids or [] if host_id not in by_id]
        if missing:
            raise ApiProblem(404, ErrorCode.NOT_FOUND, f"host {missing[0]} not found")
        return [by_id[host_id] for host_id in dict.fromkeys(host_ids or [])]

    # --- helpers ----------------------------------------------------------------------------------

    def _insert_named(self, row: dict[str, Any]) -> None:
        try:
            self.db.insert("host_groups", row)
        except sqlite3.IntegrityError:
            raise ApiProblem(409, ErrorCode.CONFLICT, f"a group called {row['name']!r} exists") from None

    def _explicit_only(self, row: dict[str, Any]) -> None:
        if row["kind"] != "explicit":
            message = f"group {row['id']} is a tag_query group: its members are the hosts its query matches"
            raise ApiProblem(409, ErrorCode.CONFLICT, message)

    def _add(self, tenant_id: str, row: dict[str, Any], host_ids: list[str]) -> list[str]:
        self._explicit_only(row)
        wanted = list(dict.fromkeys(host_ids))
        known = {
            r["id"]
            for r in self.db.all(
                f"SELECT id FROM hosts WHERE tenant_id = ? AND id IN ({','.join('?' * len(wanted))})",
                (tenant_id, *wanted),
            )
        }
        missing = [host_id for host_id in wanted if host_id not in known]
        if missing:
            raise ApiProblem(404, ErrorCode.NOT_FOUND, f"host {missing[0]} not found")
        now = _now()
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO host_group_members (group_id, host_id, added_at) VALUES (?, ?, ?)",
            [(row["id"], host_id, now) for host_id in wanted],
        )
        self.db.execute("UPDATE host_groups SET updated_at = ? WHERE id = ?", (now, row["id"]))
        return wanted

    def _hosts(self, tenant_id: str) -> list[Host]:
        rows = self.db.all("SELECT * FROM hosts WHERE tenant_id = ? ORDER BY name, seq", (tenant_id,))
        return [from_row(Host, r) for r in rows]

    def _explicit_counts(self, tenant_id: str) -> dict[str, int]:
        rows = self.db.all(
            "SELECT m.group_id AS id, COUNT(*) AS n FROM host_group_members m JOIN hosts h ON h.id = m.host_id"
            " WHERE h.tenant_id = ? GROUP BY m.group_id",
            (tenant_id,),
        )
        return {r["id"]: int(r["n"]) for r in rows}

    # --- fan-out records --------------------------------------------------------------------------

    def save_fanout(self, record: dict[str, Any]) -> None:
        """Insert or replace a fan-out record (``members`` a list); old records beyond
        :data:`KEPT_FANOUTS` of the tenant are dropped."""
        row = {**record, "members": json.dumps(record["members"]), "updated_at": _now()}
        row["stop_on_failure"] = int(bool(row["stop_on_failure"]))
        names = ", ".join(row)
        marks = ", ".join("?" * len(row))
        self.db.execute(
            f"INSERT INTO fanouts ({names}) VALUES ({marks}) ON CONFLICT(id) DO UPDATE SET"
            " status = excluded.status, members = excluded.members, updated_at = excluded.updated_at",
            tuple(row.values()),
        )
        self.db.execute(
            "DELETE FROM fanouts WHERE tenant_id = ? AND seq <= (SELECT seq FROM fanouts WHERE tenant_id = ?"
            " ORDER BY seq DESC LIMIT 1 OFFSET ?)",
            (record["tenant_id"], record["tenant_id"], KEPT_FANOUTS),
        )

    def fanout_row(self, tenant_id: str, fanout_id: str) -> dict[str, Any]:
        """The tenant's fan-out record (``members`` decoded), or 404 NOT_FOUND."""
        row = self.db.one("SELECT * FROM fanouts WHERE id = ? AND tenant_id = ?", (fanout_id, tenant_id))
        if row is None:
            raise ApiProblem(404, ErrorCode.NOT_FOUND, f"fan-out {fanout_id} not found")
        row.pop("seq", None)
        row["members"] = json.loads(row["members"])
        row["stop_on_failure"] = bool(row["stop_on_failure"])
        return row

    def fanout_ids(self, tenant_id: str, limit: int) -> list[str]:
        """The tenant's newest fan-out IDs."""
        rows = self.db.all(
            "SELECT id FROM fanouts WHERE tenant_id = ? ORDER BY seq DESC LIMIT ?", (tenant_id, limit)
        )
        return [r["id"] for r in rows]

    def interrupt_running(self) -> None:
        """Server start: fan-outs a previous run left running lose their members not yet started."""
        for row in self.db.all("SELECT id, tenant_id FROM fanouts WHERE status = 'running'"):
            record = self.fanout_row(row["tenant_id"], row["id"])
            for member in record["members"]:
                if member.get("status") == "pending":
                    member.update(status="skipped", error="not started: the control plane restarted")
            record["status"] = "interrupted"
            self.save_fanout(record)
