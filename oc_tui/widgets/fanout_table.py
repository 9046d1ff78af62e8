"""The fan-out results: one row per host with its job's status, exit code, duration and first line.

Rows are keyed by host id and stay in the order the hosts were given, so results filling in as
hosts finish never move the cursor. Each row is a :class:`~oc_tui.fanout_model.HostRun`, updated by
the screen. :class:`GroupTable` shows them grouped: one row per set of hosts with identical results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from rich.text import Text

from oc_tui.fanout_model import HostRun, OutputGroup
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


GROUP_COLUMNS: tuple[tuple[str, str], ...] = (
    ("hosts", "HOSTS"),
    ("count", "N"),
    ("result", "RESULT"),
    ("first", "FIRST LINE"),
)


class GroupTable(RowTable):
    """One row per :class:`~oc_tui.fanout_model.OutputGroup` (dshbak-style): the hosts folded into
    ranges, how many, their shared result and first line; rebuilt as results come in."""

    COMPONENT_CLASSES = FanoutTable.COMPONENT_CLASSES
    COLUMNS = GROUP_COLUMNS

    def __init__(self, clock: Callable[[], datetime], *, id: str | None = None) -> None:
        super().__init__(clock, id=id)
        self.groups: list[OutputGroup] = []

    def restyle(self) -> None:
        self.set_groups(self.groups)

    def set_groups(self, groups: Sequence[OutputGroup]) -> None:
        """Show ``groups``, keeping the cursor on the group it was on (by its first host)."""
        selected = self.selected_group
        self.groups = list(groups)
        self.clear()
        dim = text_style(self, "fanout-table--dim")
        for group in self.groups:
            status = group.runs[0].status
            self.add_row(
                Text(host_text(group.names), no_wrap=True),
                Text(str(len(group.runs))),
                Text(host_text(group.result), style=text_style(self, f"fanout-table--{status}")),
                Text(host_text(group.first_line), style="" if group.first_line else dim, no_wrap=True),
                key=group.key,
            )
        if selected is not None:
            keys = [group.key for group in self.groups]
            if selected.key in keys:
                self.move_cursor(row=keys.index(selected.key), animate=False)

    @property
    def selected_group(self) -> OutputGroup | None:
        """The group under the cursor, or None."""
        if not self.row_count or not self.groups:
            return None
        row = min(self.cursor_row, len(self.groups) - 1)
        return self.groups[row]
