"""Host identity: an agent's Ed25519 key pair and the proof it gives of holding it (docs/protocol.md).

The host key (``hk_…``) is an **enrollment secret**: it names the host, but it is not the host. On its
first start an agent makes a key pair (:meth:`Identity.load_or_create`, the private key 0600 in its state
dir, never sent anywhere). Each time it connects, the control plane sends a fresh random nonce
(``challenge``) and the agent answers with its public key and a signature of
``CONTEXT + nonce`` (:meth:`Identity.proof`). The control plane pins the first public key a host
presents and from then on accepts only that one (:func:`verify`) — as Teleport's join tokens become
certificates. A leaked host key alone no longer lets another machine become the host.

Both sides use this module: the agent signs, the control plane verifies (``cryptography``'s Ed25519).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

CONTEXT = b"oc-agent-identity-v1\0"
"""What every signed message starts with, so a signature is good for nothing else."""
IDENTITY_FILE = "identity.key"
"""The private key's file in the agent's state dir (PKCS#8 PEM, mode 0600)."""
NONCE_BYTES = 32


def new_nonce() -> str:
    """A challenge: 32 random bytes, base64."""
    return base64.b64encode(os.urandom(NONCE_BYTES)).decode("ascii")


def fingerprint(public_key: str) -> str:
    """``SHA256:<base64>`` of the raw public key, as ``ssh-keygen -l`` writes key fingerprints."""
    digest = hashlib.sha256(base64.b64decode(public_key)).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


class Identity:
    """An agent's key pair.

    Args:
        private_key: the Ed25519 private key.
    """

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_key = base64.b64encode(raw).decode("ascii")
        """The raw 32-byte public key, base64 (what the control plane pins)."""

    @classmethod
    def generate(cls) -> Identity:
        """A new key pair held in memory only (simulated agents, tests)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, state_dir: Path) -> Identity:
        """The key pair kept in ``state_dir`` (:data:`IDENTITY_FILE`), made there on first use.

        Raises:
            OSError: the state dir cannot be written or the file read.
            ValueError: the file is not an Ed25519 private key (it is left alone: the operator decides).
        """
        path = state_dir / IDENTITY_FILE
        try:
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError:
            state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            temp = path.with_name(f".{IDENTITY_FILE}.{os.getpid()}")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
            return cls(key)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(loaded)

    def proof(self, nonce: str) -> dict[str, str]:
        """The answer to a challenge: ``{"public_key", "signature"}`` (base64), the signature over
        :data:`CONTEXT` + the nonce's bytes.

        Raises:
            ValueError: ``nonce`` is not base64.
        """
        message = CONTEXT + base64.b64decode(nonce, validate=True)
        signature = base64.b64encode(self._private.sign(message)).decode("ascii")
        return {"public_key": self.public_key, "signature": signature}


def verify(proof: object, nonce: str) -> str | None:
    """The public key of a valid ``proof`` of ``nonce`` (as :meth:`Identity.proof` makes), else None
    (missing, malformed, or a signature that does not verify)."""
    if not isinstance(proof, dict):
        return None
    public_key, signature = proof.get("public_key"), proof.get("signature")
    if not isinstance(public_key, str) or not isinstance(signature, str):
        return None
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        key.verify(
            base64.b64decode(signature, validate=True), CONTEXT + base64.b64decode(nonce, validate=True)
        )
    except (ValueError, binascii.Error, InvalidSignature):
        return None
    return public_key
