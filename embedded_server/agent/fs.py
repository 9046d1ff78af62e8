"""The agent's file system requests (placeholder until built): ``fs.*`` methods."""

from __future__ import annotations

from typing import Any

from .streams import StreamDialer


def handlers(streams: StreamDialer) -> dict[str, Any]:
    return {}
