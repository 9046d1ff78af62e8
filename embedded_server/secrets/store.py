"""Secret records: rows in the ``secrets`` table (the section's own migrations), their values encrypted
with AES-256-GCM under a key of the key ring (:mod:`.keyring`), and :meth:`SecretStore.values` — the one
way to read values, for jobs and AI agents on the server side.

Each row holds ``key_id``, ``nonce`` and ``ciphertext``; the associated data binds the secret's id,
tenant and host, so a ciphertext copied onto another row does not decrypt. A value is never logged,
never put in an error message and never returned by the API.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import Host, Secret, SecretCreate, SecretUpdate, format_timestamp, utcnow

from ..crypto import seal, unseal
from ..db import Database, from_row
from ..errors import ApiProblem
from ..hosts.store import HostStore
from ..ids import new_id
from .keyring import KeyRing, KeyRingError, fresh_key, write_ring

log = logging.getLogger("oc_server.secrets")

TENANT_SCOPE = ""  # the ``scope`` column of a tenant secret; a host secret's is its host id

MIGRATIONS = [
    """
    CREATE TABLE secrets (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        tenant_id TEXT NOT NULL,
        host_id TEXT,
        scope TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT,
        key_id TEXT NOT NULL,
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (tenant_id, scope, name)
    );
    CREATE INDEX secrets_by_key ON secrets (key_id)
    """
]
ROTATE_BATCH = 100  # rows re-encrypted per transaction by rotate()


def _now() -> str:
    return format_timestamp(utcnow())


def associated_data(row: dict[str, Any]) -> bytes:
    """What a secret's ciphertext is bound to: its id, tenant and host (scope)."""
    return f"oc-secret/1\0{row['id']}\0{row['tenant_id']}\0{row['scope']}".encode()


def decrypt(ring: KeyRing, row: dict[str, Any]) -> str:
    """The value of a stored row.

    Raises:
        KeyRingError: its key is not in the ring.
        InvalidTag: the ciphertext does not belong to this row (moved, altered) or the key is wrong.
    """
    plain = unseal(ring.key(row["key_id"]), row["nonce"], row["ciphertext"], associated_data(row))
    return plain.decode("utf-8", "surrogatepass")


def encrypt(ring: KeyRing, row: dict[str, Any], value: str) -> dict[str, Any]:
    """The ``key_id``, ``nonce`` and ``ciphertext`` columns of ``value`` for ``row`` (current key, fresh
    nonce). Call it inside the write's transaction, so a key rotation cannot slip in between."""
    key_id, key = ring.current_key()
    nonce, ciphertext = seal(key, value.encode("utf-8", "surrogatepass"), associated_data(row))
    return {"key_id": key_id, "nonce": nonce, "ciphertext": ciphertext}


