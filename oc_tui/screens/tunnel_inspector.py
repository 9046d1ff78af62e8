"""The inspector of one tunnel (as ngrok's): its requests, live, and the selected one's headers and bodies
(JSON pretty-printed); ``p`` replays it to the app.

A worker lists the kept requests, then follows the live stream; both post messages the handlers turn
into rows (a record seen again replaces its row). Tests and the screenshot script post fixed records
through the same messages (``live=False``).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static

from oc_tui.api import errors
from oc_tui.api.models import Tunnel, TunnelRequest, utcnow
from oc_tui.screens.host_tab import client_of
from oc_tui.widgets.formatting import describe_error, format_bytes, host_markup, host_text
from oc_tui.widgets.keys_footer import KeysFooter
from oc_tui.widgets.resource_table import Column, ResourceTable

SHOWN = 200
"""Rows kept on screen (the server keeps 100 per tunnel; replays and live ones add up)."""


def _status(record: TunnelRequest, _: datetime) -> str:
    if record.status is None:
        return "…"
    return f"{record.status}" + ("" if record.complete or record.error else " …")


def _duration(record: TunnelRequest, _: datetime) -> str:
    return "-" if record.duration_ms is None else f"{record.duration_ms:.0f} ms"


COLUMNS: tuple[Column, ...] = (
    Column("time", "Time", lambda r, _: r.started_at.strftime("%H:%M:%S")),
    Column("method", "Method", lambda r, _: r.method),
    Column("code", "Status", _status),
    Column("duration", "Took", _duration),
    Column("size", "Size", lambda r, _: format_bytes(r.response_bytes)),
    Column("target", "Path", lambda r, _: host_text(r.target)),
)


def pretty_body(body: str, headers: list[tuple[str, str]], truncated: bool, size: int) -> str:
    """A body for reading: JSON indented when it is JSON (and whole), a note for binary bytes (the
    server replaced what is not UTF-8), else as it came."""
    if "\ufffd" in body:
        return f"‹binary body, {format_bytes(size)}›"
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    if "json" in content_type and body and not truncated:
        try:
            return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    return body + ("\n… (first 10 KiB)" if truncated else "")


def _message(text: Text, headers: list[tuple[str, str]], body: str, truncated: bool, size: int) -> None:
    """Append one side's headers and body (pretty) to ``text``."""
    for name, value in headers:
        text.append(f"{host_text(name)}: ", style="dim")
        text.append(f"{host_text(value)}\n")
    if body:
        text.append(f"\n{host_text(pretty_body(body, headers, truncated, size), keep=chr(10) + chr(9))}\n")


def describe(record: TunnelRequest) -> Text:
    """The detail pane's text for one record: request line, headers and body, then the response's."""
    text = Text()
    text.append(f"{record.method} {host_text(record.target)}", style="bold")
    text.append(f"   from {host_text(record.client)}")
    if record.replay_of is not None:
        text.append(f"   (replay of #{record.replay_of})")
    text.append("\n")
    _message(
        text, record.request_headers, record.request_body, record.request_body_truncated, record.request_bytes
    )
    text.append("\n")
    status = "no answer" if record.status is None else str(record.status)
    text.append(f"← {status}", style="bold")
    text.append(f"   {_duration(record, utcnow())}   {format_bytes(record.response_bytes)}")
    if record.error:
        text.append(f"   {host_text(record.error)}", style="bold red")
    text.append("\n")
    _message(
        text,
        record.response_headers,
        record.response_body,
        record.response_body_truncated,
        record.response_bytes,
    )
    return text


