"""One host, in tabs: Overview (the detail pane, bigger) and Jobs; the rest of the host's features
are listed as disabled tabs until they exist, so the layout will not shift when they arrive.

Opened with ``enter`` from the fleet view; ``esc`` goes back. The fleet screen stays underneath and
keeps receiving host events: it hands fresh ``Host`` records to this screen (:meth:`update_host`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane, Tabs

from oc_tui.api import OpenComputersClient, errors
from oc_tui.api.models import Host, HostSysInfo
from oc_tui.screens.desktop_tab import DesktopTab
from oc_tui.screens.errors import describe_error
from oc_tui.screens.files_tab import FilesTab
from oc_tui.screens.jobs_tab import JobsTab
from oc_tui.screens.terminal_tab import TerminalTab
from oc_tui.widgets.command_line import CommandLine
from oc_tui.widgets.formatting import status_label
from oc_tui.widgets.host_detail import HostDetail

COMING = ("Tunnels", "Agents", "Secrets")
"""Tabs of the design that are not built yet: shown disabled."""
SYSINFO_SECONDS = 10.0
SESSION_TABS = {"files": FilesTab, "terminal": TerminalTab, "desktop": DesktopTab}
"""Tabs that decide themselves where focus goes when shown (``activate()``)."""


class HostScreen(Screen[None]):
    """Tabs of one host; ``tab`` is the one shown first (``overview`` or ``jobs``)."""

    BINDINGS = [
        Binding("escape", "app.back", "Back"),
        Binding("o", "show_tab('overview')", "Overview"),
        Binding("j", "show_tab('jobs')", "Jobs"),
        Binding("f", "show_tab('files')", "Files"),
        Binding("t", "show_tab('terminal')", "Terminal"),
        Binding("d", "show_tab('desktop')", "Desktop"),
    ]

    @dataclass
    class SysInfoLoaded(Message):
        info: HostSysInfo | str

    def __init__(
        self,
        host: Host,
        history: list[str],
        clock: Callable[[], datetime],
        *,
        tab: str = "overview",
        live: bool = True,
    ) -> None:
        super().__init__()
        self.host = host
        self._history = history
        self._clock = clock
        self._tab = tab
        self._live = live

    def compose(self) -> ComposeResult:
        yield Static(id="host-info")
        with TabbedContent(initial=self._tab, id="host-tabs"):
            with TabPane("Overview", id="overview"):
                yield HostDetail(self._clock, id="host-detail")
            with TabPane("Jobs", id="jobs"):
                yield JobsTab(self.host.id, self._history, self._clock, live=self._live, id="jobs-tab")
            with TabPane("Files", id="files"):
                yield FilesTab(self.host.id, live=self._live, id="files-tab")
            with TabPane("Terminal", id="terminal"):
                yield TerminalTab(self.host.id, live=self._live, id="terminal-tab")
            with TabPane("Desktop", id="desktop"):
                yield DesktopTab(self.host.id, live=self._live, id="desktop-tab")
            for name in COMING:
                with TabPane(name, id=name.lower(), disabled=True):
                    yield Static(f"{name}: not yet available", classes="coming")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(HostDetail).host = self.host
        self._update_info()
        if self._live:
            self.fetch_sysinfo()
            self.set_interval(SYSINFO_SECONDS, self.fetch_sysinfo)
        self._focus_tab(self._tab)

    @property
    def client(self) -> OpenComputersClient | None:
        return getattr(self.app, "client", None)

    @property
    def jobs(self) -> JobsTab:
        return self.query_one(JobsTab)

    def update_host(self, host: Host) -> None:
        """A fresh record of this host (from the fleet's live events)."""
        self.host = host
        self.query_one(HostDetail).host = host
        self._update_info()

    @work(exclusive=True, group="sysinfo", exit_on_error=False)
    async def fetch_sysinfo(self) -> None:
        client = self.client
        if client is None or self.host.status != "online":
            return
        try:
            info: HostSysInfo | str = await client.host_sysinfo(self.host.id)
        except errors.ConnectionFailed:
            info = "control plane unreachable"
        except errors.OpenComputersError as exc:
            info = f"unavailable: {describe_error(exc)}"
        self.post_message(self.SysInfoLoaded(info))

    def on_host_screen_sys_info_loaded(self, message: SysInfoLoaded) -> None:
        self.query_one(HostDetail).sysinfo = message.info

    @on(TabbedContent.TabActivated, "#host-tabs")
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._focus_tab(event.pane.id or "")

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self._focus_tab(tab)

    def _focus_tab(self, tab: str) -> None:
        """Jobs: the command line, ready to type; files, terminal, desktop: the tab's own choice;
        elsewhere the tab strip, so ← → switch tabs."""
        if tab == "jobs":
            self.query_one(CommandLine).focus()
        elif tab in SESSION_TABS:
            self.query_one(SESSION_TABS[tab]).activate()
        else:
            self.query_one(Tabs).focus()

    def _update_info(self) -> None:
        host = self.host
        info = self.query_one("#host-info", Static)
        for status in ("online", "offline", "pending", "revoked", "error"):
            info.set_class(host.status == status, f"-{status}")
        info.update(f"{status_label(host.status)}  {host.name}  ·  {host.id}")
