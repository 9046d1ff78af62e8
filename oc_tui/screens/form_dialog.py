"""The shared shape of the small form dialogs (register host, edit labels).

A form sends one request in a worker; while it runs the submit button is disabled; a failure is
shown inline, in the server's words, and as a notification, and the dialog stays open to fix it.
Esc or the Cancel button dismisses with None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Label
from textual.worker import Worker, WorkerState

from oc_tui.api import OpenComputersClient
from oc_tui.screens.errors import describe_error

ResultType = TypeVar("ResultType")


class FormDialog(ModalScreen[ResultType | None]):
    """Base of form dialogs: expects ``#submit``, ``#cancel`` buttons and an ``#error`` label."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    FAILURE_TITLE = "Request failed"

    @dataclass
    class Failed(Message):
        error: BaseException

    @staticmethod
    def compose_footer(submit_label: str) -> ComposeResult:
        """The ``#error`` label and the submit/cancel buttons every form ends with."""
        yield Label("", id="error", classes="dialog-error")
        with Horizontal(classes="dialog-buttons"):
            yield Button(submit_label, variant="primary", id="submit", compact=True)
            yield Button("Cancel", id="cancel", compact=True)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def begin_sending(self, client: OpenComputersClient | None) -> OpenComputersClient | None:
        """The client to send the form with, the dialog now busy; or None, after saying why not."""
        if client is None:
            self.show_error("not connected to a control plane yet")
            return None
        self.show_error("")
        self.set_busy(True)
        return client

    def set_busy(self, busy: bool) -> None:
        self.query_one("#submit", Button).disabled = busy

    def show_error(self, text: str) -> None:
        label = self.query_one("#error", Label)
        label.update(text)
        label.set_class(bool(text), "-visible")

    def on_form_dialog_failed(self, message: Failed) -> None:
        self.set_busy(False)
        text = describe_error(message.error)
        self.show_error(text)
        self.notify(text, title=self.FAILURE_TITLE, severity="error")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that died of something unexpected is reported like any failure."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.post_message(self.Failed(event.worker.error))
