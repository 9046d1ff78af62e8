"""Host → Overview tab: the host's record and its live facts (the fleet's detail pane, bigger).

The live facts are fetched every ``SYSINFO_SECONDS`` while the host is online; a fresh record of the
host arrives from the host screen (:meth:`OverviewTab.show_host`).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.message import Message

from oc_tui.api.models import Host, HostSysInfo
from oc_tui.hosts_model import load_sysinfo
from oc_tui.screens.host_tab import HostTab, HostTabContext
from oc_tui.widgets.host_detail import HostDetail

SYSINFO_SECONDS = 10.0


class OverviewTab(HostTab):
    """The detail of one host."""

    TAB_ID = "overview"
    TITLE = "Overview"
    KEY = "o"
    IN_HELP = False

    @dataclass
    class SysInfoLoaded(Message):
        """Live facts of the host, or why there are none."""

        info: HostSysInfo | str

    def __init__(self, context: HostTabContext, host: Host, *, id: str | None = None) -> None:
        super().__init__(context, id=id)
        self._host = host

    def compose(self) -> ComposeResult:
        yield HostDetail(self.tab_context.clock, id="host-detail")

    def on_mount(self) -> None:
        self.show_host(self._host)
        if self.live:
            self.fetch_sysinfo()
            self.set_interval(SYSINFO_SECONDS, self.fetch_sysinfo)

    def show_host(self, host: Host) -> None:
        """A fresh record of the host (kept until the detail is mounted, which then shows it)."""
        self._host = host
        for detail in self.query(HostDetail):
            detail.host = host

    def fetch_sysinfo(self) -> None:
        """Ask for the host's live facts (only while it is online)."""
        if self._host.status != "online":
            return
        host_id = self._host.id
        self.request(
            "sysinfo",
            lambda client: load_sysinfo(client, host_id),
            lambda info: self.post_message(self.SysInfoLoaded(info)),
            group="sysinfo",
            exclusive=True,
        )

    def on_overview_tab_sys_info_loaded(self, message: SysInfoLoaded) -> None:
        for detail in self.query(HostDetail):  # none while the screen closes
            detail.sysinfo = message.info
