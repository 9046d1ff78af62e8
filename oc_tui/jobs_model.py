"""A job's output stream as pieces a view can show: the one decoding path for every view of job output
(the Jobs tab, the fan-out screen).

The stream's events (``stdout``/``stderr`` with text or base64 bytes, ``truncated``, ``exit``) become
:class:`OutputChunk`, :class:`OutputNote` and :class:`OutputEnd`; the bytes are decoded by the client's
:func:`~oc_tui.api.streams.job_output_bytes`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from oc_tui.api import OpenComputersClient
from oc_tui.api.streams import job_output_bytes
from oc_tui.widgets.formatting import format_bytes


@dataclass
class OutputChunk:
    """Bytes the job printed (``stderr``: on its standard error)."""

    data: bytes
    stderr: bool = False


@dataclass
class OutputNote:
    """A line about the output, not from the job (the server stopped storing it)."""

    text: str


@dataclass
class OutputEnd:
    """The stream's final event: ``data`` has ``status``, ``exit_code``, ``error``; ``at``: when the
    job ended (the event's timestamp)."""

    data: dict[str, Any]
    at: datetime | None = None


OutputPiece = OutputChunk | OutputNote | OutputEnd


async def follow_job(client: OpenComputersClient, host_id: str, job_id: str) -> AsyncIterator[OutputPiece]:
    """Everything job ``job_id`` printed, from its start, then live until it ends.

    Raises the client's ``OpenComputersError`` subclasses when the stream cannot be read.
    """
    async with client.job_events(host_id, job_id) as stream:
        async for event in stream:
            if event.type in ("stdout", "stderr"):
                yield OutputChunk(job_output_bytes(event), event.type == "stderr")
            elif event.type == "truncated":
                limit = event.data.get("limit")
                size = format_bytes(limit) if isinstance(limit, int) else "its limit"
                yield OutputNote(f"── the server stores only the first {size} of a job's output ──")
            elif event.type == "exit":
                yield OutputEnd(dict(event.data), event.timestamp)


def exit_note(status: str, exit_code: int | None, error: str | None, duration: str | None = None) -> str:
    """The closing line under a job's output: ``── completed · exit 0 · 0.4s ──``."""
    parts = [status]
    if exit_code is not None:
        parts.append(f"exit {exit_code}")
    if error:
        parts.append(error)
    if duration and duration != "-":
        parts.append(duration)
    return f"── {' · '.join(parts)} ──"
