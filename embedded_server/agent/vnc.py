"""The agent's desktop bridge (placeholder until built): ``vnc.open`` connects to the host's VNC server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .streams import StreamDialer


@dataclass(frozen=True)
class VncTarget:
    """Where the host's VNC server listens, and its password (None: no password)."""

    host: str = "127.0.0.1"
    port: int = 5900
    password: str | None = None

    @classmethod
    def from_env(cls) -> VncTarget:
        return cls()


def handlers(streams: StreamDialer, target: VncTarget) -> dict[str, Any]:
    return {}
