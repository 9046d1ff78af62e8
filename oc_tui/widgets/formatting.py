"""Short display strings for model values, shared by the table, the detail pane and the feed.

Statuses come from the one table of status vocabularies (:mod:`oc_tui.widgets.statuses`). Text from a
host or the network (names, paths, agent facts, relayed errors) is shown through :func:`host_text` —
or :func:`host_markup` where it goes into Rich markup — never raw.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from oc_tui.api import errors
from oc_tui.api.models import Job
from oc_tui.widgets import statuses

STATUS_SYMBOLS = statuses.STATUSES["hosts"]

_NAMED_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
    "\x1b": "\\e",
}
# What a terminal would act on or what hides/reorders text: C0 controls, DEL, C1 controls, the
# line/paragraph separators, the bidi marks, embeddings, overrides and isolates (U+061C, U+200E-F,
# U+202A-E, U+2066-9), zero-width space, word joiner and invisible operators (U+2060-4), the deprecated
# format controls (U+206A-F), the byte order mark, interlinear annotations (U+FFF9-B) and surrogates
# (undecodable bytes). The zero-width (non-)joiners and emoji tag characters are kept: emoji and
# scripts need them.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]"
)


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape): show the byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def host_text(value: object, *, keep: str = "") -> str:
    """``value`` as text safe to show in the operator's terminal, escaped as ``ls -b`` does.

    For every string that comes from a host or the network (file names, link targets, paths, agent
    facts, host names and labels, relayed error messages). Control characters a terminal would act on
    become visible escapes: ``\\n``, ``\\t``, ``\\r``, ``\\e`` (ESC), ``\\a``, ``\\b``, ``\\v``,
    ``\\f``, other C0, DEL and C1 controls ``\\xNN``; bidi controls (overrides, embeddings,
    isolates, marks) and other invisible format characters that could spoof what is shown become
    ``\\uNNNN``; an undecodable byte kept as a surrogate (``surrogateescape``) becomes ``\\xNN``.
    Ordinary text — wide CJK, combining marks, emoji (with their joiners) — is unchanged, and so is a
    backslash (Windows paths stay readable). ``None`` becomes ``""``, other values ``str(value)``.
    ``keep``: characters left as they are (``"\\t"`` for a file's text, where tabs are layout).

    Returns plain text; put it into markup through :func:`host_markup`.
    """
    text = "" if value is None else str(value)
    if not _UNSAFE.search(text):
        return text
    if keep:
        return _UNSAFE.sub(
            lambda match: match.group() if match.group() in keep else _escape_char(match), text
        )
    return _UNSAFE.sub(_escape_char, text)


def host_markup(value: object) -> str:
    """:func:`host_text` for Textual content markup (``notify``, a ``Static``, a ``Label``, a border
    title): every ``[`` is escaped too, so a name like ``[red]x`` or ``[@click=app.quit]`` is shown
    as written and styles or acts on nothing. (Rich's and Textual's own ``escape`` leave some tags,
    such as ``[$var]``, ``[RED]`` or ``[ red]``, live.) Not for Rich's ``Text.from_markup``: give Rich
    a ``Text`` of :func:`host_text` instead."""
    return host_text(value).replace("[", "\\[")


def status_label(status: str) -> str:
    """``● online`` — a host status's symbol and word; unknown statuses get ``?``."""
    return statuses.status_label("hosts", status)


def relative_time(when: datetime | None, now: datetime) -> str:
    """``5s ago``, ``3m ago``, ``2h ago``, ``4d ago``; ``-`` when unknown."""
    if when is None:
        return "-"
    seconds = int((now - when.astimezone(UTC)).total_seconds())
    if seconds < 0:
        seconds = 0
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def format_timestamp(when: datetime | None) -> str:
    """UTC, to the second: ``2026-01-01 12:00:00Z``."""
    if when is None:
        return "-"
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def format_bytes(count: int | None) -> str:
    """``512 B``, ``1.5 GiB``."""
    if count is None:
        return "-"
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    size, index = float(count), 0
    while size >= 1024 and index < len(units) - 1:
        size /= 1024
        index += 1
    return f"{int(size)} B" if index == 0 else f"{size:.1f} {units[index]}"


def format_duration(seconds: float | None) -> str:
    """``3d 4h``, ``2h 5m``, ``4m 10s``."""
    if seconds is None:
        return "-"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def job_status_label(status: str) -> str:
    """``✓ completed`` — like :func:`status_label`, for a job's status."""
    return statuses.status_label("jobs", status)


def job_started(job: Job) -> datetime:
    """When the job's process started (``started_at``), else when it was recorded."""
    return job.started_at or job.created_at


def job_duration(job: Job, now: datetime) -> str:
    """How long the job ran (or has been running): ``0.4s``, ``12s``, ``4m 10s``; ``-`` while queued."""
    if job.status == "queued":
        return "-"
    start = job_started(job)
    end = job.completed_at
    if end is None:
        end = now if job.status == "running" else job.updated_at
    seconds = max(0.0, (end - start).total_seconds())
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{int(seconds)}s"
    return format_duration(seconds)


def describe_error(error: BaseException) -> str:
    """How a failed request reads in the UI (notifications, inline dialog errors): the server's own
    message for an API error (e.g. a 400's reason), else the exception text; with control characters
    escaped (:func:`host_text`: the message may be an agent's, holding a host's text). Plain text: through
    ``host_markup`` into markup."""
    if isinstance(error, errors.ApiError):
        return host_text(error.message)
    return host_text(str(error) or type(error).__name__)
