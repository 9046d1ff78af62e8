"""``:tunnels``: every tunnel of the fleet (each host's, with the host named) in the generic resource
screen, with the Tunnels tab's actions on the selected one (edit, on/off, delete, copy URL, inspect)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.binding import BindingType

from oc_tui.screens.resource import ResourceScreen
from oc_tui.screens.tunnel_actions import Call, TunnelActions
from oc_tui.screens.tunnels import FLEET_COLUMNS, all_tunnels

if TYPE_CHECKING:
    from textual.app import App


class TunnelsScreen(ResourceScreen, TunnelActions):
    """The fleet's tunnels; ``live``: False in tests and screenshots (rows come as messages)."""

    BINDINGS: ClassVar[list[BindingType]] = TunnelActions.TUNNEL_BINDINGS

    def __init__(self, *, live: bool = True) -> None:
        super().__init__(":tunnels", "tunnels", FLEET_COLUMNS, all_tunnels, live=live)
        self.live = live

    def tunnel_call(self, action: str, call: Call) -> None:
        """Run a change in a worker, then list again (an API error is a notification)."""
        self.change(action, call)


def open_tunnels(app: App[Any]) -> None:
    """Show ``:tunnels``."""
    app.push_screen(TunnelsScreen(live=bool(getattr(app, "networked", True))))
