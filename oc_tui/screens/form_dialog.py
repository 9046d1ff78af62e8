"""The shared shape of the small form dialogs (register host, edit labels, the Files tab's dialogs).

A form declares its fields (:meth:`FormDialog.compose`), reads and checks them (:meth:`FormDialog.fields`)
and makes one async call (:meth:`FormDialog.send`); the base does the rest: the call runs in a worker,
the submit button is disabled meanwhile, a failure is shown inline, in the server's words, and as a
notification, and the dialog stays open to fix it. Success dismisses with the call's result
(:meth:`FormDialog.sent` may decide otherwise). Esc or the Cancel button dismisses with None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label
from textual.worker import Worker, WorkerState

from oc_tui.api import OpenComputersClient, errors
from oc_tui.widgets.formatting import describe_error, host_markup
from oc_tui.widgets.keys_footer import DialogKeys

ResultType = TypeVar("ResultType")

SEND_ERRORS = (errors.OpenComputersError, OSError, ValueError)
"""What :meth:`FormDialog.send` may raise to say the form cannot be sent as it is (shown inline)."""


class FormDialog(DialogKeys, ModalScreen[ResultType | None]):
    """Base of form dialogs: expects ``#submit``, ``#cancel`` buttons and an ``#error`` label
    (:meth:`compose_footer` yields them)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    FAILURE_TITLE: ClassVar[str] = "Request failed"
    NEEDS_CLIENT: ClassVar[bool] = False
    """Whether :meth:`send` talks to the control plane (then it is not tried without a client)."""

    @dataclass
    class Failed(Message):
        error: BaseException

    @dataclass
    class Sent(Message):
        result: Any

    def __init__(self, client: OpenComputersClient | None = None) -> None:
        """``client``: the client :meth:`send` uses (None: not connected yet, or not needed)."""
        super().__init__()
        self.client = client

    @staticmethod
    def compose_footer(submit_label: str) -> ComposeResult:
        """The ``#error`` label and the submit/cancel buttons every form ends with."""
        yield Label("", id="error", classes="dialog-error")
        with Horizontal(classes="dialog-buttons"):
            yield Button(submit_label, variant="primary", id="submit", compact=True)
            yield Button("Cancel", id="cancel", compact=True)

    # --- what a form implements ------------------------------------------------------------------------

    def fields(self) -> Any | None:
        """The form's values, read and checked; None (after :meth:`show_error`) keeps the dialog open."""
        raise NotImplementedError

    async def send(self, fields: Any) -> Any:
        """The form's one call, with what :meth:`fields` returned; its result goes to :meth:`sent`.

        Raise one of :data:`SEND_ERRORS` to show why it failed.
        """
        raise NotImplementedError

    def sent(self, result: Any) -> None:
        """The call succeeded: dismiss with its result (a form may warn first and wait for another
        submit instead)."""
        self.dismiss(result)

    # --- the template ----------------------------------------------------------------------------------

    @on(Button.Pressed, "#submit")
    @on(Input.Submitted)
    def _submit(self) -> None:
        fields = self.fields()
        if fields is None:
            return
        if self.NEEDS_CLIENT and self.client is None:
            self.show_error("not connected to a control plane yet")
            return
        self.show_error("")
        self.set_busy(True)
        self.run_worker(self._send(fields), name="send", group="send", exclusive=True, exit_on_error=False)

    async def _send(self, fields: Any) -> None:
        try:
            result = await self.send(fields)
        except SEND_ERRORS as exc:
            self.post_message(self.Failed(exc))
        else:
            self.post_message(self.Sent(result))

    def on_form_dialog_sent(self, message: Sent) -> None:
        self.set_busy(False)
        self.sent(message.result)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def required(self, selector: str, what: str = "a name") -> str | None:
        """The stripped value of the ``Input`` at ``selector``; None (after saying "``what`` is
        required" inline) when it is empty."""
        value = self.query_one(selector, Input).value.strip()
        if not value:
            self.show_error(f"{what} is required")
            return None
        return value

    def set_busy(self, busy: bool) -> None:
        """Disable (or enable again) the submit button while the call runs."""
        self.query_one("#submit", Button).disabled = busy

    def show_error(self, text: str) -> None:
        """Say inline what is wrong ("" hides the line); ``text`` is plain text (it may hold a host's
        or a local path's text: shown escaped)."""
        label = self.query_one("#error", Label)
        label.update(host_markup(text))
        label.set_class(bool(text), "-visible")

    def on_form_dialog_failed(self, message: Failed) -> None:
        self.set_busy(False)
        text = describe_error(message.error)
        self.show_error(text)
        self.notify(host_markup(text), title=self.FAILURE_TITLE, severity="error")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that died of something unexpected is reported like any failure."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.post_message(self.Failed(event.worker.error))
