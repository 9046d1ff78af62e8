"""Random secrets and their hashes: the server stores only SHA-256 hashes of tokens and host keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def random_chars(bits: int) -> str:
    """Lowercase base32 text carrying at least ``bits`` bits of randomness (5 bits per character)."""
    count = -(-bits // 5)
    raw = secrets.token_bytes(-(-count * 5 // 8))
    return base64.b32encode(raw).decode("ascii").lower().rstrip("=")[:count]


def new_token(prefix: str, bits: int = 160) -> str:
    """A bearer secret such as ``oc_…`` (API token) or ``hk_…`` (host key)."""
    return prefix + random_chars(bits)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same_hash(a: str, b: str) -> bool:
    """Constant-time comparison, so response times say nothing about how much of a hash matched."""
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))
