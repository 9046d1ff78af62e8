"""The key help (``?``): every key in play, the commands of ``:`` and the filter language.

The key sections are built by the app from the real ``BINDINGS`` of the app and the screen below,
so this list cannot drift from what the keys do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from oc_tui.screens import views
from oc_tui.widgets.keys_footer import DialogKeys

KeySection = tuple[str, Sequence[tuple[str, str]]]


FILTER_SYNTAX: Sequence[tuple[str, str]] = (
    ("web", "Name (or id) contains 'web'"),
    ("env=prod", "Label env is prod ('env=' : has label env)"),
    ("status:online", "Status is online (a bare 'online' too)"),
    ("web env=prod", "Several terms: all must match"),
)


class HelpScreen(DialogKeys, ModalScreen[None]):
    """A scrollable table of keys; any of esc, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, sections: Sequence[KeySection]) -> None:
        super().__init__()
        self._sections = [
            *sections,
            ("Commands (after :)", views.help_rows()),
            ("Filter (after /)", FILTER_SYNTAX),
        ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide"):
            yield Label("Keys", classes="dialog-title")
            with VerticalScroll(id="help-body"):
                for title, rows in self._sections:
                    yield Label(title, classes="help-section")
                    yield Static(self._table(rows))
            yield Label("esc closes · ↑ ↓ scroll", classes="dialog-text")

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()

    def _table(self, rows: Sequence[tuple[str, str]]) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True, width=22, style="bold")
        table.add_column()
        for key, description in rows:
            table.add_row(key, description)
        return table

    def action_close(self) -> None:
        self.dismiss(None)
