"""The fleet's host table: one row per host, keyed by host id.

It is a thin wrapper around Textual's ``DataTable`` so the rest of the app only speaks
``show(hosts)`` / ``selected_host_id``. A later benchmark needs 10,000 hosts without a >50 ms stall;
``DataTable`` rebuilds every row on a full refresh, so this class is the place to swap in a virtual
table (rendering only the visible window of a sorted host list) without touching the screen.

Live updates never steal the cursor: the selection is remembered by host id, not by row index, and
restored after every refresh.

Hosts can be *marked* (``space`` in the fleet view) to run one command on all of them: a mark column
shows ``✓`` and the name is styled; :attr:`marked` survives filtering and reloads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message

from oc_tui.api.models import Host
from oc_tui.widgets.formatting import relative_time, status_label
from oc_tui.widgets.labels import format_labels
from oc_tui.widgets.row_table import RowTable
from oc_tui.widgets.styles import text_style

MARK = "✓"
COLUMNS: tuple[tuple[str, str], ...] = (
    ("mark", " "),
    ("status", "STATUS"),
    ("name", "NAME"),
    ("region", "REGION"),
    ("labels", "LABELS"),
    ("changed", "LAST CHANGE"),
)


class HostTable(RowTable):
    """Hosts as rows; the status cell is coloured by a component class per status."""

    COMPONENT_CLASSES = {
        "host-table--online",
        "host-table--offline",
        "host-table--pending",
        "host-table--revoked",
        "host-table--error",
        "host-table--dim",
        "host-table--marked",
    }

    BINDINGS = [
        Binding("enter", "select_cursor", "Open"),  # the fleet opens the host on RowSelected
        Binding("g", "scroll_top", "Top", show=False),
        Binding("G", "scroll_bottom", "Bottom", show=False),
    ]

    COLUMNS = COLUMNS

    def __init__(self, clock: Callable[[], datetime], *, id: str | None = None) -> None:
        super().__init__(clock, id=id)
        self._hosts: list[Host] = []
        self.marked: set[str] = set()
        """Ids of the marked hosts (kept while they are filtered out of view)."""

    def restyle(self) -> None:
        self._rebuild()

    @property
    def selected_host_id(self) -> str | None:
        """The id of the host under the cursor, or ``None`` when the table is empty."""
        if not self.row_count:
            return None
        row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return row_key.value

    def show(self, hosts: Sequence[Host]) -> None:
        """Display exactly ``hosts`` in this order, keeping the cursor on the same host id.

        When the rows are the same hosts in the same order (the common case: a status change),
        only the changed cells are updated; otherwise the rows are rebuilt.
        """
        previous = {host.id: host for host in self._hosts}
        same_rows = [host.id for host in hosts] == [host.id for host in self._hosts]
        self._hosts = list(hosts)
        if not same_rows:
            self._rebuild()
            return
        now = self._clock()
        for host in self._hosts:
            if previous[host.id] != host:
                for (column, _), cell in zip(COLUMNS, self._cells(host, now), strict=True):
                    self.update_cell(host.id, column, cell, update_width=True)

    @property
    def shown_ids(self) -> list[str]:
        """Ids of the hosts shown, in order (the filter applied)."""
        return [host.id for host in self._hosts]

    class MarksChanged(Message):
        """The set of marked hosts changed (the screen counts them)."""

    def set_marked(self, host_ids: set[str]) -> None:
        """Mark exactly ``host_ids``; only rows whose mark changed are redrawn."""
        changed = self.marked ^ host_ids
        self.marked = set(host_ids)
        if changed:
            self.post_message(self.MarksChanged())
        for host in self._hosts:
            if host.id in changed:
                self.update_cell(host.id, "mark", self._mark_cell(host))
                self.update_cell(host.id, "name", self._name_cell(host))

    def toggle_mark(self, host_id: str) -> None:
        self.set_marked(self.marked ^ {host_id})

    def refresh_times(self) -> None:
        """Re-render the relative "last change" column (called on a timer)."""
        now = self._clock()
        for host in self._hosts:
            self.update_cell(host.id, "changed", self._changed_cell(host, now))

    def select_host(self, host_id: str) -> None:
        if host_id in self.rows:
            self.move_cursor(row=self.get_row_index(host_id), animate=False)

    def _rebuild(self) -> None:
        selected = self.selected_host_id
        previous_index = self.cursor_row
        now = self._clock()
        self.clear()
        for host in self._hosts:
            self.add_row(*self._cells(host, now), key=host.id)
        if selected is not None and selected in self.rows:
            self.move_cursor(row=self.get_row_index(selected), animate=False)
        elif self.row_count:
            self.move_cursor(row=min(previous_index, self.row_count - 1), animate=False)

    def _cells(self, host: Host, now: datetime) -> tuple[Text, ...]:
        return (
            self._mark_cell(host),
            Text(status_label(host.status), style=self._status_style(host.status)),
            self._name_cell(host),
            Text(host.region or "-"),
            Text(format_labels(host.labels) or "-", style=self._dim if not host.labels else ""),
            self._changed_cell(host, now),
        )

    def _mark_cell(self, host: Host) -> Text:
        return Text(MARK, style=self._marked) if host.id in self.marked else Text(" ")

    def _name_cell(self, host: Host) -> Text:
        return Text(host.name, style=self._marked if host.id in self.marked else "")

    @property
    def _marked(self) -> Style:
        return text_style(self, "host-table--marked")

    def _changed_cell(self, host: Host, now: datetime) -> Text:
        return Text(relative_time(host.status_changed_at or host.updated_at, now))

    def _status_style(self, status: str) -> Style:
        return text_style(self, f"host-table--{status}")

    @property
    def _dim(self) -> Style:
        return text_style(self, "host-table--dim")
