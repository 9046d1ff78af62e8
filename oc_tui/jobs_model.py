"""What the views of job output (the Jobs tab, the fan-out screen) say about a job beyond its bytes.

The output itself comes decoded from the client's one job-output stream (``client.job_output``:
``OutputChunk``, ``OutputTruncated``, ``JobExit``); this module only words its notes, and reads the secrets a command line attaches (``--secret NAME``).
"""

from __future__ import annotations

import re

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


SECRET_PREFIX = re.compile(r"--secret(?:=|\s+)([A-Za-z_][A-Za-z0-9_]*(?:,[A-Za-z_][A-Za-z0-9_]*)*)(?:\s+|$)")
"""One ``--secret NAME`` (or ``--secret=A,B``) at the start of a command line."""


def split_secrets(line: str) -> tuple[list[str], str]:
    """The secrets a command line attaches and the command itself: ``--secret GITHUB_TOKEN echo hi``
    → ``(["GITHUB_TOKEN"], "echo hi")``. ``--secret`` may repeat and take ``A,B``; only leading ones
    count (the command is left exactly as typed)."""
    names: list[str] = []
    rest = line.lstrip()
    while match := SECRET_PREFIX.match(rest):
        names.extend(match.group(1).split(","))
        rest = rest[match.end() :].lstrip()
    return list(dict.fromkeys(names)), rest
