"""The fan-out results: one row per host with its job's status, exit code, duration and first line.

Rows are keyed by host id and stay in the order the hosts were given, so results filling in as
hosts finish never move the cursor. Each row is a :class:`HostRun`, updated by the screen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rich.text import Text

from oc_tui.api.models import Host, Job
from oc_tui.widgets.formatting import host_text, job_duration, job_status_label
from oc_tui.widgets.row_table import RowTable
from oc_tui.widgets.styles import text_style

COLUMNS: tuple[tuple[str, str], ...] = (
    ("host", "HOST"),
    ("status", "STATUS"),
    ("exit", "EXIT"),
    ("duration", "DURATION"),
    ("first", "FIRST LINE"),
)
FIRST_LINE_CHARS = 200


@dataclass
class HostRun:
    """What is known of one host's part of a fan-out."""

    host: Host
    job: Job | None = None
    skipped: str | None = None
    """Why the command was not run there ("offline — not run"), or None."""
    error: str | None = None
    """Why starting or following the job failed, or None."""
    first_line: str = ""
    first_line_done: bool = False
    chunks: list[tuple[bytes, bool]] = field(default_factory=list)
    """The output kept for display (stderr flag per chunk), at most the screen's cap."""
    kept: int = 0

    @property
    def status(self) -> str:
        if self.skipped:
            return "skipped"
        if self.error:
            return "error"
        return self.job.status if self.job is not None else "starting"

    @property
    def finished(self) -> bool:
        return self.status in ("skipped", "error", "completed", "failed", "cancelled")


class FanoutTable(RowTable):
    """Rows of :class:`HostRun`; status cells coloured by a component class per status."""

    COMPONENT_CLASSES = {
        "fanout-table--starting",
        "fanout-table--queued",
        "fanout-table--running",
        "fanout-table--completed",
        "fanout-table--failed",
        "fanout-table--cancelled",
        "fanout-table--skipped",
        "fanout-table--error",
        "fanout-table--dim",
    }

    COLUMNS = COLUMNS

    def __init__(self, clock: Callable[[], datetime], *, id: str | None = None) -> None:
        super().__init__(clock, id=id)
        self._runs: dict[str, HostRun] = {}

    def restyle(self) -> None:
        self.redraw_all()

    def set_runs(self, runs: Sequence[HostRun]) -> None:
        self.clear()
        self._runs = {run.host.id: run for run in runs}
        now = self._clock()
        for run in runs:
            self.add_row(*self._cells(run, now), key=run.host.id)

    @property
    def selected_host_id(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def redraw(self, host_id: str) -> None:
        run = self._runs.get(host_id)
        if run is None:
            return
        for (column, _), cell in zip(COLUMNS, self._cells(run, self._clock()), strict=True):
            self.update_cell(host_id, column, cell, update_width=column in ("status", "first"))

    def redraw_all(self) -> None:
        for host_id in self._runs:
            self.redraw(host_id)

    def _cells(self, run: HostRun, now: datetime) -> tuple[Text, ...]:
        status = run.status
        dim = text_style(self, "fanout-table--dim")
        if run.skipped:
            label = f"○ {host_text(run.skipped)}"
        elif run.error:
            label = f"! {host_text(run.error)}"
        elif status == "starting":
            label = "◌ starting"
        else:
            label = job_status_label(status)
        job = run.job
        exit_code = "-" if job is None or job.exit_code is None else str(job.exit_code)
        return (
            Text(host_text(run.host.name)),
            Text(label, style=text_style(self, f"fanout-table--{status}")),
            Text(exit_code, style=dim if exit_code == "-" else ""),
            Text(job_duration(job, now) if job is not None else "-"),
            Text(host_text(run.first_line), style="" if run.first_line else dim, no_wrap=True),
        )
