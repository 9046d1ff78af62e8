"""Push one local file to many hosts: one upload per host (a few at a time), each host's progress in its
row, and the outcome summed up grouped as the fan-out's results are (``node-[01-12] ×12 done``).

``P`` in the fleet asks for the local file and the remote path (:class:`PushFileScreen`), then asks to
confirm, naming the count and a sample of the hosts; :class:`PushScreen` does the uploads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Static

from oc_tui.api import errors
from oc_tui.api.models import Host
from oc_tui.fanout_model import fold_names
from oc_tui.readonly import ReadOnlyGuard
from oc_tui.screens.form_dialog import FormDialog
from oc_tui.screens.host_tab import client_of
from oc_tui.widgets.formatting import describe_error, format_bytes, host_markup, host_text
from oc_tui.widgets.text_entry import Input

UPLOADS_AT_ONCE = 8


@dataclass(frozen=True)
class PushSpec:
    """What to push: a local file and where it goes on each host."""

    local: Path
    remote: str


class PushFileScreen(FormDialog[PushSpec]):
    """Asks for the local file and the remote path; checks the file is readable."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self._count = count

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide"):
            yield Label(
                f"Push a file to {self._count} host{'' if self._count == 1 else 's'}", classes="dialog-title"
            )
            yield Label("Local file", classes="field-label")
            yield Input(placeholder="./app.conf", id="local", compact=True)
            yield Label(
                "Remote path (default: the file's name in the agent user's home)",
                classes="field-label -spaced",
            )
            yield Input(placeholder="~/app.conf", id="remote", compact=True)
            yield from self.compose_footer("Next")

    def fields(self) -> PushSpec | None:
        local = Path(self.query_one("#local", Input).value.strip()).expanduser()
        if not local.is_file():
            self.show_error(f"{host_markup(str(local))} is not a readable file")
            return None
        remote = self.query_one("#remote", Input).value.strip() or f"~/{local.name}"
        return PushSpec(local, remote)

    async def send(self, fields: PushSpec) -> PushSpec:
        return fields


class PushScreen(ReadOnlyGuard, Screen[None]):
    """Uploads ``spec.local`` to ``spec.remote`` on every host; ``esc`` goes back (uploads go on)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.back", "Back")]

    @dataclass
    class Progress(Message):
        host_id: str
        state: str
        """``uploading 40%``, ``done``, or why it failed."""
        finished: bool = False

    def __init__(self, hosts: Sequence[Host], spec: PushSpec) -> None:
        super().__init__()
        self.hosts = list(hosts)
        self.spec = spec
        self.states: dict[str, str] = {host.id: "waiting" for host in self.hosts}
        self.finished: set[str] = set()
        self._slots = asyncio.Semaphore(UPLOADS_AT_ONCE)

    def compose(self) -> ComposeResult:
        yield Static(id="push-info")
        table: DataTable[Text] = DataTable(id="push-results", cursor_type="row")
        table.border_title = f"push {host_markup(str(self.spec.local))} → {host_markup(self.spec.remote)}"
        yield table
        yield Static(id="push-summary")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("HOST", key="host")
        table.add_column("STATUS", key="status")
        for host in self.hosts:
            table.add_row(Text(host_text(host.name)), Text("waiting"), key=host.id)
            if host.status != "online":
                self.post_message(self.Progress(host.id, f"{host.status} — not pushed", finished=True))
            elif getattr(self.app, "networked", True):
                self.push_to(host)
        table.focus()
        self._update_info()

    @work(group="push", exit_on_error=False)
    async def push_to(self, host: Host) -> None:
        """One host's upload, its progress posted as it goes."""
        client = client_of(self)
        if client is None:
            self.post_message(self.Progress(host.id, "not connected", finished=True))
            return
        last = -1

        def progress(done: int, total: int | None) -> None:
            nonlocal last
            percent = int(done * 100 / total) if total else 0
            if percent != last:
                last = percent
                self.post_message(self.Progress(host.id, f"uploading {percent}%"))

        async with self._slots:
            try:
                await client.upload(host.id, self.spec.remote, self.spec.local, progress=progress, mkdir=True)
            except (errors.OpenComputersError, OSError, ValueError) as exc:
                self.post_message(self.Progress(host.id, describe_error(exc), finished=True))
                return
        size = format_bytes(self.spec.local.stat().st_size)
        self.post_message(self.Progress(host.id, f"done ({size})", finished=True))

    def on_push_screen_progress(self, message: Progress) -> None:
        if message.host_id in self.finished:
            return
        self.states[message.host_id] = message.state
        if message.finished:
            self.finished.add(message.host_id)
        table = self.query_one(DataTable)
        table.update_cell(message.host_id, "status", Text(host_text(message.state)), update_width=True)
        self._update_info()

    def summary(self) -> list[tuple[str, int, str]]:
        """The finished hosts grouped by outcome: ``(folded names, count, outcome)``, largest first."""
        names = {host.id: host.name for host in self.hosts}
        groups: dict[str, list[str]] = {}
        for host_id in self.finished:
            groups.setdefault(self.states[host_id], []).append(names[host_id])
        ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
        return [(fold_names(members), len(members), state) for state, members in ordered]

    def _update_info(self) -> None:
        count = len(self.hosts)
        self.query_one("#push-info", Static).update(
            f"push  ·  {count} host{'' if count == 1 else 's'}  ·  {len(self.finished)} finished"
        )
        lines = [f"{host_markup(names)} ×{n}  {host_markup(state)}" for names, n, state in self.summary()]
        self.query_one("#push-summary", Static).update("\n".join(lines))
