"""Random secrets and their hashes (the server stores only SHA-256 hashes of tokens and host keys), and
AES-256-GCM encryption of the values of tenant and host secrets (``cryptography``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


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


# --- encryption at rest (secrets) ---------------------------------------------------------------------

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's standard nonce; a fresh random one per encryption


def new_key() -> bytes:
    """A fresh random AES-256 key."""
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """Encrypt ``plaintext`` with AES-256-GCM under ``key`` and a fresh random nonce, binding ``aad``
    (associated data: authenticated, not stored in the ciphertext).

    Returns:
        (nonce, ciphertext with its 16-byte tag).
    """
    nonce = os.urandom(NONCE_BYTES)
    return nonce, AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """The plaintext of :func:`seal`'s output.

    Raises:
        cryptography.exceptions.InvalidTag: wrong key, wrong ``aad`` (the ciphertext was moved to
            another row) or altered bytes.
    """
    return AESGCM(key).decrypt(nonce, ciphertext, aad)
