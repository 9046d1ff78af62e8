"""The labels editor: the selected host's labels as ``k=v, k2=v2`` → ``PATCH /hosts/{id}``.

The whole map is replaced (as the API's PATCH does), so removing a pair here removes the label.
Dismisses with the updated ``Host``.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Button, Input, Label

from oc_tui.api import OpenComputersClient, errors
from oc_tui.api.models import Host
from oc_tui.screens.form_dialog import FormDialog
from oc_tui.widgets.labels import format_labels, parse_labels


class EditLabelsScreen(FormDialog[Host]):
    """Edits one host's labels."""

    FAILURE_TITLE = "Labels not saved"

    @dataclass
    class Saved(Message):
        host: Host

    def __init__(self, client: OpenComputersClient | None, host: Host) -> None:
        super().__init__()
        self._client = client
        self._host = host

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Labels of {self._host.name}", classes="dialog-title")
            yield Label("key=value pairs, separated by commas", classes="field-label")
            yield Input(
                format_labels(self._host.labels), placeholder="env=prod, team=web", id="labels", compact=True
            )
            yield from self.compose_footer("Save")

    @on(Button.Pressed, "#submit")
    @on(Input.Submitted)
    def _submit(self) -> None:
        try:
            labels = parse_labels(self.query_one("#labels", Input).value)
        except ValueError as exc:
            self.show_error(str(exc))
            return
        client = self.begin_sending(self._client)
        if client is not None:
            self._save(client, labels)

    @work(exclusive=True, group="labels", exit_on_error=False)
    async def _save(self, client: OpenComputersClient, labels: dict[str, str]) -> None:
        try:
            host = await client.update_host(self._host.id, labels=labels)
        except errors.OpenComputersError as exc:
            self.post_message(self.Failed(exc))
        else:
            self.post_message(self.Saved(host))

    def on_edit_labels_screen_saved(self, message: Saved) -> None:
        self.dismiss(message.host)
