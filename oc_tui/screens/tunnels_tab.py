"""The Tunnels tab of a host: its tunnels (status, slug, port, auth, requests per minute, URL), and keys
to create, edit, enable/disable, delete and copy the URL of the selected one.

Workers talk to the client and post :class:`TunnelsTab.TunnelsLoaded`; the handler only fills the table.
While the tab is shown the list is reloaded every ``POLL_SECONDS`` (requests per minute move). Tests and
the screenshot script post fixed models through the same message (``live=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Static

from oc_tui.api.models import Tunnel
from oc_tui.screens.host_tab import HostTabContext, ResourceTab
from oc_tui.screens.tunnel_actions import Call, TunnelActions
from oc_tui.screens.tunnels import COLUMNS, TunnelForm
from oc_tui.widgets.resource_table import ResourceTable


class TunnelsTab(ResourceTab, TunnelActions):
    """A host's ports served at URLs of the control plane."""

    TAB_ID = "tunnels"
    TITLE = "Tunnels"
    KEY = "u"
    POLL_SECONDS = 5.0  # requests per minute move
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_tunnel", "New"),
        *TunnelActions.TUNNEL_BINDINGS,
        Binding("r", "reload", "Reload"),
    ]

    @dataclass
    class TunnelsLoaded(Message):
        tunnels: list[Tunnel]

    def __init__(self, context: HostTabContext, *, id: str | None = None) -> None:
        super().__init__(context, id=id)
        self._clock = context.clock

    def compose(self) -> ComposeResult:
        yield ResourceTable("tunnels", COLUMNS, self._clock, id="tunnel-list")
        yield Static("", id="tunnel-hint", markup=False)

    def on_mount(self) -> None:
        self.table.border_title = "tunnels"

    # --- actions -----------------------------------------------------------------------------------

    def action_reload(self) -> None:
        """List the host's tunnels again."""
        self.request(
            "list tunnels",
            lambda client: client.list_tunnels(self.host_id),
            lambda tunnels: self.post_message(self.TunnelsLoaded(tunnels)),
            group="list",
            exclusive=True,
        )

    def action_new_tunnel(self) -> None:
        """Open the form for a new tunnel."""
        self.app.push_screen(TunnelForm(self.client, self.host_id), self.saved)

    def tunnel_call(self, action: str, call: Call) -> None:
        """Run a change with the tab's request worker, then list again."""
        self.request(action, call, lambda _: self.action_reload(), group="change", needs_client=True)

    def on_tunnels_tab_tunnels_loaded(self, message: TunnelsLoaded) -> None:
        self.table.show(message.tunnels)
        hint = "" if message.tunnels else "No tunnels yet: n serves a port of this host at a URL."
        self.query_one("#tunnel-hint", Static).update(hint)
