"""The footer of every screen: the keys in play, compact; the command palette's key only when there is
room for it (at 80 columns it was cut mid-word and left a stray character in the last column).

Dialogs (modal screens) have a footer of their own too (:class:`DialogKeys`): without it the screen below
showed its keys, none of which works while the dialog is open.
"""

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


class DialogKeys:
    """Mixin for a modal screen: mounts a :class:`KeysFooter` of its own, over the footer of the screen
    below it, so the last line shows the dialog's keys (esc, enter …), not keys that do nothing now.

    Textual calls the ``on_mount`` of every class in the screen's MRO, so a dialog's own ``on_mount``
    does not replace this one.
    """

    def on_mount(self) -> None:
        self.mount(KeysFooter())  # type: ignore[attr-defined]
