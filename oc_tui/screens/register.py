"""The register-host dialog: name, region, labels → ``POST /hosts``.

It dismisses with the ``HostRegistration`` (which carries the host key) so the fleet screen can
show the key once in :class:`~oc_tui.screens.host_key.HostKeyScreen`.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label

from oc_tui.api.models import HostRegistration
from oc_tui.screens.form_dialog import FormDialog
from oc_tui.widgets.labels import parse_labels


@dataclass
class NewHost:
    """The register form's values."""

    name: str
    region: str | None
    labels: dict[str, str]


class RegisterHostScreen(FormDialog[HostRegistration]):
    """Asks for a new host's name, region and labels, and registers it."""

    FAILURE_TITLE = "Register failed"
    NEEDS_CLIENT = True

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

    def fields(self) -> NewHost | None:
        name = self.query_one("#name", Input).value.strip()
        region = self.query_one("#region", Input).value.strip() or None
        try:
            labels = parse_labels(self.query_one("#labels", Input).value)
        except ValueError as exc:
            self.show_error(f"labels: {exc}")
            return None
        if not name:
            self.show_error("a name is required")
            self.query_one("#name", Input).focus()
            return None
        return NewHost(name, region, labels)

    async def send(self, fields: NewHost) -> HostRegistration:
        assert self.client is not None  # NEEDS_CLIENT
        return await self.client.register_host(fields.name, region=fields.region, labels=fields.labels)
