"""Tunnels in the TUI, shared by the host screen's Tunnels tab and the ``:tunnels`` view: the table's
columns, the fleet-wide lister, and the create/edit form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Select

from oc_tui.api.models import SLUG_PATTERN, Tunnel, TunnelAuthMode
from oc_tui.screens.form_dialog import FormDialog
from oc_tui.widgets.resource_table import HOST_COLUMN, STATUS, Column
from oc_tui.widgets.text_entry import Input

if TYPE_CHECKING:
    from oc_tui.api import OpenComputersClient

AUTH_MODES: tuple[tuple[str, TunnelAuthMode], ...] = (
    ("public: anyone with the URL", "public"),
    ("tenant_only: this tenant's API token", "tenant_only"),
    ("password: HTTP basic auth", "password"),
)


COLUMNS: tuple[Column, ...] = (
    Column(STATUS, "Status", lambda t, _: t.status),
    Column("slug", "Slug", lambda t, _: t.slug),
    Column("port", "Port", lambda t, _: str(t.target_port)),
    Column("auth", "Auth", lambda t, _: t.auth_mode),
    Column("rate", "Req/min", lambda t, _: str(getattr(t, "requests_per_minute", 0) or 0)),
    Column("url", "URL", lambda t, _: t.public_url),
)
"""The Tunnels tab's columns (one host)."""
FLEET_COLUMNS: tuple[Column, ...] = (*COLUMNS[:1], HOST_COLUMN, *COLUMNS[1:])
"""The ``:tunnels`` view's columns: every host's tunnels, so the host is named."""


async def all_tunnels(client: OpenComputersClient) -> list[Tunnel]:
    """Every tunnel of the fleet (each host's, hosts in the API's order), each with its ``host_name``."""
    tunnels: list[Tunnel] = []
    for host in await client.all_hosts():
        if host.status == "revoked":
            continue
        for tunnel in await client.list_tunnels(host.id):
            tunnels.append(tunnel.model_copy(update={"host_name": host.name}))
    return tunnels


@dataclass
class TunnelFields:
    """The form's values: what to send (None: leave as it is)."""

    target_port: int
    auth_mode: TunnelAuthMode
    slug: str | None
    password: str | None


class TunnelForm(FormDialog[Tunnel]):
    """Create a tunnel on ``host_id``, or edit ``tunnel`` (port, auth mode, password)."""

    FAILURE_TITLE = "Tunnel not saved"
    NEEDS_CLIENT = True

    def __init__(
        self, client: OpenComputersClient | None, host_id: str, tunnel: Tunnel | None = None
    ) -> None:
        super().__init__(client)
        self.host_id = host_id
        self.tunnel = tunnel

    def compose(self) -> ComposeResult:
        editing = self.tunnel
        with Vertical(classes="dialog"):
            title = f"Edit tunnel {editing.slug}" if editing else "New tunnel"
            yield Label(title, classes="dialog-title", markup=False)
            yield Label("Port on the host (1-65535)", classes="field-label")
            port = str(editing.target_port) if editing else ""
            yield Input(port, placeholder="e.g. 3000", id="port", compact=True, type="integer")
            if editing is None:
                yield Label(
                    "Slug (optional: a DNS label; generated when empty)", classes="field-label -spaced"
                )
                yield Input(placeholder="e.g. my-app-dev", id="slug", compact=True)
            yield Label("Who may open it", classes="field-label -spaced")
            yield Select(
                AUTH_MODES,
                value=editing.auth_mode if editing else "public",
                allow_blank=False,
                id="auth",
                compact=True,
            )
            hint = "Password (password mode" + ("; empty keeps the current one)" if editing else ")")
            yield Label(hint, classes="field-label -spaced")
            yield Input(password=True, id="password", compact=True)
            yield from self.compose_footer("Save" if editing else "Create")

    def fields(self) -> TunnelFields | None:
        port_text = self.query_one("#port", Input).value.strip()
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            self.show_error("the port must be a number from 1 to 65535")
            self.query_one("#port", Input).focus()
            return None
        slug: str | None = None
        if self.tunnel is None:
            slug = self.query_one("#slug", Input).value.strip().lower() or None
            if slug is not None and not SLUG_PATTERN.match(slug):
                self.show_error("the slug must be 1-63 letters, digits and inner hyphens")
                self.query_one("#slug", Input).focus()
                return None
        mode = cast(TunnelAuthMode, self.query_one("#auth", Select).value)
        password = self.query_one("#password", Input).value or None
        had_password = self.tunnel is not None and self.tunnel.auth_mode == "password"
        if mode == "password" and password is None and not had_password:
            self.show_error("password mode needs a password")
            self.query_one("#password", Input).focus()
            return None
        return TunnelFields(int(port_text), mode, slug, password)

    async def send(self, fields: TunnelFields) -> Tunnel:
        assert self.client is not None  # NEEDS_CLIENT
        if self.tunnel is None:
            return await self.client.create_tunnel(
                self.host_id,
                fields.target_port,
                auth_mode=fields.auth_mode,
                slug=fields.slug,
                password=fields.password,
            )
        return await self.client.update_tunnel(
            self.host_id,
            self.tunnel.id,
            target_port=fields.target_port,
            auth_mode=fields.auth_mode,
            password=fields.password,
        )
