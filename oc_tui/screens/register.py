"""The register-host dialog: name, region, labels → ``POST /hosts``.

It dismisses with the ``HostRegistration`` (which carries the host key) so the fleet screen can
show the key once in :class:`~oc_tui.screens.host_key.HostKeyScreen`.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label

from oc_tui.api.models import HostRegistration
from oc_tui.screens.form_dialog import FormDialog
from oc_tui.screens.host_key import loopback_hint, public_url
from oc_tui.widgets.formatting import host_markup
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
            yield Label(self._agent_url_text(None), id="agent-url", classes="dialog-text -spaced")
            yield from self.compose_footer("Register")

    def on_mount(self) -> None:
        if self.client is not None and getattr(self.app, "networked", True):
            self._load_public_url()

    @work(exit_on_error=False)
    async def _load_public_url(self) -> None:
        assert self.client is not None
        url = await public_url(self.client)
        self.query_one("#agent-url", Label).update(self._agent_url_text(url))

    def _agent_url_text(self, url: str | None) -> str:
        """Where the new host's agent will connect (the control plane's public URL), and what to change
        when only this machine can reach it."""
        if url is None:  # until /healthz answers: the URL this app uses
            profile = getattr(self.app, "profile", None)
            url = self.client.base_url if self.client is not None else getattr(profile, "base_url", "…")
        hint = loopback_hint(url) if url.startswith("http") else None
        text = f"Its agent will connect to {host_markup(url)}"
        return f"{text}\n{host_markup(hint)}" if hint else text

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
