"""Command mode (``:``), as in k9s: a one-line prompt; the app runs what is typed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label

from oc_tui.widgets.keys_footer import DialogKeys


class CommandScreen(DialogKeys, ModalScreen[str | None]):
    """Dismisses with the typed command (without the ``:``), or None on esc."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, commands: Sequence[str]) -> None:
        super().__init__()
        self._commands = list(commands)

    def compose(self) -> ComposeResult:
        with Horizontal(id="command-bar"):
            yield Label(":", id="command-prompt")
            yield Input(
                placeholder="hosts · quit",
                suggester=SuggestFromList(self._commands, case_sensitive=False),
                id="command-input",
            )

    @on(Input.Submitted)
    def _run(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip().lstrip(":").strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
