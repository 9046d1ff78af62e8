"""The detail pane: everything known about the selected host, plus live facts from its agent.

Static facts come from the ``Host`` record; load, memory and uptime come from ``GET …/sysinfo``
(asked only while the host is online). The screen fetches both and sets :attr:`host` and
:attr:`sysinfo`; this widget only renders.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widgets import Label, Static

from oc_tui.api.models import Host, HostSysInfo
from oc_tui.widgets.formatting import (
    format_bytes,
    format_duration,
    format_timestamp,
    host_markup,
    host_text,
    relative_time,
    status_label,
)
from oc_tui.widgets.labels import format_labels
from oc_tui.widgets.statuses import status_classes
from oc_tui.widgets.styles import text_style


class HostDetail(VerticalScroll):
    """Title line (status + name, coloured by status class) and a key/value body."""

    COMPONENT_CLASSES = {"host-detail--key"}

    host: reactive[Host | None] = reactive(None, init=False)
    sysinfo: reactive[HostSysInfo | str | None] = reactive(None, init=False)
    """The live facts, a short reason why there are none (offline, error), or None (not asked yet)."""

    def __init__(self, clock: Callable[[], datetime], *, id: str | None = None) -> None:
        super().__init__(id=id, can_focus=False)
        self._clock = clock
        self._shape: tuple[int, int] | None = None

    def compose(self) -> ComposeResult:
        yield Label("no host selected", id="detail-title")
        yield Static(id="detail-body")

    def on_mount(self) -> None:
        self._render_host()  # a host set before the title and body were there

    def watch_host(self, old: Host | None, new: Host | None) -> None:
        if old is None or new is None or old.id != new.id:
            self.sysinfo = None
        self._render_host()

    def watch_sysinfo(self) -> None:
        self._render_host()

    def refresh_times(self) -> None:
        self._render_host()

    def _render_host(self) -> None:
        # not there before this pane is composed, nor while it is removed: a fresh host or live facts
        # may arrive then (the host screen opening or closing as the host's status changes)
        title = next(iter(self.query_children("#detail-title").results(Label)), None)
        body = next(iter(self.query_children("#detail-body").results(Static)), None)
        if title is None or body is None:
            return
        host = self.host
        for name, on in status_classes("hosts", host.status if host is not None else ""):
            title.set_class(on, name)  # a no-op when it is already so (no restyle on every move)
        if host is None:
            title.update("no host selected")
            body.update("")
            self._shape = None
            return
        heading = f"{status_label(host.status)}  {host_markup(host.name)}"
        rows = self._rows(host)
        # Moving along the table changes the text, rarely the size: when every line still fits the
        # pane's width and there are as many, the screen is only repainted, not laid out again (a
        # layout of the whole screen per cursor move was most of a page move's cost).
        width = body.content_region.width
        keys = max(len(key) for key, _ in rows) + 1
        fits = bool(width) and all(keys + cell_len(host_text(value)) <= width for _, value in rows)
        fits = fits and cell_len(Text.from_markup(heading).plain) <= title.content_region.width
        shape = (len(rows), width) if fits else None
        layout = shape is None or shape != self._shape
        self._shape = shape
        title.update(heading, layout=layout)
        body.update(self._table(rows), layout=layout)

    def _table(self, rows: list[tuple[str, str]]) -> Table:
        table = Table.grid(padding=(0, 1))
        table.add_column(style=text_style(self, "host-detail--key"), no_wrap=True)
        table.add_column(overflow="fold")
        for key, value in rows:
            table.add_row(key, Text(host_text(value)))  # all but the times are the host's own words
        return table

    def _rows(self, host: Host) -> list[tuple[str, str]]:
        now = self._clock()
        changed = host.status_changed_at or host.updated_at
        rows = [
            ("id", host.id),
            ("status", f"{host.status} since {relative_time(changed, now)}"),
            ("region", host.region or "-"),
            ("labels", format_labels(host.labels) or "-"),
            ("created", format_timestamp(host.created_at)),
            # online: connected now (the record's last_seen_at is written at most every 30 s, so its
            # age would claim a silence that is not there)
            ("last seen", "now (connected)" if host.status == "online" else _seen(host.last_seen_at, now)),
        ]
        agent = host.agent
        if agent is not None:
            rows += [
                ("hostname", agent.hostname or "-"),
                ("os", " ".join(filter(None, [agent.os, agent.os_release])) or "-"),
                ("arch", agent.arch or "-"),
                ("agent", agent.agent_version or "-"),
            ]
        rows += self._live_rows()
        return rows

    def _live_rows(self) -> list[tuple[str, str]]:
        info = self.sysinfo
        if info is None:
            return []
        if isinstance(info, str):
            return [("live", info)]
        load = " ".join(f"{value:.2f}" for value in info.load_avg) if info.load_avg else "-"
        memory = "-"
        if info.mem_total:
            used = info.mem_total - (info.mem_available or 0)
            memory = f"{format_bytes(used)} / {format_bytes(info.mem_total)}"
        return [
            ("load", f"{load}  ({info.cpu_count or '?'} cpu)"),
            ("memory", memory),
            ("uptime", format_duration(info.uptime_s)),
        ]


def _seen(when: datetime | None, now: datetime) -> str:
    return "-" if when is None else f"{format_timestamp(when)} ({relative_time(when, now)})"
