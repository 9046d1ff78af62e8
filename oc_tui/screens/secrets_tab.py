"""The Secrets tab of a host: what a job on it can name with ``--secret`` — the host's own secrets and
the tenant's (marked shadowed where the host has its own of that name) — and keys to create a host
secret, change a value or description, and delete (asks first).

Workers talk to the client and post :class:`SecretsTab.SecretsLoaded`; the handler only fills the
table. Tests and the screenshot script post fixed models through the same message (``live=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.message import Message
from textual.widgets import Static

from oc_tui.api.models import Secret
from oc_tui.screens.host_tab import HostTabContext, ResourceTab
from oc_tui.screens.secrets import COLUMNS, Call, SecretActions, host_secrets
from oc_tui.widgets.resource_table import ResourceTable

HINT = "A job gets a secret as $NAME with --secret NAME; its value shows as ***."


class SecretsTab(ResourceTab, SecretActions):
    """A host's secrets and the tenant's it also gets."""

    TAB_ID = "secrets"
    TITLE = "Secrets"
    KEY = "s"
    BINDINGS: ClassVar[list[BindingType]] = SecretActions.SECRET_BINDINGS

    @dataclass
    class SecretsLoaded(Message):
        secrets: list[Secret]

    def __init__(self, context: HostTabContext, *, id: str | None = None) -> None:
        super().__init__(context, id=id)
        self._clock = context.clock
        self.secrets_host = context.host_id

    def compose(self) -> ComposeResult:
        yield ResourceTable("secrets", COLUMNS, self._clock, id="secret-list")
        yield Static(HINT, id="secret-hint", markup=False)

    def on_mount(self) -> None:
        self.table.border_title = "secrets"

    def action_reload(self) -> None:
        """List the host's and the tenant's secrets again."""
        self.request(
            "list secrets",
            lambda client: host_secrets(client, self.host_id),
            lambda secrets: self.post_message(self.SecretsLoaded(secrets)),
            group="list",
            exclusive=True,
        )

    def secret_call(self, action: str, call: Call) -> None:
        """Run a change with the tab's request worker, then list again."""
        self.request(action, call, lambda _: self.action_reload(), group="change", needs_client=True)

    def on_secrets_tab_secrets_loaded(self, message: SecretsLoaded) -> None:
        self.table.show(message.secrets)
        hint = HINT if message.secrets else "No secrets yet: n stores one, encrypted, for jobs on this host."
        self.query_one("#secret-hint", Static).update(hint)
