"""One host, in tabs: one per entry of :data:`HOST_TABS`; the rest of the host's features are listed
as disabled tabs until they exist, so the layout will not shift when they arrive.

:data:`HOST_TABS` is the one list of host tabs: it builds this screen's panes, its keys (one per tab)
and the tabs' sections of ``?`` (:func:`help_sections`). A new tab is a :class:`HostTab` subclass in its
own module plus one line here.

Opened with ``enter`` from the fleet view; ``esc`` goes back. The fleet screen stays underneath and
keeps receiving host events: fresh ``Host`` records reach this screen as :class:`HostScreen.HostUpdated`
messages, through the signal the fleet publishes them on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.signal import Signal
from textual.widgets import Input, Static, TabbedContent, TabPane, Tabs, TextArea

from oc_tui.api.models import Host
from oc_tui.screens.agents_tab import AgentsTab
from oc_tui.screens.desktop_tab import DesktopTab
from oc_tui.screens.files_tab import FilesTab
from oc_tui.screens.host_tab import HelpRows, HostTab, HostTabContext
from oc_tui.screens.jobs_tab import JobsTab
from oc_tui.screens.overview_tab import OverviewTab
from oc_tui.screens.secrets_tab import SecretsTab
from oc_tui.screens.terminal_tab import TerminalTab
from oc_tui.screens.tunnels_tab import TunnelsTab
from oc_tui.widgets.formatting import host_markup, status_label
from oc_tui.widgets.key_capture import KeyCapture
from oc_tui.widgets.keys_footer import KeysFooter
from oc_tui.widgets.statuses import status_classes

HOST_TABS: Sequence[type[HostTab]] = (
    OverviewTab,
    JobsTab,
    FilesTab,
    TerminalTab,
    DesktopTab,
    TunnelsTab,
    AgentsTab,
    SecretsTab,
)
"""The host's tabs, in order: panes, keys and ``?`` come from this list."""
COMING: tuple[str, ...] = ()
"""Tabs of the design that are not built yet: shown disabled."""
BACK_RETRY = 0.02
"""Seconds between looks whether the screen can be left (its tab strips mounted)."""
SWITCH_ROW = ("← →", "Switch tab (when the tab strip has the focus)")


class HostScreen(Screen[None]):
    """Tabs of one host; ``tab`` is the one shown first (``overview`` or ``jobs``)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        *(tab.binding() for tab in HOST_TABS),
    ]

    @dataclass
    class HostUpdated(Message):
        """A fresh record of a host (from the fleet's live events); this screen takes its own."""

        host: Host

    def __init__(
        self,
        host: Host,
        context: HostTabContext,
        *,
        tab: str = "overview",
        updates: Signal[Host] | None = None,
    ) -> None:
        """``context``: what the tabs are built from; ``updates``: where fresh host records are
        published (the fleet's signal)."""
        super().__init__()
        self.host = host
        self._tab_context = context
        self._tab = tab
        self._updates = updates

    def compose(self) -> ComposeResult:
        yield Static(id="host-info")
        with TabbedContent(initial=self._tab, id="host-tabs"):
            for tab in HOST_TABS:
                with TabPane(tab.TITLE, id=tab.TAB_ID):
                    if tab is OverviewTab:
                        yield OverviewTab(self._tab_context, self.host, id="overview-tab")
                    else:
                        yield tab(self._tab_context, id=f"{tab.TAB_ID}-tab")
            for name in COMING:
                with TabPane(name, id=name.lower(), disabled=True):
                    yield Static(f"{name}: not yet available", classes="coming")
        yield KeysFooter()

    def on_mount(self) -> None:
        self._update_info()
        if self._updates is not None:
            self._updates.subscribe(self, lambda host: self.post_message(self.HostUpdated(host)))
        self._focus_tab(self._tab)

    @property
    def jobs(self) -> JobsTab:
        return self.query_one(JobsTab)

    def on_host_screen_host_updated(self, message: HostUpdated) -> None:
        if message.host.id == self.host.id:
            self.update_host(message.host)

    def update_host(self, host: Host) -> None:
        """A fresh record of this host. It may arrive while the screen's widgets are still being
        mounted, or already being removed (the screen closing): what is not there is skipped, and
        shows the record once it is."""
        self.host = host
        for overview in self.query(OverviewTab):
            overview.show_host(host)
        self._update_info()

    @on(TabbedContent.TabActivated, "#host-tabs")
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # Only the tab that is active now takes the focus. Under key repeat (→ held on the tab strip)
        # activations queue up; acting on a stale one focuses a widget in a pane no longer shown,
        # TabbedContent answers that focus by making its pane active again, which focuses again: an
        # endless flip between tabs. Ignoring stale activations lets the last one win.
        if event.pane.id == event.tabbed_content.active:
            self._focus_tab(event.pane.id or "")

    async def action_back(self) -> None:
        """``esc``: back to the fleet, once this screen is mounted (with it all its widgets). Textual's
        ``Tabs`` raises from its mount handler when removed before that ran: ``enter`` then ``esc``
        in one burst."""
        if self.is_mounted:
            await self.app.run_action("app.back")
        else:
            self.set_timer(BACK_RETRY, self.action_back)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The tab keys are off while the keyboard belongs to text: an input field, or a terminal or
        desktop that captures every key (they then reach what has the focus)."""
        focused = self.focused
        typing = isinstance(focused, (Input, TextArea, KeyCapture)) or getattr(focused, "takes_text", False)
        if action == "show_tab" and typing:
            return False
        return True

    def action_show_tab(self, tab: str) -> None:
        for tabbed in self.query(TabbedContent):
            tabbed.active = tab
        self._focus_tab(tab)

    def _focus_tab(self, tab_id: str) -> None:
        """The tab decides where the focus goes (:meth:`HostTab.activate`); when it takes none, the tab
        strip has it, so ← → switch tabs. Nothing happens while the screen is not all there (being
        mounted or closed)."""
        tab = next((tab for tab in self.query(HostTab) if tab.TAB_ID == tab_id), None)
        if tab is not None and tab.is_mounted and tab.activate():
            return
        strip = next(iter(self.query(Tabs)), None)  # the host's tab strip (the terminal's comes after)
        if strip is not None:
            strip.focus()

    def _update_info(self) -> None:
        host = self.host
        info = next(iter(self.query("#host-info").results(Static)), None)
        if info is None:
            return
        for status, on_ in status_classes("hosts", host.status):
            info.set_class(on_, status)
        info.update(f"{status_label(host.status)}  {host_markup(host.name)}  ·  {host_markup(host.id)}")


def help_sections(rows: Callable[[Sequence[BindingType]], list[tuple[str, str]]]) -> list[HelpSection]:
    """The host screen's sections of ``?``: one per tab that has one, the screen's own keys in the
    first. ``rows``: how the app turns bindings into rows."""
    sections: list[HelpSection] = []
    for tab in HOST_TABS:
        if not tab.IN_HELP:
            continue
        tab_rows = [*tab.HELP_ROWS, *rows(tab.BINDINGS), *tab.HELP_ROWS_AFTER]
        if not sections:
            tab_rows = [*rows(HostScreen.BINDINGS), SWITCH_ROW, *tab_rows]
        sections.append((tab.HELP_TITLE or f"Host · {tab.TITLE} tab", tab_rows))
    return sections


HelpSection = tuple[str, HelpRows]
