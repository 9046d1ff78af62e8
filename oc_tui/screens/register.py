"""The register-host dialog: name, region, labels → ``POST /hosts``.

It dismisses with the ``HostRegistration`` (which carries the host key) so the fleet screen can
show the key once in :class:`~oc_tui.screens.host_key.HostKeyScreen`.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Button, Input, Label

from oc_tui.api import OpenComputersClient, errors
from oc_tui.api.models import HostRegistration
from oc_tui.screens.form_dialog import FormDialog
from oc_tui.widgets.labels import parse_labels


class RegisterHostScreen(FormDialog[HostRegistration]):
    """Asks for a new host's name, region and labels, and registers it."""

    FAILURE_TITLE = "Register failed"

    @dataclass
    class Registered(Message):
        registration: HostRegistration

    def __init__(self, client: OpenComputersClient | None) -> None:
        super().__init__()
        self._client = client

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Register a host", classes="dialog-title")
            yield Label("Name", classes="field-label")
            yield Input(placeholder="e.g. build-box", id="name", compact=True)
            yield Label("Region (optional)", classes="field-label -spaced")
            yield Input(placeholder="e.g. eu-west", id="region", compact=True)
            yield Label("Labels (optional)", classes="field-label -spaced")
            yield Input(placeholder="env=prod, team=web", id="labels", compact=True)
            yield from self.compose_footer("Register")

    @on(Button.Pressed, "#submit")
    @on(Input.Submitted)
    def _submit(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        region = self.query_one("#region", Input).value.strip() or None
        try:
            labels = parse_labels(self.query_one("#labels", Input).value)
        except ValueError as exc:
            self.show_error(f"labels: {exc}")
            return
        if not name:
            self.show_error("a name is required")
            self.query_one("#name", Input).focus()
            return
        client = self.begin_sending(self._client)
        if client is not None:
            self._register(client, name, region, labels)

    @work(exclusive=True, group="register", exit_on_error=False)
    async def _register(
        self, client: OpenComputersClient, name: str, region: str | None, labels: dict[str, str]
    ) -> None:
        try:
            registration = await client.register_host(name, region=region, labels=labels)
        except errors.OpenComputersError as exc:
            self.post_message(self.Failed(exc))
        else:
            self.post_message(self.Registered(registration))

    def on_register_host_screen_registered(self, message: Registered) -> None:
        self.dismiss(message.registration)
