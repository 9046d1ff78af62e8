"""The master keys of secrets at rest: a key ring file of AES-256 keys, one of them current.

The file (``DATA_DIR/secret-keys`` unless ``--secret-key-file`` / ``$OC_SECRET_KEY_FILE`` names another;
mode 0600, created on first start) is JSON: ``{"current": "<key id>", "keys": {"<key id>": "<base64>"}}``.
Each stored secret names the key id it was encrypted under, so :func:`rotate` can move secrets to a new
key one at a time while a running server keeps reading them: the server reloads the file when it meets a
key id it does not know and before every write, and it never forgets a key it has loaded.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path

from ..crypto import KEY_BYTES, new_key, random_chars


class KeyRingError(Exception):
    """The key ring file is missing a key, unreadable or malformed (the message says which and where)."""


class KeyRing:
    """The key ring file at ``path``, loaded (and created when ``create`` and it does not exist).

    Args:
        path: the key ring file.
        create: make a ring with one fresh key when the file does not exist (the server's first start).

    Raises:
        KeyRingError: the file is malformed, or missing while ``create`` is False.
    """

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        self.current = ""
        self.keys: dict[str, bytes] = {}
        self._stamp: tuple[int, int, int] | None = None
        if create and not path.exists():
            write_ring(path, *fresh_key())
        self.refresh()

    def refresh(self) -> None:
        """Reload the file if it changed since it was read (another process rotated the key). Keys
        loaded before are kept, so a row read just before a rotation still decrypts.

        Raises:
            KeyRingError: the file is missing or malformed.
        """
        try:
            info = os.stat(self.path)
        except OSError as exc:
            raise KeyRingError(f"secret key ring {self.path}: {exc.strerror}") from None
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if stamp == self._stamp:
            return
        current, keys = read_ring(self.path)
        self.keys.update(keys)
        self.current, self._stamp = current, stamp

    def key(self, key_id: str) -> bytes:
        """The key ``key_id`` (the file is reloaded once when it is not known yet).

        Raises:
            KeyRingError: no such key in the ring.
        """
        if key_id not in self.keys:
            self.refresh()
        try:
            return self.keys[key_id]
        except KeyError:
            raise KeyRingError(f"key {key_id} is not in the secret key ring {self.path}") from None

    def current_key(self) -> tuple[str, bytes]:
        """(id, key) of the key new writes use, after reloading a changed file."""
        self.refresh()
        return self.current, self.keys[self.current]


def fresh_key() -> tuple[str, dict[str, bytes]]:
    """A new key id and a ring holding only that key."""
    key_id = "key_" + random_chars(60)
    return key_id, {key_id: new_key()}


def read_ring(path: Path) -> tuple[str, dict[str, bytes]]:
    """(current key id, keys) of the ring file.

    Raises:
        KeyRingError: unreadable or malformed.
    """
    try:
        data = json.loads(path.read_text())
        keys = {str(k): base64.b64decode(v, validate=True) for k, v in data["keys"].items()}
        current = str(data["current"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise KeyRingError(
            f"secret key ring {path} is unreadable or malformed ({type(exc).__name__})"
        ) from None
    if current not in keys or any(len(key) != KEY_BYTES for key in keys.values()):
        raise KeyRingError(f"secret key ring {path} is malformed (no current key, or a key is not 32 bytes)")
    return current, keys


def write_ring(path: Path, current: str, keys: dict[str, bytes]) -> None:
    """Replace the ring file atomically (a temporary file of mode 0600 renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"current": current, "keys": {k: base64.b64encode(v).decode("ascii") for k, v in keys.items()}}
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(body, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
