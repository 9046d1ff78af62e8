"""The fleet's host table: one row per host, keyed by host id, sorted by name.

A :class:`~oc_tui.widgets.virtual_table.VirtualTable`: only the rows on screen are ever turned into
cells, so 10,000 hosts load, filter and update without freezing the app (bench/cases/tui_stall.py).
The table holds every host the screen knows and shows those its filter matches, in name order:

- :meth:`show_hosts` takes all hosts and a filter (a load, a reload): O(n), and it sorts again only
  when the set of hosts or a name changed;
- :meth:`set_filter` takes a new filter (a keystroke in the filter box): answered by a
  :class:`~oc_tui.widgets.host_filter.FilterIndex`, without testing every host;
- :meth:`upsert` takes one host (a live event): a status change redraws one row; a
  new host, a rename or a host entering or leaving the filter moves one row.

Live updates never steal the cursor: the selection follows the host id, not the row index.

Hosts can be *marked* (``space`` in the fleet view) to run one command on all of them: a mark column
shows ``✓`` and the name is styled; :attr:`marked` survives filtering and reloads.
"""

from __future__ import annotations

import bisect
import gc
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import ClassVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message

from oc_tui.api.models import Host
from oc_tui.widgets.formatting import STATUS_SYMBOLS, host_text, relative_time, status_label
from oc_tui.widgets.host_filter import FilterIndex, HostFilter
from oc_tui.widgets.labels import format_labels
from oc_tui.widgets.styles import text_style
from oc_tui.widgets.virtual_table import VirtualTable

MARK = "✓"
COLUMNS: tuple[tuple[str, str], ...] = (
    ("mark", " "),
    ("status", "STATUS"),
    ("name", "NAME"),
    ("region", "REGION"),
    ("labels", "LABELS"),
    ("changed", "LAST CHANGE"),
)
COLUMN_INDEX = {key: i for i, (key, _) in enumerate(COLUMNS)}
MEASURE_CHUNK = 1000
"""Hosts whose cell widths are measured per step; more wait for the next step, so a load of 10,000
never holds the event loop for long (columns may widen a moment after the first frame)."""
FREEZE_AFTER = 1000
"""A load that brings this many hosts not seen before moves every object alive into the garbage
collector's permanent generation (``gc.freeze``)."""
_STATUS_WIDTHS = {status: cell_len(status_label(status)) for status in STATUS_SYMBOLS}


def sort_key(host: Host) -> tuple[str, str]:
    """The table's order: by name, case-insensitively, then by id."""
    return (host.name.lower(), host.id)