class SecretStore:
    """Every tenant's secrets (``app.state.secrets``).

    Args:
        db: the database (the ``secrets`` table is migrated here).
        ring_path: the key ring file (created when missing and no secret is stored yet).
        hosts: the host records (a host secret is delivered only for a host that is not revoked).

    Raises:
        KeyRingError: the ring is malformed, or missing while secrets are stored (a new key would leave
            them unreadable: restore the file from a backup, or name it with ``--secret-key-file``).
    """

    def __init__(self, db: Database, ring_path: Path, hosts: HostStore) -> None:
        self.db = db
        self.ring = open_ring(db, ring_path)
        self.hosts = hosts

    # --- records -----------------------------------------------------------------------------------

    @staticmethod
    def model(row: dict[str, Any]) -> Secret:
        """The API's Secret of a row (never the value)."""
        return from_row(Secret, row)

    def row(self, tenant_id: str, host_id: str | None, secret_id: str) -> dict[str, Any] | None:
        """The secret's row if it is in the tenant and scope (``host_id`` None: a tenant secret)."""
        return self.db.one(
            "SELECT * FROM secrets WHERE id = ? AND tenant_id = ? AND scope = ?",
            (secret_id, tenant_id, host_id or TENANT_SCOPE),
        )

    def page(self, tenant_id: str, host_id: str | None, page: int, per_page: int) -> tuple[list[Secret], int]:
        """One page of the scope's secrets, by name, and the total."""
        where = (tenant_id, host_id or TENANT_SCOPE)
        total = self.db.one("SELECT COUNT(*) AS n FROM secrets WHERE tenant_id = ? AND scope = ?", where)
        rows = self.db.all(
            "SELECT * FROM secrets WHERE tenant_id = ? AND scope = ? ORDER BY name LIMIT ? OFFSET ?",
            (*where, per_page, (page - 1) * per_page),
        )
        return [self.model(row) for row in rows], int(total["n"] if total else 0)

    def create(self, tenant_id: str, host_id: str | None, spec: SecretCreate) -> dict[str, Any]:
        """Store a new secret; returns its row.

        Raises:
            ApiProblem: 409 CONFLICT, the scope has a secret of that name.
        """
        now = _now()
        row: dict[str, Any] = {
            "id": new_id("secret"),
            "tenant_id": tenant_id,
            "host_id": host_id,
            "scope": host_id or TENANT_SCOPE,
            "name": spec.name,
            "description": spec.description,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self.db.transaction():
                self.db.insert("secrets", {**row, **self._encrypt(row, spec.value)})
        except sqlite3.IntegrityError:
            where = f"host {host_id}" if host_id else "the tenant"
            raise ApiProblem(
                409, ErrorCode.CONFLICT, f"{where} already has a secret named {spec.name}"
            ) from None
        return row

    def update(self, row: dict[str, Any], spec: SecretUpdate) -> dict[str, Any]:
        """Change the value and/or description ``spec`` sets; returns the new row.

        Raises:
            ApiProblem: 400, ``"value": null``.
        """
        fields = spec.model_fields_set
        if "value" in fields and spec.value is None:
            raise ApiProblem(
                400, ErrorCode.VALIDATION_ERROR, "value: must not be null (send a new value or leave it out)"
            )
        changes: dict[str, Any] = {}
        if "description" in fields and spec.description != row["description"]:
            changes["description"] = spec.description
        with self.db.transaction():
            if spec.value is not None:
                changes.update(self._encrypt(row, spec.value))
            if changes:
                changes["updated_at"] = _now()
                self.db.update("secrets", row["id"], changes)
        fresh = self.db.one("SELECT * FROM secrets WHERE id = ?", (row["id"],))
        assert fresh is not None
        return fresh

    def delete(self, secret_id: str) -> None:
        """Remove the secret's row."""
        self.db.execute("DELETE FROM secrets WHERE id = ?", (secret_id,))

    def _encrypt(self, row: dict[str, Any], value: str) -> dict[str, Any]:
        try:
            return encrypt(self.ring, row, value)
        except KeyRingError as exc:
            log.error("cannot encrypt a secret: %s", exc)
            raise ApiProblem(500, ErrorCode.INTERNAL_ERROR, "the secret key ring is unavailable") from None

    # --- values (server side only) -------------------------------------------------------------------

    async def values(self, tenant_id: str, host_id: str | None, names: Sequence[str]) -> dict[str, str]:
        """The values of the secrets ``names`` for a job or agent of ``host_id`` in ``tenant_id``: the
        host's secret of a name if it has one (it shadows the tenant's), else the tenant's.

        Args:
            tenant_id: the caller's tenant.
            host_id: the host the values are for, or None for tenant secrets only.
            names: secret names (duplicates are fine).

        Returns:
            ``{name: value}`` for every name.

        Raises:
            ApiProblem: 400 VALIDATION_ERROR naming the unknown names; 404 the host is not the tenant's;
                409 HOST_REVOKED; 500 a value cannot be decrypted (the key ring lacks its key, or the row
                was tampered with; the server log says which).
        """
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        if host_id is not None:
            host: Host | None = self.hosts.get(tenant_id, host_id)
            if host is None:
                raise ApiProblem(404, ErrorCode.NOT_FOUND, f"host {host_id} not found")
            if host.status == "revoked":
                raise ApiProblem(
                    409, ErrorCode.HOST_REVOKED, f"host {host_id} is revoked: its secrets are not delivered"
                )
        marks = ", ".join("?" * len(wanted))
        scopes = [TENANT_SCOPE] if host_id is None else [TENANT_SCOPE, host_id]
        rows = self.db.all(
            f"SELECT * FROM secrets WHERE tenant_id = ? AND scope IN ({', '.join('?' * len(scopes))})"
            f" AND name IN ({marks})",
            (tenant_id, *scopes, *wanted),
        )
        chosen: dict[str, dict[str, Any]] = {}
        for row in sorted(rows, key=lambda r: r["scope"] != TENANT_SCOPE):  # host rows last: they win
            chosen[row["name"]] = row
        missing = [name for name in wanted if name not in chosen]
        if missing:
            raise ApiProblem(
                400, ErrorCode.VALIDATION_ERROR, f"secrets: no secret named {', '.join(missing)}"
            )
        result = {}
        for name in wanted:
            try:
                result[name] = decrypt(self.ring, chosen[name])
            except (KeyRingError, InvalidTag) as exc:
                log.error(
                    "secret %s (%s) cannot be decrypted: %s", chosen[name]["id"], name, exc or "bad tag"
                )
                raise ApiProblem(
                    500, ErrorCode.INTERNAL_ERROR, f"secret {name} cannot be decrypted"
                ) from None
        return result


def open_ring(db: Database, ring_path: Path) -> KeyRing:
    """The key ring of the secrets in ``db`` (their table migrated first): created when the file is
    missing and no secret is stored.

    Raises:
        KeyRingError: malformed, or missing while secrets are stored.
    """
    db.migrate_section("secrets", MIGRATIONS)
    if not ring_path.exists():
        stored = db.one("SELECT COUNT(*) AS n FROM secrets")
        if stored and stored["n"]:
            raise KeyRingError(
                f"the secret key ring {ring_path} is missing, but {stored['n']} secrets are stored encrypted"
                " under it: restore it from your backup, or name it with --secret-key-file"
            )
    return KeyRing(ring_path)


def rotate(db: Database, ring_path: Path) -> tuple[str, int]:
    """Re-encrypt every secret under a new key, then drop the old keys from the ring (``oc-server
    secrets rotate-key``). Safe while a server runs on the same data dir: the new key is in the ring
    before any row uses it, rows move in small transactions, and old keys leave the ring only in the
    transaction that finds no row still using them.

    Returns:
        (the new key's id, how many secrets were re-encrypted).

    Raises:
        KeyRingError: the ring lacks the key of a stored secret (nothing is dropped then).
        InvalidTag: a stored secret does not decrypt (tampered with); nothing is dropped.
    """
    ring = open_ring(db, ring_path)
    new_key_id, new_keys = fresh_key()
    with db.transaction():  # a writer of the server either finished before (its row moves below) or sees it
        ring.refresh()
        write_ring(ring_path, new_key_id, {**ring.keys, **new_keys})
    ring.refresh()
    moved = 0
    while True:
        with db.transaction():
            rows = db.all("SELECT * FROM secrets WHERE key_id != ? LIMIT ?", (new_key_id, ROTATE_BATCH))
            if not rows:
                write_ring(ring_path, new_key_id, new_keys)
                return new_key_id, moved
            for row in rows:
                db.update("secrets", row["id"], encrypt(ring, row, decrypt(ring, row)))
            moved += len(rows)
