"""``:agents``: the AI agent sessions of the whole fleet (each host's newest, with the host named) in the
generic resource screen; ``enter`` opens a session's live log, ``x`` cancels it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from textual.binding import BindingType

from oc_tui.api.models import utcnow
from oc_tui.screens.agents import FLEET_COLUMNS, all_sessions
from oc_tui.screens.agents_tab import SessionActions
from oc_tui.screens.resource import ResourceScreen

if TYPE_CHECKING:
    from textual.app import App


class AgentsScreen(ResourceScreen, SessionActions):
    """The fleet's agent sessions; ``live``: False in tests and screenshots (rows come as messages)."""

    BINDINGS: ClassVar[list[BindingType]] = SessionActions.SESSION_BINDINGS

    def __init__(self, *, clock: Callable[[], datetime] = utcnow, live: bool = True) -> None:
        super().__init__(":agents", "agents", FLEET_COLUMNS, all_sessions, clock=clock, live=live)
        self.live = live


def open_agents(app: App[Any]) -> None:
    """Show ``:agents``."""
    clock = getattr(app, "clock", utcnow)  # the app's (fixed in tests and screenshots): ages are stable
    app.push_screen(AgentsScreen(clock=clock, live=bool(getattr(app, "networked", True))))
