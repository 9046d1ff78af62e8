"""``:agents``: the AI agent sessions of the whole fleet (each host's newest, with the host named) in the
generic resource screen; ``enter`` opens a session's live log, ``x`` cancels it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.binding import BindingType

from oc_tui.api import errors
from oc_tui.screens.agents import FLEET_COLUMNS, all_sessions
from oc_tui.screens.agents_tab import Call, SessionActions
from oc_tui.screens.host_tab import client_of
from oc_tui.screens.resource import ResourceScreen
from oc_tui.widgets.formatting import describe_error, host_markup

if TYPE_CHECKING:
    from textual.app import App


class AgentsScreen(ResourceScreen, SessionActions):
    """The fleet's agent sessions; ``live``: False in tests and screenshots (rows come as messages)."""

    BINDINGS: ClassVar[list[BindingType]] = SessionActions.SESSION_BINDINGS

    def __init__(self, *, live: bool = True) -> None:
        super().__init__(":agents", "agents", FLEET_COLUMNS, all_sessions, live=live)
        self.live = live

    def run_call(self, action: str, call: Call) -> None:
        """Run a change in a worker, then list again (an API error is a notification)."""

        async def run() -> None:
            client = client_of(self)
            try:
                if client is None:
                    raise errors.ConnectionFailed("not connected yet")
                await call(client)
            except errors.OpenComputersError as exc:
                self.notify(
                    f"{action}: {host_markup(describe_error(exc))}", title="Request failed", severity="error"
                )
                return
            self.action_reload()

        self.run_worker(run(), name=action, group="change", exit_on_error=False)


def open_agents(app: App[Any]) -> None:
    """Show ``:agents``."""
    app.push_screen(AgentsScreen(live=bool(getattr(app, "networked", True))))
