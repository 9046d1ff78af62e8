"""The fleet view: every host in a table, the selected host's detail, and a live event feed.

Data flow: workers (``@work``) talk to the client and post messages (:class:`HostsLoaded`,
:class:`HostEventArrived`, …); handlers only update widgets, so no handler ever awaits the network.
Tests and the screenshot script feed fixed models through the very same messages.

The screen keeps the one copy of the hosts (by id); the table shows a filtered, sorted view of it.
With a ``cache`` file (oc-tui's own start), the list the last session was shown is drawn first, marked
stale until the control plane answers, and every answer is kept for the next start.
When the control plane goes away, a banner says so; the event stream keeps retrying and, when it
connects again, the table is reloaded.

``enter`` opens a host in its own screen (tabs: overview, jobs). ``space`` marks hosts, ``a`` marks
every host the filter shows, and ``x`` runs one command on all marked hosts (the fan-out screen).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.message import Message
from textual.reactive import Reactive
from textual.screen import Screen
from textual.signal import Signal
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from oc_tui import fleet_cache
from oc_tui.api import errors
from oc_tui.api.models import Host, HostEvent, HostRegistration, HostSysInfo
from oc_tui.hosts_model import HostCache, load_sysinfo
from oc_tui.readonly import ReadOnlyGuard, read_only_reason
from oc_tui.widgets.connection_banner import ConnectionBanner
from oc_tui.widgets.event_feed import EventFeed
from oc_tui.widgets.formatting import describe_error, host_markup
from oc_tui.widgets.host_detail import HostDetail
from oc_tui.widgets.host_filter import HostFilter
from oc_tui.widgets.host_table import HostTable
from oc_tui.widgets.keys_footer import KeysFooter
from oc_tui.widgets.text_entry import Input

if TYPE_CHECKING:
    from oc_tui.api import OpenComputersClient, StreamState

# The dialogs, the host screens and the HTTP client are imported when first used, not at start-up:
# the first frame waits for every import (bench/cases/tui_first_frame.py).

UNREACHABLE = "control plane unreachable — retrying"
UNNAMED_KEPT = 20
"""Events kept per host whose name is not known yet (written once it is)."""
TICK_SECONDS = 10.0
"""How often relative times and the selected host's live facts are refreshed."""


def unauthorized_text(profile: str, base_url: str) -> str:
    """The banner for a 401: which profile's token was refused, by which server, and how to fix it."""
    return (
        f"{base_url} refused the API token of profile {profile!r} (401) — set the right one with "
        f"--token, OC_TUI_TOKEN or [profiles.{profile}] token in config.toml"
    )


class FilterBox(Input):
    """The filter's one-line box. Its text scrolls inside a fixed size, so a keystroke repaints it
    without a layout of the whole screen (``Input`` asks for one whenever its text's width changes)."""

    virtual_size = Reactive(Size(0, 0), layout=False)

    # shown in the footer while the filter has the keyboard (it was empty then)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "submit", "Done"),
        Binding("escape", "screen.clear_filter", "Clear"),
    ]


