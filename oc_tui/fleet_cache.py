"""The last host list the control plane showed, kept on disk so the next start draws the fleet at once.

``oc-tui`` shows this list (marked stale) while the first ``GET /hosts`` of the new session is on its
way, then replaces it with the answer. It holds only what the server already showed this operator:
one file per profile and server (the token's hash is part of the name, so another token of the same
server, another tenant, never sees it), in the user's data dir, readable by the user alone (0600, in
a 0700 directory).

Reading and writing never raise: a missing, unreadable or corrupt file is no cache (the first answer
fills the fleet as before), a write that fails is skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

from oc_tui.api.models import Host

DIR_NAME = "fleet-cache"
VERSION = 1
MAX_BYTES = 64 << 20
"""A cache file larger than this is ignored (a fleet of 10,000 hosts takes about 5 MB)."""


def cache_path(data_dir: Path, profile: str, base_url: str, token: str | None) -> Path:
    """The cache file of ``profile`` against ``base_url`` with ``token``.

    Args:
        data_dir: the user's oc-tui data dir.
        profile: the profile's name (part of the file name, for a person looking at the directory).
        base_url: the control plane's URL.
        token: the API token (hashed into the name; never stored), or None (the embedded profile).

    Returns:
        ``data_dir/fleet-cache/<profile>-<16 hex digits>.json``.
    """
    digest = hashlib.sha256(f"{base_url}\0{token or ''}".encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in profile)[:40]
    return data_dir / DIR_NAME / f"{safe}-{digest}.json"


def load(path: Path) -> list[Host] | None:
    """The hosts saved at ``path``, or None when there is no usable cache (missing, too big, corrupt,
    another version). Blocking file I/O and parsing: call it from a thread for a big fleet."""
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        data = json.loads(path.read_bytes())
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return None
        return [Host.model_validate(host) for host in data["hosts"]]
    except (OSError, ValueError, TypeError, KeyError):  # pydantic's ValidationError is a ValueError
        return None


def save(path: Path, hosts: list[Host]) -> bool:
    """Replace the cache at ``path`` with ``hosts`` (atomically, mode 0600, directory 0700).

    Returns:
        True when written; False when it could not be (a read-only data dir, a full disk).
    """
    body = json.dumps(
        {"version": VERSION, "hosts": [host.model_dump(mode="json") for host in hosts]},
        separators=(",", ":"),
    ).encode()
    tmp = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".fleet-", suffix=".tmp")  # 0600
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
        os.replace(tmp, path)
        return True
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return False
