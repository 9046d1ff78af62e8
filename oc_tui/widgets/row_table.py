"""The base of the job and fan-out tables: one row per resource, a row cursor, vim keys, and cells
restyled when the theme changes. (The fleet's host table, which must hold 10,000 rows, is a
:class:`~oc_tui.widgets.virtual_table.VirtualTable` instead.)

Cell colours come from component classes resolved into each cell's ``Text`` when it is written
(widgets.styles), so a theme switch must rewrite the cells: subclasses say how in :meth:`restyle`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable


class RowTable(DataTable[Text]):
    COLUMNS: tuple[tuple[str, str], ...] = ()
    """``(key, label)`` of each column, in order."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def __init__(self, clock: Callable[[], datetime], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._clock = clock

    def on_mount(self) -> None:
        for key, label in self.COLUMNS:
            self.add_column(label, key=key)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.restyle())

    def restyle(self) -> None:
        """Rewrite every cell with the current theme's styles."""
        raise NotImplementedError
