"""The footer of every screen: the keys in play, compact; the command palette's key only when there is
room for it (at 80 columns it was cut mid-word and left a stray character in the last column)."""

from __future__ import annotations

from textual import events
from textual.widgets import Footer

PALETTE_WIDTH = 120
"""Columns from which the footer also shows the command palette's key (``?`` always lists it)."""


class KeysFooter(Footer):
    """A compact :class:`~textual.widgets.Footer` that shows ``^p palette`` only when wide enough."""

    def __init__(self) -> None:
        super().__init__(compact=True, show_command_palette=False)

    def on_resize(self, event: events.Resize) -> None:
        self.show_command_palette = event.size.width >= PALETTE_WIDTH
