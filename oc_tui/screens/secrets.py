"""Secrets in the TUI, shared by the host screen's Secrets tab and the ``:secrets`` view: the table's
columns (name, scope, description, updated), the listers, the create/edit form with a masked value,
and the actions on the selected secret (new, edit, delete after asking).

A value is typed into a password field and sent; it is never shown, kept or listed (the API never
returns it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Label

from oc_tui.api.models import MAX_SECRET_NAME, SECRET_NAME_RE, Secret, utcnow
from oc_tui.screens.confirm import ConfirmScreen
from oc_tui.screens.form_dialog import FormDialog
from oc_tui.screens.host_tab import client_of
from oc_tui.screens.resource import ResourceScreen
from oc_tui.widgets.formatting import host_markup, relative_time
from oc_tui.widgets.resource_table import Column
from oc_tui.widgets.text_entry import Input

if TYPE_CHECKING:
    from textual.app import App

    from oc_tui.api import OpenComputersClient
    from oc_tui.widgets.resource_table import ResourceTable

Call = Callable[["OpenComputersClient"], Awaitable[Any]]
TENANT, HOST, SHADOWED = "tenant", "host", "tenant (shadowed)"
"""The scope column's words: a tenant secret, a host's own, a tenant secret the host's own hides."""


def scope_of(secret: Any) -> str:
    """The scope a listed secret shows (:func:`host_secrets` marks shadowed ones)."""
    return str(getattr(secret, "scope", None) or (HOST if secret.host_id else TENANT))


COLUMNS: tuple[Column, ...] = (
    Column("name", "Name", lambda s, _: s.name),
    Column("scope", "Scope", lambda s, _: scope_of(s)),
    Column("description", "Description", lambda s, _: s.description or ""),
    Column("updated", "Updated", lambda s, now: relative_time(s.updated_at, now)),
)


async def tenant_secrets(client: OpenComputersClient) -> list[Secret]:
    """The tenant's secrets (``:secrets``)."""
    return await client.list_secrets()


async def host_secrets(client: OpenComputersClient, host_id: str) -> list[Secret]:
    """What a job on the host can name: the host's own secrets, then the tenant's (a tenant secret whose
    name the host also has is marked shadowed: the host's wins)."""
    own = await client.list_secrets(host_id)
    names = {secret.name for secret in own}
    shared = [
        secret.model_copy(update={"scope": SHADOWED if secret.name in names else TENANT})
        for secret in await client.list_secrets()
    ]
    return [*(secret.model_copy(update={"scope": HOST}) for secret in own), *shared]


@dataclass
class SecretFields:
    """The form's values: what to send (None: leave as it is)."""

    name: str
    value: str | None
    description: str | None


class SecretForm(FormDialog[Secret]):
    """Create a secret (of ``host_id``, or of the tenant when None), or change ``secret``'s value or
    description. The value field is masked and, when editing, empty means "keep the value"."""

    FAILURE_TITLE = "Secret not saved"
    NEEDS_CLIENT = True

    def __init__(
        self, client: OpenComputersClient | None, host_id: str | None, secret: Secret | None = None
    ) -> None:
        super().__init__(client)
        self.host_id = host_id
        self.secret = secret

    def compose(self) -> ComposeResult:
        editing = self.secret
        where = "this host" if self.host_id else "the tenant"
        with Vertical(classes="dialog"):
            title = f"Edit secret {editing.name}" if editing else f"New secret of {where}"
            yield Label(title, classes="dialog-title", markup=False)
            if editing is None:
                yield Label("Name (the job's environment variable)", classes="field-label")
                yield Input(placeholder="e.g. GITHUB_TOKEN", id="name", compact=True)
            hint = "Value (hidden" + ("; empty keeps the current one)" if editing else ")")
            yield Label(hint, classes="field-label -spaced")
            yield Input(password=True, id="value", compact=True)
            yield Label("Description (optional)", classes="field-label -spaced")
            description = editing.description or "" if editing else ""
            yield Input(description, placeholder="e.g. CI token", id="description", compact=True)
            yield from self.compose_footer("Save" if editing else "Create")

    def fields(self) -> SecretFields | None:
        name = self.secret.name if self.secret else self.query_one("#name", Input).value.strip()
        if len(name) > MAX_SECRET_NAME or not SECRET_NAME_RE.match(name):
            self.show_error("the name must be letters, digits and _, not starting with a digit")
            self.query_one("#name", Input).focus()
            return None
        value = self.query_one("#value", Input).value or None
        if value is None and self.secret is None:
            self.show_error("a new secret needs a value")
            self.query_one("#value", Input).focus()
            return None
        description = self.query_one("#description", Input).value.strip()
        return SecretFields(name, value, description or None)

    async def send(self, fields: SecretFields) -> Secret:
        assert self.client is not None  # NEEDS_CLIENT
        if self.secret is None:
            return await self.client.create_secret(
                fields.name, fields.value or "", description=fields.description, host_id=self.host_id
            )
        changed_description = fields.description != (self.secret.description or None)
        return await self.client.update_secret(
            self.secret.id,
            value=fields.value,
            description=(fields.description or "") if changed_description else None,
            host_id=self.secret.host_id,
        )

    def sent(self, result: Any) -> None:
        self.query_one("#value", Input).value = ""  # the typed value leaves the screen with the form
        super().sent(result)


