"""Asks for the command to run on several hosts, and says up front which of them cannot run it.

Dismisses with the command (stripped), or None on esc / Cancel. The fan-out itself happens in
:class:`~oc_tui.screens.fanout.FanoutScreen`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from oc_tui.api.models import Host
from oc_tui.widgets.command_line import CommandLine
from oc_tui.widgets.formatting import host_markup
from oc_tui.widgets.keys_footer import DialogKeys

NAMES_SHOWN = 8


def host_sample(hosts: Sequence[Host]) -> str:
    """A sample of the hosts' names (markup): the first :data:`NAMES_SHOWN`, then ``+N more``."""
    names = [host_markup(host.name) for host in hosts[:NAMES_SHOWN]]
    if len(hosts) > NAMES_SHOWN:
        names.append(f"+{len(hosts) - NAMES_SHOWN} more")
    return ", ".join(names)


class RunCommandScreen(DialogKeys, ModalScreen[str | None]):
    """One command line for many hosts (with its own history, kept by the app)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, hosts: Sequence[Host], history: list[str]) -> None:
        super().__init__()
        self._hosts = list(hosts)
        self._history = history

    def compose(self) -> ComposeResult:
        count = len(self._hosts)
        offline = [host for host in self._hosts if host.status != "online"]
        with Vertical(classes="dialog -wide"):
            yield Label(f"Run on {count} host{'' if count == 1 else 's'}", classes="dialog-title")
            yield Label(host_sample(self._hosts), classes="dialog-text")
            if offline:
                yield Label(
                    f"Not online, so not run (reported at once): {host_sample(offline)}",
                    classes="dialog-text -warning",
                )
            yield Label("Command (runs through each host's shell)", classes="field-label")
            yield CommandLine(self._history, placeholder="uname -a", id="fanout-command")
            yield Label("", id="error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Run", variant="primary", id="submit", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one(CommandLine).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#submit")
    def _submit(self) -> None:
        field = self.query_one(CommandLine)
        command = field.value.strip()
        error = self.query_one("#error", Label)
        if not command:  # said in the dialog, which stays open (a toast would cover its buttons)
            error.update("Nothing to run: type a command first (esc cancels).")
            error.add_class("-visible")
            field.focus()
            return
        field.remember(command)
        self.dismiss(command)

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