class FleetScreen(ReadOnlyGuard, Screen[None]):
    """The ``:hosts`` view."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_mark", "Mark", tooltip="Mark / unmark the host (for x)"),
        Binding("a", "mark_shown", "Mark all shown", show=False),
        Binding("x", "run_on_marked", "Run", tooltip="Run one command on the marked hosts"),
        Binding(
            "T", "broadcast_terminals", "Terminals", show=False, tooltip="A terminal on each marked host"
        ),
        Binding("P", "push_file", "Push file", show=False, tooltip="Push a local file to the marked hosts"),
        # Priority, so the filter has the keyboard as the key is dispatched: the keys typed right after it
        # in one burst (a fast typist, a paste, a slow SSH link) filter instead of running n, l, e, v …
        Binding("slash", "filter", "Filter", priority=True),
        Binding("n", "register", "Register"),
        # shown by ? and the palette; the footer keeps to what fits 80 columns
        Binding("l", "edit_labels", "Labels", show=False),
        Binding("e", "rename", "Rename", show=False, tooltip="Rename the host"),
        Binding("t", "open_host('terminal')", "Terminal", show=False, tooltip="Open a terminal on the host"),
        Binding(
            "ctrl+d,delete",
            "revoke",
            "Revoke",
            show=False,
            tooltip="Revoke the host; on a revoked host: delete it from the list (purge)",
        ),
        Binding("r", "reload", "Reload", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("v", "save_group", "Save view", show=False, tooltip="Save the filter as a host group"),
    ]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (16, "-tall")]

    # --- messages: what workers (or a test) deliver ------------------------------------------------

    @dataclass
    class HostsLoaded(Message):
        """Every host the API has (all pages); or, ``cached``, the list the last session was shown."""

        hosts: list[Host]
        cached: bool = False

    class CacheShown(Message):
        """The cached host list is drawn (or there was none): the app may connect now."""

    @dataclass
    class HostFetched(Message):
        """One host, fresh from the API (after an event, an edit, a revoke)."""

        host: Host

    @dataclass
    class HostGone(Message):
        host_id: str

    @dataclass
    class HostEventArrived(Message):
        event: HostEvent

    @dataclass
    class SysInfoLoaded(Message):
        """Live facts of a host, or why there are none."""

        host_id: str
        info: HostSysInfo | str

    @dataclass
    class StreamStateChanged(Message):
        state: StreamState

    @dataclass
    class RequestFailed(Message):
        action: str
        error: errors.OpenComputersError

    class ClientReady(Message):
        """The app has a client (the local control plane is up): start the live work."""

    @dataclass
    class Connecting(Message):
        """The app is still getting a client (starting the local control plane)."""

        text: str

    @dataclass
    class Note(Message):
        """A line for the event feed from the app itself (the local control plane's news)."""

        text: str

    @dataclass
    class ConnectFailed(Message):
        """The app could not get a client; nothing live will happen."""

        text: str

    # --- setup -------------------------------------------------------------------------------------

    def __init__(
        self, profile_name: str, base_url: str, clock: Callable[[], datetime], *, cache: Path | None = None
    ) -> None:
        """``cache``: the file of the last host list this profile was shown (see oc_tui/fleet_cache.py),
        drawn by :meth:`show_cached` and replaced after every load; None: no cache."""
        super().__init__()
        self.cache = cache
        self.stale = False
        """True while the hosts shown are the cached list, before the control plane's first answer."""
        self._answered = False
        self._saved: list[Host] | None = None
        self._scope_known = False
        self._profile_name = profile_name
        self._base_url = base_url
        self._clock = clock
        self._hosts = HostCache()
        self.host_updated: Signal[Host] = Signal(self, "host-updated")
        """Every fresh host record, published to open host screens (they subscribe)."""
        self._filter = HostFilter()
        self._group: tuple[str, set[str]] | None = None  # :hosts group=NAME: its name and members
        self._stream_down = False
        self._polling = False
        self._unnamed: dict[str, list[HostEvent]] = {}
        """Events about hosts not known yet (the stream ran ahead of the listing, after a restart):
        written to the feed once the host's name is known, not under its id."""
        self.live = False
        """True while the event stream is connected: the table follows changes as they happen."""

    def compose(self) -> ComposeResult:
        yield Static(id="fleet-info")
        yield ConnectionBanner(id="banner")
        yield FilterBox(placeholder="filter: name  k=v  status:online", id="filter", compact=True)
        with Horizontal(id="fleet-body"):
            yield HostTable(self._clock, id="hosts")
            with Vertical(id="side"):
                yield HostDetail(self._clock, id="detail")
                yield EventFeed(id="events")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.table.border_title = "hosts"
        self.query_one(HostDetail).border_title = "detail"
        self.query_one(EventFeed).border_title = "events"
        self._update_info()
        self.set_interval(TICK_SECONDS, self._tick)
        self.query_one(HostTable).focus()

    @property
    def client(self) -> OpenComputersClient | None:
        """The app's client, None until the app has one."""
        from oc_tui.screens.host_tab import client_of

        return client_of(self)

    @property
    def table(self) -> HostTable:
        return self.query_one(HostTable)

    @property
    def banner(self) -> ConnectionBanner:
        return self.query_one(ConnectionBanner)

    def set_endpoint(self, base_url: str) -> None:
        """The local control plane may listen elsewhere than the profile said (port in use)."""
        self._base_url = base_url
        if self.is_mounted:
            self._update_info()

    # --- workers: the only code that talks to the network ------------------------------------------

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_hosts(self) -> None:
        client = self.client
        if client is None:
            return
        try:
            hosts = [host async for host in client.iter_hosts()]
            if not self._scope_known:  # once: does the server say this token only reads?
                self._scope_known = True
                if await client.token_read_only() and not read_only_reason(self.app):
                    self.app.read_only = "token"  # type: ignore[attr-defined]
                if read_only_reason(self.app):
                    self.notify(
                        "Keys that would change a host or the control plane (run, register, labels,"
                        " revoke, uploads, terminals …) are off.",
                        title=f"Read-only ({read_only_reason(self.app)})",
                    )
        except errors.OpenComputersError as exc:
            self.post_message(self.RequestFailed("load hosts", exc))
        else:
            self.post_message(self.HostsLoaded(hosts))
            if self.cache is not None:
                await asyncio.to_thread(self._save_cache, self.cache, hosts)

    def _save_cache(self, path: Path, hosts: list[Host]) -> None:
        """Keep ``hosts`` as the cached list (in a thread) unless it is what was kept last."""
        if hosts != self._saved:
            self._saved = hosts
            fleet_cache.save(path, hosts)

    @work(thread=True, exclusive=True, group="cache", exit_on_error=False)
    def show_cached(self) -> None:
        """Read the cached host list (in a thread: a big fleet's takes a while) and draw it, marked stale."""
        try:
            hosts = fleet_cache.load(self.cache) if self.cache is not None else None
            if hosts:
                self.post_message(self.HostsLoaded(hosts, cached=True))
        finally:
            self.post_message(self.CacheShown())

    @work(exclusive=True, group="events", exit_on_error=False)
    async def watch_events(self) -> None:
        client = self.client
        if client is None:
            return

        def on_state(state: StreamState) -> None:
            self.post_message(self.StreamStateChanged(state))

        stream = client.host_events(None, on_state=on_state)
        try:
            async with stream:
                async for event in stream:
                    self.post_message(self.HostEventArrived(event))
        except errors.NotFoundError:
            # A control plane without the tenant-wide stream (an extension): poll instead.
            self._polling = True
            self.post_message(self.Note(f"no live event stream here: reloading every {TICK_SECONDS:g} s"))
        except errors.OpenComputersError as exc:
            self.post_message(self.RequestFailed("event stream", exc))

    @work(group="host", exit_on_error=False)
    async def fetch_host(self, host_id: str) -> None:
        client = self.client
        if client is None:
            return
        try:
            host = await client.get_host(host_id)
        except errors.NotFoundError:
            self.post_message(self.HostGone(host_id))
        except errors.OpenComputersError as exc:
            self.post_message(self.RequestFailed("get host", exc))
        else:
            self.post_message(self.HostFetched(host))

    @work(exclusive=True, group="sysinfo", exit_on_error=False)
    async def fetch_sysinfo(self, host_id: str) -> None:
        """Live facts appear in the detail pane; failures too (a notification every tick would nag)."""
        client = self.client
        if client is None:
            return
        self.post_message(self.SysInfoLoaded(host_id, await load_sysinfo(client, host_id)))

    @work(group="revoke", exit_on_error=False)
    async def revoke_host(self, host: Host) -> None:
        client = self.client
        if client is None:
            return
        try:
            await client.revoke_host(host.id)
        except errors.OpenComputersError as exc:
            self.post_message(self.RequestFailed(f"revoke {host.name}", exc))
            return
        self.notify(f"{host_markup(host.name)} revoked", title="Revoked")
        self.fetch_host(host.id)

    # --- message handlers: update widgets, never await the network ---------------------------------

    def on_fleet_screen_connecting(self, message: Connecting) -> None:
        self.banner.show_info(message.text)
        self.table.loading = not self._hosts  # the cached list stays readable meanwhile

    def on_fleet_screen_note(self, message: Note) -> None:
        self.query_one(EventFeed).add_note(message.text)

    def on_fleet_screen_connect_failed(self, message: ConnectFailed) -> None:
        self.banner.show_error(host_markup(message.text))
        self.table.loading = False

    def on_fleet_screen_client_ready(self) -> None:
        self.banner.clear()
        self.load_hosts()
        self.watch_events()

    def on_fleet_screen_hosts_loaded(self, message: HostsLoaded) -> None:
        if message.cached and self._answered:
            return  # the control plane answered first: its list is newer
        self.stale = message.cached
        self._answered = self._answered or not message.cached
        self._hosts.replace_all(message.hosts)
        for host_id in [known for known in self._unnamed if known in self._hosts.hosts]:
            self._write_unnamed(host_id, self._hosts.hosts[host_id].name)
        self.table.loading = False
        if not self._stream_down:
            self.banner.clear()
        self._render_hosts()

    def on_fleet_screen_host_fetched(self, message: HostFetched) -> None:
        self._upsert(message.host)

    def on_fleet_screen_host_gone(self, message: HostGone) -> None:
        self._write_unnamed(message.host_id)
        if self._hosts.remove(message.host_id):
            self.table.set_marked(self.table.marked - {message.host_id})
            self._render_hosts()

    def on_fleet_screen_host_event_arrived(self, message: HostEventArrived) -> None:
        event = message.event
        if event.type == "host_deleted":  # purged (here or by another client): it leaves the list
            known = self._hosts.get(event.host_id)
            self.post_message(self.HostGone(event.host_id))
            self.query_one(EventFeed).add_event(event, known.name if known else event.host_id)
            return
        effect = self._hosts.apply_event(event)
        if effect.changed and effect.host is not None:
            self._show_upserted(effect.host)
        if effect.host is None:
            waiting = self._unnamed.setdefault(event.host_id, [])
            if len(waiting) < UNNAMED_KEPT:
                waiting.append(event)
            if self.client is not None:
                self.fetch_host(event.host_id)  # its name, then the line
            return
        if effect.refetch and self.client is not None:
            self.fetch_host(event.host_id)  # agent info and last-seen change with the status
        self.query_one(EventFeed).add_event(event, effect.host.name)

    def _write_unnamed(self, host_id: str, name: str | None = None) -> None:
        """The events that waited for ``host_id``'s name, written now (under ``name``, else its id)."""
        feed = self.query_one(EventFeed)
        for event in self._unnamed.pop(host_id, []):
            feed.add_event(event, name or host_id)

    def on_fleet_screen_sys_info_loaded(self, message: SysInfoLoaded) -> None:
        detail = self.query_one(HostDetail)
        if detail.host is not None and detail.host.id == message.host_id:
            detail.sysinfo = message.info

    def on_fleet_screen_stream_state_changed(self, message: StreamStateChanged) -> None:
        state = message.state
        feed = self.query_one(EventFeed)
        self.live = state.connected
        self._update_info()
        if state.connected:
            if self._stream_down:
                self._stream_down = False
                self.banner.clear()
                feed.add_note("control plane reachable again")
                self.notify("control plane reachable again", title="Connected")
                self.load_hosts()
            return
        if not self._stream_down:
            self._stream_down = True
            feed.add_note(f"connection lost: {state.error or 'unknown reason'}")
        reason = host_markup(state.error or "no answer")
        self.banner.show_error(f"{UNREACHABLE} ({reason}, attempt {state.attempt})")

    def on_fleet_screen_request_failed(self, message: RequestFailed) -> None:
        self.table.loading = False
        error = message.error
        if isinstance(error, errors.UnauthorizedError):  # stays until a request succeeds
            self.banner.show_error(unauthorized_text(self._profile_name, self._base_url))
        elif isinstance(error, errors.ConnectionFailed) and not self.live:
            # While the stream is up the control plane is there: one failed request is only a
            # notification. Otherwise the stream's reconnect (or the next poll) clears the banner.
            self.banner.show_error(UNREACHABLE)
        self.notify(
            f"{host_markup(message.action)}: {host_markup(describe_error(error))}",
            title="Request failed",
            severity="error",
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A bug in a worker must not take the app down: say what failed and carry on."""
        if event.state == WorkerState.ERROR:
            self.notify(
                host_markup(f"{event.worker.name}: {event.worker.error}"),
                title="Unexpected error",
                severity="error",
            )

    @on(HostTable.RowHighlighted, "#hosts")
    def _row_highlighted(self) -> None:
        self._show_selected()

    @on(HostTable.RowSelected, "#hosts")
    def _row_selected(self) -> None:
        self.action_open_host()

    # --- filter --------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``/`` is text, not the filter key, while a field has the keyboard (the filter itself)."""
        if action == "filter" and isinstance(self.focused, Input):
            return False
        return super().check_action(action, parameters)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("-visible")
        self.set_focus(box)  # at once, not after the keys already queued (Widget.focus waits for them)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._filter = HostFilter.parse(event.value)
        self._render_hosts(hosts_changed=False)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.table.focus()

    def scope_to_group(self, name: str | None) -> None:
        """Show only the members of the group called ``name`` (None: every host again)."""
        self._group = None
        self._render_hosts(hosts_changed=False)
        if name is not None:
            self.load_group(name)

    @work(exclusive=True, group="group-scope", exit_on_error=False)
    async def load_group(self, name: str) -> None:
        """Resolve a group's members (a tag query is evaluated now) and show only them."""
        from oc_tui.screens.groups import group_member_ids

        client = self.client
        if client is None:
            return
        try:
            members = await group_member_ids(client, name)
        except errors.OpenComputersError as exc:
            self.post_message(self.RequestFailed(f"group {name}", exc))
            return
        if members is None:
            self.notify(f"no group called {host_markup(name)} — :groups lists them", severity="error")
            return
        self._group = (name, members)
        self._render_hosts(hosts_changed=False)

    def action_save_group(self) -> None:
        """Save the filter as a group (label terms: a tag query; otherwise the hosts shown)."""
        if not self._filter.active:
            self.notify("filter the fleet first (/), then save it as a group", severity="warning")
            return
        from oc_tui.screens.groups import SaveGroupScreen

        def saved(group: Any) -> None:
            if group is not None:
                self.notify(
                    f"group {host_markup(group.name)} saved ({group.member_count} hosts)", title="Saved"
                )

        shown = list(self.table.shown_ids)
        self.app.push_screen(SaveGroupScreen(self.client, self._filter, shown), saved)

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("-visible")
        self._filter = HostFilter()
        self._render_hosts(hosts_changed=False)
        self.table.focus()

    # --- a host's own screen, marks and fan-out --------------------------------------------------------

    @property
    def _networked(self) -> bool:
        return bool(getattr(self.app, "networked", True))

    def _history(self, key: str) -> list[str]:
        histories = getattr(self.app, "histories", None)
        return histories.setdefault(key, []) if isinstance(histories, dict) else []

    def _places(self, host_id: str) -> dict[str, str]:
        places = getattr(self.app, "places", None)
        return places.setdefault(host_id, {}) if isinstance(places, dict) else {}

    def action_open_host(self, tab: str = "overview") -> None:
        host = self._selected()
        if host is None:
            return
        # loaded on first use, not at start-up (first frame)
        from oc_tui.screens.host import HostScreen
        from oc_tui.screens.host_tab import HostTabContext

        context = HostTabContext(
            host.id, self._history(host.id), self._clock, live=self._networked, places=self._places(host.id)
        )
        self.app.push_screen(HostScreen(host, context, tab=tab, updates=self.host_updated))

    def action_toggle_mark(self) -> None:
        host_id = self.table.selected_host_id
        if host_id is None:
            return
        self.table.toggle_mark(host_id)
        self.table.action_cursor_down()  # as in a file manager: mark, move on

    def action_mark_shown(self) -> None:
        """Mark every host the filter shows; when all of them already are, unmark them."""
        shown = set(self.table.shown_ids)
        marked = self.table.marked
        self.table.set_marked(marked - shown if shown <= marked else marked | shown)

    def action_run_on_marked(self) -> None:
        """Ask for a command and run it on every marked host (the highlighted one when none is)."""
        hosts = self.marked_hosts()
        if not hosts:
            host = self._selected()
            if host is None:
                return
            hosts = [host]

        def run(command: str | None) -> None:
            from oc_tui.screens.fanout import FanoutScreen

            if command:
                self.app.push_screen(FanoutScreen(hosts, command, self._clock, live=self._networked))

        from oc_tui.screens.run_command import RunCommandScreen

        self.app.push_screen(RunCommandScreen(hosts, self._history("*fan-out*")), run)

    def action_push_file(self) -> None:
        """Ask for a local file and a remote path, confirm (naming the hosts), and push it to each marked
        host (the highlighted one when none is)."""
        hosts = self.marked_hosts() or [host for host in [self._selected()] if host is not None]
        if not hosts:
            return
        from oc_tui.screens.confirm import ConfirmScreen
        from oc_tui.screens.push import PushFileScreen, PushScreen, PushSpec
        from oc_tui.screens.run_command import host_sample

        def confirmed(spec: PushSpec, ok: bool | None) -> None:
            if ok:
                self.app.push_screen(PushScreen(hosts, spec))

        def asked(spec: PushSpec | None) -> None:
            if spec is None:
                return
            count = len(hosts)
            title = f"Push to {count} host{'' if count == 1 else 's'}?"
            text = f"{host_markup(str(spec.local))} → {host_markup(spec.remote)} (replaced where it exists)\non {host_sample(hosts)}"
            self.app.push_screen(ConfirmScreen(title, text, "Push"), lambda ok: confirmed(spec, ok))

        self.app.push_screen(PushFileScreen(len(hosts)), asked)

    def action_broadcast_terminals(self) -> None:
        """Open a terminal on each marked host (asking first, naming them), with opt-in input broadcast."""
        hosts = self.marked_hosts()
        if not hosts:
            self.notify("mark the hosts first (space, or a for every host shown)", severity="warning")
            return
        from oc_tui.screens.broadcast import MAX_TERMINALS, BroadcastScreen
        from oc_tui.screens.confirm import ConfirmScreen
        from oc_tui.screens.run_command import host_sample

        hosts = hosts[:MAX_TERMINALS]
        count = len(hosts)
        text = f"on {host_sample(hosts)}\nInput goes to one at a time until you turn broadcast on (b)."
        title = f"Open a terminal on {count} host{'' if count == 1 else 's'}?"

        def opened(ok: bool | None) -> None:
            if ok:
                self.app.push_screen(BroadcastScreen(hosts, live=self._networked))

        self.app.push_screen(ConfirmScreen(title, text, "Open"), opened)

    def on_host_table_marks_changed(self) -> None:
        self._update_info()

    def marked_hosts(self) -> list[Host]:
        """The marked hosts that still exist, in table order (name)."""
        hosts = [host for host_id in self.table.marked if (host := self._hosts.get(host_id)) is not None]
        return sorted(hosts, key=lambda host: (host.name.lower(), host.id))

    # --- actions on hosts ------------------------------------------------------------------------------

    def action_reload(self) -> None:
        if self.client is not None:
            self.load_hosts()

    def action_register(self) -> None:
        from oc_tui.screens.register import RegisterHostScreen

        self.app.push_screen(RegisterHostScreen(self.client), self._registered)

    def _registered(self, registration: HostRegistration | None) -> None:
        if registration is None:
            return
        self._upsert(Host.model_validate(registration.model_dump(exclude={"host_key"})))
        self.table.select_host(registration.id)
        self._show_host_key(registration)

    @work(group="host-key", exit_on_error=False)
    async def _show_host_key(self, registration: HostRegistration) -> None:
        """The key, with the agent command for the URL other machines reach the control plane at: the
        embedded server's ``public_url`` (``/healthz``), else the URL this app uses."""
        from oc_tui.screens.host_key import HostKeyScreen, public_url

        client = self.client
        base_url = client.base_url if client is not None else self._base_url
        if client is not None and self.live:
            base_url = await public_url(client)
        self.app.push_screen(HostKeyScreen(registration, base_url))

    def action_edit_labels(self) -> None:
        host = self._selected()
        if host is None:
            return
        if host.status == "revoked":
            self.notify(
                f"{host_markup(host.name)} is revoked: its labels can no longer change", severity="warning"
            )
            return
        from oc_tui.screens.labels import EditLabelsScreen

        self.app.push_screen(EditLabelsScreen(self.client, host), self._labels_saved)

    def _labels_saved(self, host: Host | None) -> None:
        if host is not None:
            self._upsert(host)
            self.notify(f"labels of {host_markup(host.name)} saved", title="Saved")

    def action_rename(self) -> None:
        host = self._selected()
        if host is None:
            return
        if host.status == "revoked":
            self.notify(f"{host_markup(host.name)} is revoked: it can no longer change", severity="warning")
            return

        def renamed(updated: Host | None) -> None:
            if updated is not None:
                self._upsert(updated)
                self.notify(f"{host_markup(host.name)} is now {host_markup(updated.name)}", title="Renamed")

        from oc_tui.screens.labels import RenameHostScreen

        self.app.push_screen(RenameHostScreen(self.client, host), renamed)

    def action_revoke(self) -> None:
        host = self._selected()
        if host is None:
            return
        if host.status == "revoked":
            self._ask_purge(host)
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.revoke_host(host)

        from oc_tui.screens.confirm import ConfirmRevokeScreen

        self.app.push_screen(ConfirmRevokeScreen(host), confirmed)

    def _ask_purge(self, host: Host) -> None:
        """A revoked host: delete it from the list for good (asking first, saying what goes)."""
        from oc_tui.screens.confirm import ConfirmScreen

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.purge_host(host)

        text = (
            f"{host_markup(host.id)} is revoked. Deleting it removes it from the list with everything kept "
            "about it: its jobs and their output, tunnels, secrets, AI agent sessions. This cannot be undone."
        )
        self.app.push_screen(
            ConfirmScreen(f"Delete host {host_markup(host.name)}?", text, "Delete"), confirmed
        )

    @work(group="revoke", exit_on_error=False)
    async def purge_host(self, host: Host) -> None:
        client = self.client
        if client is None:
            return
        try:
            await client.purge_host(host.id)
        except errors.NotFoundError:
            pass  # gone already
        except errors.OpenComputersError as exc:
            self.post_message(self.RequestFailed(f"delete {host.name}", exc))
            return
        self.notify(f"{host_markup(host.name)} deleted from the list", title="Deleted")
        self.post_message(self.HostGone(host.id))

    # --- helpers -------------------------------------------------------------------------------------

    def _selected(self) -> Host | None:
        host_id = self.table.selected_host_id
        host = self._hosts.get(host_id) if host_id else None
        if host is None:
            self.notify("no host selected", severity="warning")
        return host

    def _upsert(self, host: Host) -> None:
        self._show_upserted(self._hosts.upsert(host))

    def _show_upserted(self, host: Host) -> None:
        """A host record the cache now holds: its row, the counts, the detail, open host screens."""
        self.table.upsert(host)  # one row redrawn or moved, not the whole table
        if host.id in self._unnamed:
            self._write_unnamed(host.id, host.name)
        self._update_info()
        self._show_selected()
        self.host_updated.publish(host)

    def _render_hosts(self, *, hosts_changed: bool = True) -> None:
        """Show the hosts through the filter and the group; ``hosts_changed=False``: only those changed
        (a keystroke in the filter box: no pass over every host)."""
        members = self._group[1] if self._group is not None else None
        if hosts_changed:
            self.table.show_hosts(self._hosts.hosts.values(), self._filter, members)
            self._update_info()
            self._show_selected()
        else:
            self.table.set_filter(self._filter, members)
            self._update_info()
            # the detail pane is redrawn in a turn of its own: a keystroke's work is split in two
            self.call_later(self._show_selected)

    def _show_selected(self) -> None:
        host_id = self.table.selected_host_id
        host = self._hosts.get(host_id) if host_id else None
        detail = self.query_one(HostDetail)
        previous = detail.host
        detail.host = host
        if host is None or self.client is None:
            return
        if host.status != "online":
            detail.sysinfo = None
        elif previous is None or previous.id != host.id or previous.status != "online":
            self.fetch_sysinfo(host.id)

    def _update_info(self) -> None:
        total = len(self._hosts)
        online = self._hosts.online
        parts = [
            self._profile_name,
            host_markup(self._base_url),
            f"{total} host{'' if total == 1 else 's'}, {online} online",
        ]
        if self._group is not None:
            parts.append(f"group {host_markup(self._group[0])}")
        if self._filter.active or self._group is not None:
            parts.append(f"{self.table.row_count} shown")
        marked = len(self.table.marked)
        if marked:
            parts.append(f"{marked} marked")
        if self.stale:
            parts.append("[b]stale[/b] (last session's list)")
        if self.live:
            parts.append("● live")
        reason = read_only_reason(self.app)
        if reason:
            parts.insert(1, f"[b]read-only[/b] ({reason})")
        self.query_one("#fleet-info", Static).update("  ·  ".join(parts))
        self.table.border_subtitle = self._empty_reason()

    def _empty_reason(self) -> str:
        """Why the table shows no host although there are hosts (a filter, a group), else ""."""
        if self.table.row_count or not len(self._hosts):
            return ""
        if self._filter.active:
            return f"no hosts match '{host_markup(self._filter.text)}' — esc clears the filter"
        if self._group is not None:
            return f"no hosts in group {host_markup(self._group[0])}"
        return ""

    def _tick(self) -> None:
        self.table.refresh_times()
        detail = self.query_one(HostDetail)
        detail.refresh_times()
        if self._polling:
            self.load_hosts()
        if detail.host is not None and detail.host.status == "online" and self.client is not None:
            self.fetch_sysinfo(detail.host.id)
