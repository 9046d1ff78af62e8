"""Cluster records: rows in the ``clusters`` table (the section's own migrations); slugs unique across
tenants, since a slug names the cluster's public URL ``/inference/<slug>/v1``."""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import ENGINE_PORTS, ClusterCreate, ClusterEngine, format_timestamp, utcnow

from ..db import Database
from ..errors import ApiProblem
from ..ids import new_id

MIGRATIONS = [
    """
    CREATE TABLE clusters (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        tenant_id TEXT NOT NULL,
        name TEXT NOT NULL,
        slug TEXT NOT NULL UNIQUE,
        model TEXT NOT NULL,
        host_ids TEXT NOT NULL,
        engine_kind TEXT NOT NULL,
        engine_port INTEGER NOT NULL,
        host_ports TEXT NOT NULL,
        status TEXT NOT NULL,
        status_reason TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX clusters_tenant ON clusters (tenant_id, seq)
    """
]

MAX_SLUG = 48


def slugify(name: str) -> str:
    """The URL slug of a cluster name: lower case letters, digits and single dashes (``cluster`` when
    nothing is left)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:MAX_SLUG].strip("-")
    return slug or "cluster"


def _now() -> str:
    return format_timestamp(utcnow())


class ClusterStore:
    """Every tenant's clusters.

    Args:
        db: the database (the ``clusters`` table is migrated here).
    """

    def __init__(self, db: Database) -> None:
        db.migrate_section("clusters", MIGRATIONS)
        self.db = db

    @staticmethod
    def decode(row: dict[str, Any]) -> dict[str, Any]:
        """A row with its JSON columns decoded (``host_ids`` a list, ``host_ports`` a dict)."""
        return {**row, "host_ids": json.loads(row["host_ids"]), "host_ports": json.loads(row["host_ports"])}

    def get(self, tenant_id: str, cluster_id: str) -> dict[str, Any] | None:
        """The tenant's cluster (decoded), or None (another tenant's too)."""
        row = self.db.one("SELECT * FROM clusters WHERE id = ? AND tenant_id = ?", (cluster_id, tenant_id))
        return None if row is None else self.decode(row)

    def by_id(self, cluster_id: str) -> dict[str, Any] | None:
        """Any tenant's cluster by ID (decoded), or None."""
        row = self.db.one("SELECT * FROM clusters WHERE id = ?", (cluster_id,))
        return None if row is None else self.decode(row)

    def by_slug(self, slug: str) -> dict[str, Any] | None:
        """The cluster whose slug is ``slug`` (decoded), or None."""
        row = self.db.one("SELECT * FROM clusters WHERE slug = ?", (slug,))
        return None if row is None else self.decode(row)

    def of_tenant(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's clusters, oldest first (decoded)."""
        rows = self.db.all("SELECT * FROM clusters WHERE tenant_id = ? ORDER BY seq", (tenant_id,))
        return [self.decode(row) for row in rows]

    def running(self) -> list[dict[str, Any]]:
        """Every cluster that routes or is getting ready to (provisioning, active), any tenant."""
        rows = self.db.all("SELECT * FROM clusters WHERE status IN ('provisioning', 'active') ORDER BY seq")
        return [self.decode(row) for row in rows]

    def create(self, tenant_id: str, spec: ClusterCreate, host_ids: list[str]) -> dict[str, Any]:
        """Store a new cluster (``provisioning``) with a unique slug made from its name; returns it.

        Raises:
            ApiProblem: 400 VALIDATION_ERROR a host port names a host that is not in the cluster.
        """
        engine = spec.engine or ClusterEngine()
        ports = dict(spec.host_ports or {})
        stray = sorted(set(ports) - set(host_ids))
        if stray:
            raise ApiProblem(
                400, ErrorCode.VALIDATION_ERROR, f"host_ports names hosts not in host_ids: {', '.join(stray)}"
            )
        if any(not 1 <= port <= 65535 for port in ports.values()):
            raise ApiProblem(400, ErrorCode.VALIDATION_ERROR, "host_ports must be ports 1-65535")
        base = slugify(spec.name)
        now = _now()
        cluster_id = new_id("cluster")
        for n in range(1, 1000):
            slug = base if n == 1 else f"{base}-{n}"
            try:
                self.db.insert(
                    "clusters",
                    {
                        "id": cluster_id,
                        "tenant_id": tenant_id,
                        "name": spec.name,
                        "slug": slug,
                        "model": spec.model,
                        "host_ids": _json(host_ids),
                        "engine_kind": engine.kind,
                        "engine_port": engine.port or ENGINE_PORTS[engine.kind],
                        "host_ports": _json(ports),
                        "status": "provisioning",
                        "status_reason": None,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
            except sqlite3.IntegrityError:
                continue
            break
        else:  # pragma: no cover - a thousand clusters of one name
            raise ApiProblem(409, ErrorCode.CONFLICT, f"too many clusters named {spec.name!r}")
        stored = self.by_id(cluster_id)
        assert stored is not None
        return stored

    def set_status(self, cluster_id: str, status: str, reason: str | None = None) -> bool:
        """Move the cluster to ``status`` (with why, for ``error``); False when it is gone or was
        there already."""
        cursor = self.db.execute(
            "UPDATE clusters SET status = ?, status_reason = ?, updated_at = ? "
            "WHERE id = ? AND (status != ? OR IFNULL(status_reason, '') != IFNULL(?, ''))",
            (status, reason, _now(), cluster_id, status, reason),
        )
        return cursor.rowcount > 0

    def delete(self, cluster_id: str) -> None:
        """Remove the cluster's row."""
        self.db.execute("DELETE FROM clusters WHERE id = ?", (cluster_id,))


def _json(value: Any) -> str:
    return json.dumps(value)