class TunnelInspectorScreen(Screen[None]):
    """The requests of ``tunnel`` (live), the selected one in detail, and replay."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.back", "Back"),
        Binding("p", "replay", "Replay"),
        Binding("r", "reload", "Reload"),
        Binding("tab", "app.focus_next", "Detail / list", show=False),
    ]

    @dataclass
    class RequestsLoaded(Message):
        records: list[TunnelRequest]

    @dataclass
    class RequestSeen(Message):
        record: TunnelRequest

    def __init__(self, tunnel: Tunnel, *, live: bool = True) -> None:
        """``live``: False in tests and screenshots (records come as messages)."""
        super().__init__()
        self.tunnel = tunnel
        self._live = live
        self._records: dict[int, TunnelRequest] = {}

    def compose(self) -> ComposeResult:
        yield Static(
            f"inspector  ·  {self.tunnel.slug}  ·  {self.tunnel.public_url}",
            id="inspector-info",
            markup=False,
        )
        yield ResourceTable("tunnels", COLUMNS, utcnow, id="inspector-requests")
        with VerticalScroll(id="inspector-detail"):
            yield Static("", id="inspector-text", markup=False)
        yield KeysFooter()

    def on_mount(self) -> None:
        self.table.border_title = "requests (live)"
        self.query_one("#inspector-detail").border_title = "request · response"
        self.table.focus()
        if self._live:
            self.action_reload()

    @property
    def table(self) -> ResourceTable:
        return self.query_one(ResourceTable)

    @property
    def selected(self) -> TunnelRequest | None:
        """The record under the cursor."""
        chosen = self.table.selected_id
        return None if chosen is None else self._records.get(int(chosen))

    # --- workers ---------------------------------------------------------------------------------------

    def action_reload(self) -> None:
        """List the kept requests again, then follow new ones."""
        self._follow()

    @work(exclusive=True, group="follow", exit_on_error=False)
    async def _follow(self) -> None:
        client = client_of(self)
        if client is None:
            return
        tunnel = self.tunnel
        connected = asyncio.Event()
        stream = client.follow_tunnel_requests(
            tunnel.host_id, tunnel.id, on_state=lambda state: connected.set() if state.connected else None
        )
        try:
            async with stream:
                first = asyncio.ensure_future(anext(stream))  # connects: nothing kept after it is missed
                opened = asyncio.ensure_future(connected.wait())
                try:
                    await asyncio.wait({first, opened}, return_when=asyncio.FIRST_COMPLETED)
                    records = await client.tunnel_requests(tunnel.host_id, tunnel.id)
                    self.post_message(self.RequestsLoaded(records))
                    self.post_message(self.RequestSeen((await first).request))
                finally:
                    first.cancel()
                    opened.cancel()
                async for event in stream:
                    self.post_message(self.RequestSeen(event.request))
        except errors.OpenComputersError as exc:
            self.notify(
                f"follow requests: {host_markup(describe_error(exc))}", title="Inspector", severity="error"
            )

    def action_replay(self) -> None:
        """Send the selected request to the app again (its new record shows up live)."""
        record = self.selected
        client = client_of(self)
        if record is None or client is None:
            return

        async def replay() -> None:
            try:
                again = await client.replay_tunnel_request(self.tunnel.host_id, self.tunnel.id, record.id)
            except errors.OpenComputersError as exc:
                self.notify(host_markup(describe_error(exc)), title="Replay failed", severity="error")
                return
            self.post_message(self.RequestSeen(again))
            self.notify(host_markup(f"{again.method} {again.target} → {again.status}"), title="Replayed")

        self.run_worker(replay(), name="replay", group="replay", exit_on_error=False)

    # --- handlers ----------------------------------------------------------------------------------------

    def on_tunnel_inspector_screen_requests_loaded(self, message: RequestsLoaded) -> None:
        self._records = {record.id: record for record in message.records}
        self._show()

    def on_tunnel_inspector_screen_request_seen(self, message: RequestSeen) -> None:
        follow = self.table.cursor_row == 0
        known = self._records.get(message.record.id)
        if known is not None and (known.complete or known.error) and not message.record.duration_ms:
            return  # the list already had it finished; this is the earlier "answer started" event
        self._records[message.record.id] = message.record
        self._show(select=message.record.id if follow else None)

    def _show(self, select: int | None = None) -> None:
        newest = sorted(self._records.values(), key=lambda r: r.id, reverse=True)[:SHOWN]
        self._records = {record.id: record for record in newest}
        self.table.show(newest)
        if select is not None and self.table.row_count:
            self.table.move_cursor(row=0)
        self._detail()

    @on(DataTable.RowHighlighted, "#inspector-requests")
    def _highlighted(self) -> None:
        self._detail()

    def _detail(self) -> None:
        record = self.selected
        text = describe(record) if record is not None else Text("No requests yet: open the tunnel's URL.")
        self.query_one("#inspector-text", Static).update(text)
