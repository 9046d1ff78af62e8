"""Tunnel records: rows in the ``tunnels`` table (the section's own migrations), the password hashes, and
the requests-per-minute counter of each tunnel.

A password is stored as ``scrypt$n$r$p$salt$hash`` (hashlib.scrypt, a slow KDF); it is never returned.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import hmac
import secrets
import sqlite3
import time
from typing import Any

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import Tunnel, TunnelCreate, TunnelUpdate, format_timestamp, utcnow

from ..crypto import random_chars
from ..db import Database, from_row
from ..errors import ApiProblem
from ..ids import new_id

MIGRATIONS = [
    """
    CREATE TABLE tunnels (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        tenant_id TEXT NOT NULL,
        host_id TEXT NOT NULL,
        slug TEXT NOT NULL UNIQUE,
        target_port INTEGER NOT NULL,
        auth_mode TEXT NOT NULL,
        password_hash TEXT,
        enabled INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX tunnels_host ON tunnels (host_id, seq)
    """
]

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # ~16 MiB and tens of milliseconds per check
VERIFIED_CACHE = 256  # (tunnel, password) pairs remembered as checked, so a browser's every request
# does not pay the KDF again
RATE_WINDOW = 60.0  # seconds of requests counted for requests_per_minute


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` of ``password`` with a fresh 16-byte salt (base64 parts)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    parts = (base64.b64encode(salt).decode(), base64.b64encode(digest).decode())
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${parts[0]}${parts[1]}"


def check_password(stored: str, password: str) -> bool:
    """True when ``password`` matches ``stored`` (from :func:`hash_password`); constant-time compare."""
    try:
        _, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def _now() -> str:
    return format_timestamp(utcnow())


class TunnelStore:
    """Every tenant's tunnels.

    Args:
        db: the database (the ``tunnels`` table is migrated here).
        base_url: the server's public base URL; a tunnel's ``public_url`` is ``<base_url>/t/<slug>``.
    """

    def __init__(self, db: Database, base_url: str) -> None:
        db.migrate_section("tunnels", MIGRATIONS)
        self.db = db
        self.base_url = base_url.rstrip("/")
        self._hits: dict[str, collections.deque[list[int]]] = {}
        self._verified: collections.OrderedDict[bytes, None] = collections.OrderedDict()

    # --- rows ------------------------------------------------------------------------------------------

    def model(self, row: dict[str, Any]) -> Tunnel:
        """The API's Tunnel of a row (with its public URL, status and requests per minute)."""
        return from_row(
            Tunnel,
            row,
            public_url=f"{self.base_url}/t/{row['slug']}",
            status="enabled" if row["enabled"] else "disabled",
            requests_per_minute=self.rate(row["id"]),
        )

    def row(self, host_id: str, tunnel_id: str) -> dict[str, Any] | None:
        """The tunnel's row if it is ``host_id``'s, else None."""
        return self.db.one("SELECT * FROM tunnels WHERE id = ? AND host_id = ?", (tunnel_id, host_id))

    def by_slug(self, slug: str) -> dict[str, Any] | None:
        """The row of the tunnel whose slug is ``slug``, or None."""
        return self.db.one("SELECT * FROM tunnels WHERE slug = ?", (slug,))

    def page(self, host_id: str, page: int, per_page: int) -> tuple[list[Tunnel], int]:
        """One page of the host's tunnels, oldest first, and the total."""
        total = self.db.one("SELECT COUNT(*) AS n FROM tunnels WHERE host_id = ?", (host_id,))
        rows = self.db.all(
            "SELECT * FROM tunnels WHERE host_id = ? ORDER BY seq LIMIT ? OFFSET ?",
            (host_id, per_page, (page - 1) * per_page),
        )
        return [self.model(row) for row in rows], int(total["n"] if total else 0)

    async def create(self, tenant_id: str, host_id: str, spec: TunnelCreate) -> dict[str, Any]:
        """Store a new tunnel; returns its row.

        Raises:
            ApiProblem: 400 password mode without a password; 409 CONFLICT the slug is taken.
        """
        if spec.auth_mode == "password" and not spec.password:
            raise ApiProblem(400, ErrorCode.VALIDATION_ERROR, "auth_mode password needs a password")
        password_hash = await asyncio.to_thread(hash_password, spec.password) if spec.password else None
        now = _now()
        row: dict[str, Any] = {
            "id": new_id("tunnel"),
            "tenant_id": tenant_id,
            "host_id": host_id,
            "slug": spec.slug or random_chars(50),
            "target_port": spec.target_port,
            "auth_mode": spec.auth_mode,
            "password_hash": password_hash,
            "enabled": True,
            "created_at": now,
            "updated_at": now,
        }
        try:
            self.db.insert("tunnels", row)
        except sqlite3.IntegrityError:
            raise ApiProblem(409, ErrorCode.CONFLICT, f"slug {row['slug']!r} is taken") from None
        stored = self.by_slug(row["slug"])
        assert stored is not None
        return stored

    async def update(self, row: dict[str, Any], spec: TunnelUpdate) -> dict[str, Any]:
        """Change the fields ``spec`` sets; returns the new row.

        Raises:
            ApiProblem: 400 when the tunnel would be in password mode without a password.
        """
        changes: dict[str, Any] = spec.model_dump(exclude_unset=True, exclude_none=True, exclude={"password"})
        if spec.password:
            changes["password_hash"] = await asyncio.to_thread(hash_password, spec.password)
        mode = changes.get("auth_mode", row["auth_mode"])
        if mode == "password" and not (changes.get("password_hash") or row["password_hash"]):
            raise ApiProblem(400, ErrorCode.VALIDATION_ERROR, "auth_mode password needs a password")
        if changes:
            changes["updated_at"] = _now()
            self.db.update("tunnels", row["id"], changes)
        fresh = self.db.one("SELECT * FROM tunnels WHERE id = ?", (row["id"],))
        assert fresh is not None
        return fresh

    def delete(self, tunnel_id: str) -> None:
        """Remove the tunnel's row."""
        self.db.execute("DELETE FROM tunnels WHERE id = ?", (tunnel_id,))
        self._hits.pop(tunnel_id, None)

    def of_host(self, host_id: str) -> list[dict[str, Any]]:
        """The rows of every tunnel of the host."""
        return self.db.all("SELECT * FROM tunnels WHERE host_id = ?", (host_id,))

    def disable_host(self, host_id: str) -> list[str]:
        """Disable every tunnel of the host (it was revoked); returns their IDs."""
        ids = [row["id"] for row in self.of_host(host_id)]
        self.db.execute("UPDATE tunnels SET enabled = 0, updated_at = ? WHERE host_id = ?", (_now(), host_id))
        return ids

    # --- passwords and counters ------------------------------------------------------------------------

    async def password_ok(self, row: dict[str, Any], password: str) -> bool:
        """True when ``password`` is the tunnel's (the KDF runs in a thread; a match is remembered)."""
        stored = row["password_hash"]
        if not stored:
            return False
        key = hashlib.sha256(f"{row['id']}\0{stored}\0{password}".encode()).digest()
        if key in self._verified:
            self._verified.move_to_end(key)
            return True
        if not await asyncio.to_thread(check_password, stored, password):
            return False
        self._verified[key] = None
        while len(self._verified) > VERIFIED_CACHE:
            self._verified.popitem(last=False)
        return True

    def hit(self, tunnel_id: str) -> None:
        """Count one request to the tunnel (for ``requests_per_minute``; one counter per second)."""
        buckets = self._hits.setdefault(tunnel_id, collections.deque())
        second = int(time.monotonic())
        if buckets and buckets[-1][0] == second:
            buckets[-1][1] += 1
        else:
            buckets.append([second, 1])
            self._trim(buckets)

    def rate(self, tunnel_id: str) -> int:
        """Requests to the tunnel in the last minute."""
        buckets = self._hits.get(tunnel_id)
        if not buckets:
            return 0
        self._trim(buckets)
        return sum(count for _, count in buckets)

    @staticmethod
    def _trim(buckets: collections.deque[list[int]]) -> None:
        horizon = time.monotonic() - RATE_WINDOW
        while buckets and buckets[0][0] < horizon:
            buckets.popleft()
