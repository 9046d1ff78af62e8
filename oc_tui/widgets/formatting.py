"""Short display strings for model values, shared by the table, the detail pane and the feed.

Statuses come from the one table of status vocabularies (:mod:`oc_tui.widgets.statuses`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from oc_tui.api.models import Job
from oc_tui.widgets import statuses

STATUS_SYMBOLS = statuses.STATUSES["hosts"]


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
