"""Confirmations of what cannot be undone: they name the thing, say what happens, and default to "no"."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from oc_tui.api.models import Host
from oc_tui.widgets.formatting import host_markup
from oc_tui.widgets.keys_footer import DialogKeys


class ConfirmScreen(DialogKeys, ModalScreen[bool]):
    """A yes/no question about something that cannot be undone; True only on ``y`` or the button.

    ``title`` and ``text`` are markup: a host's text in them goes through
    :func:`~oc_tui.widgets.formatting.host_markup`. ``confirm_label`` names the action (``Delete``);
    the focus starts on Cancel."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "confirm", "Confirm"),
        Binding("n,escape", "cancel", "Cancel"),
    ]

    def __init__(self, title: str, text: str, confirm_label: str = "Confirm") -> None:
        super().__init__()
        self._title = title
        self._text = text
        self._confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -danger"):
            yield Label(self._title, classes="dialog-title")
            yield Label(self._text, classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self._confirm_label} (y)", variant="error", id="confirm", compact=True)
                yield Button("Cancel (n)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#confirm")
    def _confirm_pressed(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(False)


class ConfirmRevokeScreen(ConfirmScreen):
    """Revoking a host: its agent can never authenticate again."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "confirm", "Revoke"),
        Binding("n,escape", "cancel", "Cancel"),
    ]

    def __init__(self, host: Host) -> None:
        super().__init__(
            f"Revoke host {host_markup(host.name)}?",
            f"{host_markup(host.id)} — its agent can never authenticate again. This cannot be undone.",
            "Revoke",
        )
