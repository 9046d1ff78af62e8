"""A host's jobs, newest first: status, command, exit code, duration and when each started.

Like the host table, it is fed whole ``Job`` records (:meth:`JobList.show`, :meth:`JobList.upsert`)
and keeps the cursor on the same job id across updates, so live changes never move the selection.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable
from datetime import datetime

from rich.text import Text

from oc_tui.api.models import Job
from oc_tui.widgets.formatting import host_text, job_duration, job_started, job_status_label, relative_time
from oc_tui.widgets.row_table import RowTable
from oc_tui.widgets.styles import text_style

# The command comes last: the short columns stay in view in an 80-column terminal.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("status", "STATUS"),
    ("exit", "EXIT"),
    ("duration", "DURATION"),
    ("started", "STARTED"),
    ("command", "COMMAND"),
)
MIN_COMMAND_WIDTH = 20
"""The command column is as wide as the list leaves it (at 160 columns, over 100 characters), never
narrower than this; longer commands are cut with an ellipsis (the output pane's title shows them whole)."""
ACTIVE = frozenset({"queued", "running"})


def command_line(job: Job) -> str:
    """What was run, as one would type it: the command, then its ``args`` quoted; for display (control
    characters escaped: :func:`~oc_tui.widgets.formatting.host_text`)."""
    return host_text(" ".join([job.command, shlex.join(job.args)]) if job.args else job.command)


class JobList(RowTable):
    """Jobs as rows keyed by job id; the status cell is coloured by a component class per status."""

    COMPONENT_CLASSES = {
        "job-list--queued",
        "job-list--running",
        "job-list--completed",
        "job-list--failed",
        "job-list--cancelled",
        "job-list--dim",
    }

    COLUMNS = COLUMNS

    def __init__(self, clock: Callable[[], datetime], *, id: str | None = None) -> None:
        super().__init__(clock, id=id)
        self._jobs: dict[str, Job] = {}
        self._order: list[str] = []
        self._command_width = MIN_COMMAND_WIDTH

    def on_resize(self) -> None:
        """The command column takes the width there is: cells are cut again for the new width."""
        width = self._room_for_command()
        if width != self._command_width:
            self._command_width = width
            self._rebuild()

    def _room_for_command(self) -> int:
        """Columns the command may use: the list's width less the other columns and cell padding."""
        others = sum(
            column.get_render_width(self) for key, column in self.columns.items() if key.value != "command"
        )
        room = self.scrollable_content_region.width - others - 2 * self.cell_padding
        return max(MIN_COMMAND_WIDTH, room)

    def restyle(self) -> None:
        self._rebuild()

    @property
    def selected_job(self) -> Job | None:
        if not self.row_count:
            return None
        row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return self._jobs.get(row_key.value or "")

    def job(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    @property
    def jobs(self) -> list[Job]:
        """The jobs shown, newest first."""
        return [self._jobs[job_id] for job_id in self._order]

    @property
    def any_active(self) -> bool:
        return any(job.status in ACTIVE for job in self._jobs.values())

    def show(self, jobs: Iterable[Job]) -> None:
        """Merge a fresh listing: known jobs are updated, new ones added (nothing is removed here, so
        a job just started is not lost to a listing taken a moment before it)."""
        for job in jobs:
            self._merge(job)
        self._redraw_rows()

    def upsert(self, job: Job) -> None:
        self._merge(job)
        self._redraw_rows()

    def select_job(self, job_id: str) -> None:
        if job_id in self.rows:
            self.move_cursor(row=self.get_row_index(job_id), animate=False)

    def refresh_times(self) -> None:
        """Re-render the durations of running jobs and the relative start times (on a timer)."""
        now = self._clock()
        for job_id in self._order:
            job = self._jobs[job_id]
            self.update_cell(job_id, "started", self._started_cell(job, now))
            if job.status == "running":
                self.update_cell(job_id, "duration", Text(job_duration(job, now)))

    def _merge(self, job: Job) -> None:
        known = self._jobs.get(job.id)
        if known is not None and known.status not in ACTIVE and job.status in ACTIVE:
            return  # a listing older than the end we already know of
        self._jobs[job.id] = job

    def _redraw_rows(self) -> None:
        order = sorted(self._jobs, key=lambda job_id: (self._jobs[job_id].created_at, job_id), reverse=True)
        now = self._clock()
        if order == self._order:
            for job_id in order:
                for (column, _), cell in zip(COLUMNS, self._cells(self._jobs[job_id], now), strict=True):
                    self.update_cell(job_id, column, cell, update_width=True)
            return
        self._order = order
        self._rebuild()

    def _rebuild(self) -> None:
        selected = self.selected_job
        now = self._clock()
        self.clear()
        for job_id in self._order:
            self.add_row(*self._cells(self._jobs[job_id], now), key=job_id)
        if selected is not None and selected.id in self.rows:
            self.move_cursor(row=self.get_row_index(selected.id), animate=False)

    def _cells(self, job: Job, now: datetime) -> tuple[Text, ...]:
        command = command_line(job)
        if len(command) > self._command_width:
            command = command[: self._command_width - 1] + "…"
        exit_code = "-" if job.exit_code is None else str(job.exit_code)
        return (
            Text(job_status_label(job.status), style=text_style(self, f"job-list--{job.status}")),
            Text(exit_code, style=text_style(self, "job-list--dim") if job.exit_code is None else ""),
            Text(job_duration(job, now)),
            self._started_cell(job, now),
            Text(command),
        )

    def _started_cell(self, job: Job, now: datetime) -> Text:
        return Text(relative_time(job_started(job), now), style=text_style(self, "job-list--dim"))
