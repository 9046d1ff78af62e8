"""What the views of job output (the Jobs tab, the fan-out screen) say about a job beyond its bytes.

The output itself comes decoded from the client's one job-output stream (``client.job_output``:
``OutputChunk``, ``OutputTruncated``, ``JobExit``); this module only words its notes.
"""

from __future__ import annotations

from oc_tui.widgets.formatting import format_bytes


def truncated_note(limit: int | None) -> str:
    """The line shown where the server stopped storing a job's output (``limit`` in bytes)."""
    size = format_bytes(limit) if limit is not None else "its limit"
    return f"── the server stores only the first {size} of a job's output ──"


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
