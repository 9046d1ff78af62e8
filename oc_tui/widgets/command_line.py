"""A one-line command prompt with shell-like history: ``up`` recalls older commands, ``down`` newer.

The history is a plain list owned by the caller (the app keeps one per host), so it outlives the
screen; what was typed before browsing is restored when ``down`` walks past the newest entry.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType

from oc_tui.widgets.text_entry import Input

HISTORY_LIMIT = 500


class CommandLine(Input):
    """An ``Input`` whose ``up``/``down`` walk :attr:`history` (oldest first)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "history_back", "Previous command", show=False),
        Binding("down", "history_forward", "Next command", show=False),
    ]

    def __init__(self, history: list[str], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.history = history
        self._position = len(history)
        self._draft = ""

    def remember(self, command: str) -> None:
        """Add a command that was run (not twice in a row) and go back to a fresh line."""
        if command and (not self.history or self.history[-1] != command):
            self.history.append(command)
            del self.history[:-HISTORY_LIMIT]
        self._position = len(self.history)
        self._draft = ""

    def action_history_back(self) -> None:
        if self._position == 0 or not self.history:
            return
        if self._position >= len(self.history):
            self._draft = self.value
            self._position = len(self.history)
        self._position -= 1
        self._show(self.history[self._position])

    def action_history_forward(self) -> None:
        if self._position >= len(self.history):
            return
        self._position += 1
        self._show(self._draft if self._position == len(self.history) else self.history[self._position])

    def _show(self, value: str) -> None:
        self.value = value
        self.cursor_position = len(value)