class HostTable(VirtualTable):
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

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open"),  # the fleet opens the host on RowSelected
        Binding("g", "scroll_top", "Top", show=False),
        Binding("G", "scroll_bottom", "Bottom", show=False),
    ]

    COLUMNS = COLUMNS

    class MarksChanged(Message):
        """The set of marked hosts changed (the screen counts them)."""

    def __init__(self, clock: Callable[[], datetime], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self._all: dict[str, Host] = {}
        self._order: list[tuple[str, str]] = []
        """``sort_key`` of every host in ``_all``, sorted."""
        self._matches: Callable[[Host], bool] | None = None
        self._filter = HostFilter()
        self._members: set[str] | None = None
        self._filter_index = FilterIndex()
        self._measured: dict[str, Host] = {}
        """The host record each row's widths were measured from."""
        self._to_measure: list[str] = []
        self.marked: set[str] = set()
        """Ids of the marked hosts (kept while they are filtered out of view)."""

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.restyle())

    def restyle(self) -> None:
        """Cells are styled when drawn, so a new theme only needs every row drawn again."""
        self.refresh_all_rows()

    # --- what the screen reads ---------------------------------------------------------------------

    @property
    def selected_host_id(self) -> str | None:
        """The id of the host under the cursor, or ``None`` when the table is empty."""
        return self.cursor_key

    @property
    def shown_ids(self) -> list[str]:
        """Ids of the hosts shown, in order (the filter applied)."""
        return list(self.row_keys)

    def host(self, host_id: str) -> Host | None:
        return self._all.get(host_id)

    def cells(self, host_id: str) -> tuple[Text, ...]:
        """What the row of ``host_id`` shows, one ``Text`` per column (for tests and tools)."""
        return self.row_cells(host_id)

    def get_cell(self, host_id: str, column: str) -> Text:
        """One cell of the row of ``host_id`` (``column``: a key of ``COLUMNS``), like ``DataTable``'s."""
        return self.row_cells(host_id)[COLUMN_INDEX[column]]

    # --- what the screen feeds ---------------------------------------------------------------------

    def show_hosts(
        self, hosts: Iterable[Host], host_filter: HostFilter | None = None, members: set[str] | None = None
    ) -> None:
        """Know exactly ``hosts``; show, by name, those ``host_filter`` matches (all when it is None)
        that are in ``members`` (all when it is None).

        When the hosts are the very records shown already, only the filter runs (:meth:`set_filter`)."""
        previous = self._all
        hosts = list(hosts)
        if len(hosts) == len(previous) and all(previous.get(host.id) is host for host in hosts):
            self.set_filter(host_filter, members)
            return
        self._use_filter(host_filter, members)
        fresh = {host.id: host for host in hosts}
        same_order = fresh.keys() == previous.keys() and all(
            previous[host.id].name == host.name for host in hosts
        )
        self._all = fresh
        if not same_order:
            self._order = sorted([(host.name.lower(), host.id) for host in hosts])  # sort_key, inlined
        self._filter_index.rebuild(fresh[host_id] for _, host_id in self._order)
        shown = self._filter_index.select(self._filter, members)
        self.call_later(self._index_step)
        if shown == self.row_keys:
            for host_id in shown:
                if previous.get(host_id) is not fresh[host_id]:
                    self.refresh_key(host_id)
        else:
            self.set_rows(shown)
        if len(fresh.keys() - previous.keys()) >= FREEZE_AFTER:
            # Thousands of long-lived records make every full garbage collection walk them all
            # (70-190 ms stalls measured with 10,000 hosts); frozen, the collector skips them.
            gc.freeze()
        self._measure_later(
            [host_id for host_id in shown if self._measured.get(host_id) is not fresh[host_id]]
        )

    def set_filter(self, host_filter: HostFilter | None = None, members: set[str] | None = None) -> None:
        """Show the hosts ``host_filter`` matches (all when it is None) that are in ``members`` (all when
        it is None): a keystroke in the filter box. No host is tested that the filter index can rule
        out (see :class:`~oc_tui.widgets.host_filter.FilterIndex`); only the rows on screen are drawn."""
        self._use_filter(host_filter, members)
        self.set_rows(self._filter_index.select(self._filter, members))

    def _use_filter(self, host_filter: HostFilter | None, members: set[str] | None) -> None:
        rule = host_filter or HostFilter()
        self._filter, self._members = rule, members
        if not rule.active and members is None:
            self._matches = None
        else:
            self._matches = lambda host: rule.matches(host) and (members is None or host.id in members)

    def upsert(self, host: Host) -> None:
        """One host is new or changed: redraw, move, add or hide just its row."""
        known = self._all.get(host.id)
        self._all[host.id] = host
        ids = self._filter_index.ids
        if known is None or known.name != host.name:
            ids = list(ids)
            if known is not None:
                at = bisect.bisect_left(self._order, sort_key(known))
                del self._order[at], ids[at]
            at = bisect.bisect_left(self._order, sort_key(host))
            self._order.insert(at, sort_key(host))
            ids.insert(at, host.id)
        self._filter_index.put(host, ids)
        index = self.row_index(host.id)
        show = self._matches is None or self._matches(host)
        if index is not None and show and (known is None or known.name == host.name):
            self.refresh_key(host.id)
        elif index is not None or show:
            keys = list(self.row_keys)
            if index is not None:
                del keys[index]
            if show:
                keys.insert(bisect.bisect_left(keys, sort_key(host), key=self._key_of), host.id)
            self.set_rows(keys)
        if show:
            self._measure([host.id])

    def _key_of(self, host_id: str) -> tuple[str, str]:
        return sort_key(self._all[host_id])

    def select_host(self, host_id: str) -> None:
        index = self.row_index(host_id)
        if index is not None:
            self.move_cursor(row=index, animate=False)

    def set_marked(self, host_ids: set[str]) -> None:
        """Mark exactly ``host_ids``; only rows whose mark changed are redrawn."""
        changed = self.marked ^ host_ids
        self.marked = set(host_ids)
        if changed:
            self.post_message(self.MarksChanged())
        for host_id in changed:
            self.refresh_key(host_id)

    def toggle_mark(self, host_id: str) -> None:
        self.set_marked(self.marked ^ {host_id})

    def refresh_times(self) -> None:
        """Re-render the relative "last change" column (called on a timer): only rows on screen are
        drawn again, and the column keeps its width."""
        self.refresh_all_rows()

    # --- cells -------------------------------------------------------------------------------------

    def row_cells(self, key: str) -> tuple[Text, ...]:
        host = self._all[key]
        marked = key in self.marked
        marked_style = self._style("host-table--marked") if marked else ""
        dim = self._style("host-table--dim")
        return (
            Text(MARK, style=marked_style) if marked else Text(" "),
            Text(status_label(host.status), style=self._style(f"host-table--{host.status}")),
            Text(host_text(host.name), style=marked_style),
            Text(host_text(host.region) or "-"),
            Text(format_labels(host.labels) or "-", style=dim if not host.labels else ""),
            Text(self._changed(host, self._clock())),
        )

    def _style(self, component: str) -> Style:
        return text_style(self, component)

    @staticmethod
    def _changed(host: Host, now: datetime) -> str:
        return relative_time(host.status_changed_at or host.updated_at, now)

    # --- column widths -----------------------------------------------------------------------------

    def _measure_later(self, host_ids: list[str]) -> None:
        """Measure the rows on screen now, the rest in steps (see ``MEASURE_CHUNK``)."""
        if len(host_ids) <= MEASURE_CHUNK:
            self._measure(host_ids)
            return
        top = int(self.scroll_y)
        self._measure(self.row_keys[top : top + max(self.size.height, 100)])
        pending = not self._to_measure
        self._to_measure = host_ids
        if pending:
            self.call_later(self._measure_step)

    def _index_step(self) -> None:
        """Index the hosts for the filter a chunk at a time (see ``MEASURE_CHUNK``)."""
        if not self._filter_index.build(MEASURE_CHUNK):
            self.set_timer(0.001, self._index_step)

    def _measure_step(self) -> None:
        chunk, self._to_measure = self._to_measure[:MEASURE_CHUNK], self._to_measure[MEASURE_CHUNK:]
        self._measure(chunk)
        if self._to_measure:
            self.set_timer(0.001, self._measure_step)

    def _measure(self, host_ids: Iterable[str]) -> None:
        now = self._clock()
        widths = [0] * len(COLUMNS)
        measured = self._measured
        for host_id in host_ids:
            host = self._all.get(host_id)
            if host is None or measured.get(host_id) is host:
                continue
            measured[host_id] = host
            for i, width in enumerate(
                (
                    1,
                    _STATUS_WIDTHS.get(host.status) or cell_len(status_label(host.status)),
                    cell_len(host_text(host.name)),
                    cell_len(host_text(host.region) or "-"),
                    cell_len(format_labels(host.labels) or "-"),
                    len(self._changed(host, now)),
                )
            ):
                if width > widths[i]:
                    widths[i] = width
        self.grow_widths(widths)
