"""The agent's terminals (placeholder until built): ``pty.open`` runs a login shell on a PTY."""

from __future__ import annotations

from typing import Any

from .streams import StreamDialer


def handlers(streams: StreamDialer) -> dict[str, Any]:
    return {}
