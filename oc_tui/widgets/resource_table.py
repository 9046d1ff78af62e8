"""A generic table of API resources (tunnels, clusters, secrets, agent sessions …): one row per
resource, keyed by its ``id``, with the columns a view declares and its status cell coloured from the
one table of status vocabularies (:mod:`oc_tui.widgets.statuses`).

A view gives :class:`Column` s and a status kind; the table does the rest (cells, restyling on a theme
switch). Colours stay in oc_tui.tcss: ``ResourceTable > .resource-table--<status>``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.text import Text

from oc_tui.widgets.formatting import host_text
from oc_tui.widgets.row_table import RowTable
from oc_tui.widgets.statuses import STATUSES, status_label
from oc_tui.widgets.styles import text_style


@dataclass(frozen=True)
class Column:
    """One column: ``key`` (``status`` is the status cell), its header ``label`` and how a resource
    reads in it (``value(resource, now)``, already display text; untrusted text escaped by the caller)."""

    key: str
    label: str
    value: Callable[[Any, datetime], str]


STATUS = "status"
"""The key of the status column (its cell is a symbol and a word, coloured by status)."""


def _host_name(resource: Any, _: datetime) -> str:
    return host_text(getattr(resource, "host_name", None) or resource.host_id)


HOST_COLUMN = Column("host", "Host", _host_name)
"""The host of a resource in a fleet-wide view: its ``host_name`` (set by the view's lister) or its ID."""


class ResourceTable(RowTable):
    """Resources as rows; the ``status`` column is styled per status of ``kind`` (``tunnels`` …)."""

    COMPONENT_CLASSES = {f"resource-table--{word}" for words in STATUSES.values() for word in words}

    def __init__(
        self, kind: str, columns: Sequence[Column], clock: Callable[[], datetime], *, id: str | None = None
    ) -> None:
        super().__init__(clock, id=id)
        self.kind = kind
        self.columns_spec = tuple(columns)
        self.COLUMNS = tuple((column.key, column.label) for column in columns)
        self._items: dict[str, Any] = {}

    @property
    def items(self) -> list[Any]:
        """The resources shown, in order."""
        return list(self._items.values())

    def show(self, items: Iterable[Any]) -> None:
        """Show exactly these resources (each has an ``id``), keeping the cursor's row when it stays."""
        selected = self.selected_id
        self._items = {item.id: item for item in items}
        self.clear()
        for item in self._items.values():
            self.add_row(*self._cells(item), key=item.id)
        if selected in self._items:
            self.move_cursor(row=self.get_row_index(selected))

    @property
    def selected_id(self) -> str | None:
        """The id of the resource under the cursor (None when the table is empty)."""
        if not self.row_count:
            return None
        return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    def restyle(self) -> None:
        self.show(self.items)

    def _cells(self, item: Any) -> list[Text]:
        now = self._clock()
        cells = []
        for column in self.columns_spec:
            value = column.value(item, now)
            if column.key == STATUS:
                style = text_style(self, f"resource-table--{value}")
                cells.append(Text(host_text(status_label(self.kind, value)), style=style))
            else:
                cells.append(Text(host_text(value)))  # a resource's fields are the server's or a host's
        return cells
