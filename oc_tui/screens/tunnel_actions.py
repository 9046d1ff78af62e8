"""What can be done to the selected tunnel, shared by the host screen's Tunnels tab and the ``:tunnels``
view: edit, switch on/off, delete (asks first), copy the URL, open the inspector.

A class that mixes :class:`TunnelActions` in has a ``table`` (a ``ResourceTable`` of tunnels), a
``live`` flag, ``action_reload()``, and says how it runs a call (:meth:`TunnelActions.tunnel_call`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

from textual.binding import Binding, BindingType
from textual.widget import Widget

from oc_tui.api.models import Tunnel
from oc_tui.readonly import ReadOnlyGuard
from oc_tui.screens.confirm import ConfirmScreen
from oc_tui.screens.host_tab import client_of
from oc_tui.screens.tunnel_inspector import TunnelInspectorScreen
from oc_tui.screens.tunnels import TunnelForm
from oc_tui.widgets.clipboard import copy_text

if TYPE_CHECKING:
    from oc_tui.api import OpenComputersClient
    from oc_tui.widgets.resource_table import ResourceTable

Call = Callable[["OpenComputersClient"], Awaitable[Any]]


class TunnelActions(ReadOnlyGuard, Widget):
    """The actions on the selected tunnel (a mixin for a tab or a screen that lists tunnels). List it
    after the main base (``class TunnelsTab(HostTab, TunnelActions)``): Textual's type selectors and
    ``query(HostTab)`` follow the first base."""

    TUNNEL_BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "edit_tunnel", "Edit"),
        Binding("space", "toggle_tunnel", "On/off"),
        Binding("delete,x", "delete_tunnel", "Delete"),
        Binding("c", "copy_url", "Copy URL"),
        Binding("i", "inspect", "Inspect"),
    ]
    live: bool

    if TYPE_CHECKING:  # provided by the class this is mixed into (declared only, so nothing shadows it)

        @property
        def table(self) -> ResourceTable: ...

        def action_reload(self) -> None: ...

    def tunnel_call(self, action: str, call: Call) -> None:
        """Run ``call(client)`` in a worker (errors are notified with ``action``), then reload."""
        raise NotImplementedError

    @property
    def selected(self) -> Tunnel | None:
        """The tunnel under the cursor."""
        chosen = self.table.selected_id
        return next((t for t in self.table.items if t.id == chosen), None)

    def saved(self, tunnel: Tunnel | None) -> None:
        """The form created or changed ``tunnel`` (None: cancelled)."""
        if tunnel is not None:
            self.notify(f"{tunnel.public_url}", title=f"Tunnel {tunnel.slug} saved")
            self.action_reload()

    def action_edit_tunnel(self) -> None:
        """Open the form for the selected tunnel."""
        tunnel = self.selected
        if tunnel is not None:
            self.app.push_screen(TunnelForm(client_of(self), tunnel.host_id, tunnel), self.saved)

    def action_toggle_tunnel(self) -> None:
        """Enable the selected tunnel if it is disabled, else disable it (its connections end)."""
        tunnel = self.selected
        if tunnel is not None:
            self.tunnel_call(
                "switch tunnel",
                lambda client: client.update_tunnel(tunnel.host_id, tunnel.id, enabled=not tunnel.enabled),
            )

    def action_delete_tunnel(self) -> None:
        """Ask, then delete the selected tunnel (its URL stops answering, open connections end)."""
        tunnel = self.selected
        if tunnel is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.tunnel_call(
                    "delete tunnel", lambda client: client.delete_tunnel(tunnel.host_id, tunnel.id)
                )

        text = f"{tunnel.public_url} stops answering and its open connections end."
        self.app.push_screen(ConfirmScreen(f"Delete tunnel {tunnel.slug}?", text, "Delete"), answered)

    def action_copy_url(self) -> None:
        """Copy the selected tunnel's URL to the clipboard (OSC 52)."""
        tunnel = self.selected
        if tunnel is not None:
            copy_text(self, tunnel.public_url, "URL")

    def action_inspect(self) -> None:
        """Open the selected tunnel's inspector: its requests, live, and replay."""
        tunnel = self.selected
        if tunnel is not None:
            self.app.push_screen(TunnelInspectorScreen(tunnel, live=self.live))
