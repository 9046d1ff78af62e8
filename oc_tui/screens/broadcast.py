"""A terminal on each of several hosts, side by side, with opt-in input broadcast (as ``pssh -I`` or
tmux's synchronize-panes).

``T`` in the fleet asks first (naming the count and the hosts), then opens one terminal per marked host.
Keys go to the focused terminal; ``ctrl+]`` gives the keyboard back to the screen, where ``b`` turns
broadcast on or off — while it is on, a banner says so and what is typed in any terminal goes to every
one — ``tab`` moves between terminals, ``enter`` goes back into one, ``esc`` closes them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from oc_tui.api.models import Host
from oc_tui.readonly import ReadOnlyGuard
from oc_tui.screens.terminal_tab import TerminalPane
from oc_tui.widgets.formatting import host_markup
from oc_tui.widgets.terminal import TerminalView

MAX_TERMINALS = 16


class BroadcastScreen(ReadOnlyGuard, Screen[None]):
    """One terminal per host; ``broadcast`` sends what is typed to all of them."""

    OWNS_TAB = True
    """Tab goes round the terminals here (the app's priority tab gives way)."""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.back", "Close all"),
        Binding("b", "toggle_broadcast", "Broadcast on/off"),
        Binding("enter", "enter_terminal", "Into the terminal"),
        Binding("tab", "next_terminal", "Next", show=False),
    ]

    def __init__(self, hosts: Sequence[Host], *, live: bool = True) -> None:
        super().__init__()
        self.hosts = list(hosts)[:MAX_TERMINALS]
        self.live = live
        self.broadcast = False
        self._current = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="broadcast-banner")
        with Grid(id="broadcast-grid"):
            for number, host in enumerate(self.hosts, start=1):
                with Vertical(classes="broadcast-cell") as cell:
                    cell.border_title = host_markup(host.name)
                    yield TerminalPane(host.id, number, live=self.live)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        grid = self.query_one("#broadcast-grid", Grid)
        grid.styles.grid_size_columns = 1 if len(self.hosts) == 1 else 2
        for pane in self.panes:
            pane.on_typed = self._typed
        self._show_banner()
        if self.panes:
            self.panes[0].view.focus()

    @property
    def panes(self) -> list[TerminalPane]:
        """The terminals, in host order."""
        return list(self.query(TerminalPane))

    def _typed(self, source: TerminalPane, data: bytes) -> bool:
        if not self.broadcast:
            return False
        for pane in self.panes:
            pane.send_keys(data)
        return True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While a terminal has the keyboard, its keys (enter, b, tab) are the shell's, not the screen's."""
        if action in ("enter_terminal", "next_terminal", "toggle_broadcast") and isinstance(
            self.focused, TerminalView
        ):
            return False
        return super().check_action(action, parameters)

    @on(TerminalView.Escaped)
    def _escaped(self) -> None:
        self.set_focus(None)  # the keyboard is the screen's: b, tab, enter, esc

    def action_toggle_broadcast(self) -> None:
        """Turn input broadcast on or off (off at first: an explicit opt-in)."""
        self.broadcast = not self.broadcast
        self._show_banner()

    def action_enter_terminal(self) -> None:
        if self.panes:
            self.panes[self._current % len(self.panes)].view.focus()

    def action_next_terminal(self) -> None:
        if self.panes:
            self._current = (self._current + 1) % len(self.panes)
            self.panes[self._current].view.focus()

    def _show_banner(self) -> None:
        banner = self.query_one("#broadcast-banner", Static)
        count = len(self.hosts)
        banner.set_class(self.broadcast, "-on")
        if self.broadcast:
            banner.update(f"BROADCAST ON — what you type goes to all {count} terminals  (ctrl+] then b: off)")
        else:
            banner.update(
                f"{count} terminals · keys go to the focused one  (ctrl+] then b: broadcast to all)"
            )