class SecretActions(Widget):
    """New, edit and delete on a list of secrets (a mixin for a tab or a screen that lists them). List
    it after the main base, as :class:`~oc_tui.screens.tunnel_actions.TunnelActions`."""

    SECRET_BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_secret", "New"),
        Binding("e", "edit_secret", "Edit"),
        Binding("delete,x", "delete_secret", "Delete"),
        Binding("r", "reload", "Reload"),
    ]
    secrets_host: str | None = None
    """The host whose secrets are listed (new ones are its own), None for the tenant's."""

    if TYPE_CHECKING:  # provided by the class this is mixed into (declared only, so nothing shadows it)

        @property
        def table(self) -> ResourceTable: ...

        def action_reload(self) -> None: ...

    def secret_call(self, action: str, call: Call) -> None:
        """Run ``call(client)`` in a worker (errors are notified with ``action``), then reload."""
        raise NotImplementedError

    @property
    def selected(self) -> Secret | None:
        """The secret under the cursor."""
        chosen = self.table.selected_id
        return next((s for s in self.table.items if s.id == chosen), None)

    def saved(self, secret: Secret | None) -> None:
        """The form created or changed ``secret`` (None: cancelled)."""
        if secret is not None:
            name = host_markup(secret.name)
            self.notify(f"{name}: a job gets it as ${name} with --secret {name}", title="Secret saved")
            self.action_reload()

    def action_new_secret(self) -> None:
        """Open the form for a new secret."""
        self.app.push_screen(SecretForm(client_of(self), self.secrets_host), self.saved)

    def action_edit_secret(self) -> None:
        """Open the form for the selected secret (a new value, or description)."""
        secret = self.selected
        if secret is not None:
            self.app.push_screen(SecretForm(client_of(self), secret.host_id, secret), self.saved)

    def action_delete_secret(self) -> None:
        """Ask, then delete the selected secret."""
        secret = self.selected
        if secret is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.secret_call(
                    "delete secret",
                    lambda client: client.delete_secret(secret.id, host_id=secret.host_id),
                )

        name = host_markup(secret.name)
        if secret.host_id:
            text = f"Its value is gone for good. Jobs on this host that name {name} get the tenant's, if any."
        else:
            text = f"Its value is gone for good. Jobs that name {name} fail to start (unless their host has its own)."
        self.app.push_screen(
            ConfirmScreen(f"Delete secret {host_markup(secret.name)}?", text, "Delete"), answered
        )


class SecretsScreen(ResourceScreen, SecretActions):
    """``:secrets``: the tenant's secrets; ``live``: False in tests and screenshots."""

    BINDINGS: ClassVar[list[BindingType]] = SecretActions.SECRET_BINDINGS

    def __init__(self, *, live: bool = True, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(":secrets", "secrets", COLUMNS, tenant_secrets, clock=clock, live=live)

    def secret_call(self, action: str, call: Call) -> None:
        """Run a change in a worker, then list again (an API error is a notification)."""
        self.run_change(action, call)


def open_secrets(app: App[Any]) -> None:
    """Show ``:secrets``."""
    app.push_screen(
        SecretsScreen(live=bool(getattr(app, "networked", True)), clock=getattr(app, "clock", utcnow))
    )
