"""The oc-tui App: themes, global keys (k9s style), command mode, the palette, and the connection.

The App owns the one ``OpenComputersClient`` and, for the embedded (``local``) profile, the
``LocalControlPlane`` that runs this machine's control plane and agent. Starting it can take seconds, so it
runs in a worker while the fleet screen already shows (with a "starting…" banner).

``live=False`` builds the same app without any network work: tests and the screenshot script then
feed the screens fixed models through the messages the workers would post, with a fixed clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit, urlunsplit

from textual import events, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, TextArea
from textual.worker import Worker, WorkerState

from oc_tui import config, fleet_cache
from oc_tui.api.models import utcnow
from oc_tui.screens.fleet import FleetScreen
from oc_tui.theme_files import DEFAULT_THEME, LoadedThemes, load_themes
from oc_tui.widgets.formatting import host_markup
from oc_tui.widgets.key_capture import steps_aside

if TYPE_CHECKING:
    from oc_tui.api import OpenComputersClient
    from oc_tui.local import LocalControlPlane
    from oc_tui.screens.help import KeySection

# The HTTP client, the embedded control plane, the command line, the help and every screen but the
# fleet are imported when first used: the first frame waits for every import at start-up
# (bench/cases/tui_first_frame.py).

LOCAL_WARNINGS = {"server_failed", "host_revoked", "agent_refused", "port_taken"}
"""LocalControlPlane events worth a notification; the others go to the event feed only."""


class OcTuiCommands(Provider):
    """The command palette (ctrl+p): views, host actions, themes, quit."""

    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = self.app
        assert isinstance(app, OcTuiApp)
        fleet = app.fleet
        commands: list[tuple[str, str, Callable[[], object]]] = [
            ("Hosts", "Show the fleet view (:hosts)", app.action_show_hosts),
            ("Register host", "Register a new host and show its key", fleet.action_register),
            ("Edit labels", "Edit the labels of the selected host", fleet.action_edit_labels),
            ("Rename host", "Rename the selected host (e)", fleet.action_rename),
            (
                "Revoke host",
                "Revoke the selected host; a revoked one: delete it (asks first)",
                fleet.action_revoke,
            ),
            ("Open host", "Open the selected host (enter)", fleet.action_open_host),
            ("Run a job", "Open the selected host's Jobs tab", partial(fleet.action_open_host, "jobs")),
            ("Run on marked hosts", "One command on every marked host (x)", fleet.action_run_on_marked),
            ("Mark shown hosts", "Mark every host the filter shows (a)", fleet.action_mark_shown),
            ("Filter hosts", "Filter by name, k=v label or status", fleet.action_filter),
            ("Keys", "Show every key (?)", app.action_help),
            ("Quit", "Quit oc-tui", app.exit),
        ]
        for name in app.theme_names:
            commands.append(
                (f"Theme: {name}", f"Switch to the {name} theme", partial(setattr, app, "theme", name))
            )
        return commands

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)


class OcTuiApp(App[None]):
    """k9s for your own computers."""

    CSS_PATH = "oc_tui.tcss"
    TITLE = "oc-tui"
    COMMANDS = {OcTuiCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Keys"),
        Binding("colon", "command_mode", "Command"),
        Binding("q", "quit", "Quit"),
        Binding("escape", "back", "Back", show=False),
        # Priority, so the move happens as the key is dispatched: the keys typed right after it in one
        # burst (name, tab, value — a paste, tmux send-keys) reach the next field, not the one left.
        Binding("tab", "focus_next", "Next field", show=False, priority=True),
        Binding("shift+tab", "focus_previous", "Previous field", show=False, priority=True),
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While a terminal or desktop has the keyboard, Textual's priority keys (ctrl+p palette, ctrl+q
        quit) belong to the remote program: shells recall history with ctrl+p. The session's escape key
        (ctrl+]) gives the keyboard back to the app first. Tab is the screen's own where it says so
        (``OWNS_TAB``: the broadcast terminals go round with it)."""
        if action in ("focus_next", "focus_previous") and getattr(self.screen, "OWNS_TAB", False):
            return False
        return not steps_aside(self.focused, action)

    @dataclass
    class LocalPlaneReady(Message):
        plane: LocalControlPlane

    @dataclass
    class LocalPlaneFailed(Message):
        error: str

    @dataclass
    class LocalPlaneEvent(Message):
        kind: str
        text: str

    def __init__(
        self,
        profile: config.Profile,
        *,
        client: OpenComputersClient | None = None,
        theme: str = DEFAULT_THEME,
        themes: LoadedThemes | None = None,
        data_dir: Path | None = None,
        bind: str = "127.0.0.1",
        public_url: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        live: bool = True,
        read_only: bool = False,
        host_cache: bool = False,
    ) -> None:
        """``client``: a ready client to use instead of one built from the profile (its owner closes it).
        ``themes``: the themes to offer (with the user's, as ``oc-tui`` loads them); the bundled ones
        by default. ``data_dir``: where the embedded profile keeps its state; ``bind`` and ``public_url``: where
        its server listens and the URL other machines reach it at. ``clock``/``live``: see the module.
        ``host_cache``: draw the fleet from the last host list this profile was shown (kept in the data
        dir, see oc_tui/fleet_cache.py) while the first request is on its way, and keep the new one."""
        super().__init__()
        self.profile = profile
        self.client = client
        self._owns_client = client is None
        self._data_dir = data_dir or config.data_dir()
        self._bind, self._public_url = bind, public_url
        self._live = live
        self.networked = live
        """False in tests and screenshots: screens then do no network work of their own."""
        self.read_only: str | None = "--read-only" if read_only else None  # or "token" (the server says)
        """Why every mutating key is disabled (see oc_tui/readonly.py), or None."""
        self.histories: dict[str, list[str]] = {}
        """Command-line history per host id (and one for fan-out), for this run of the app."""
        self.places: dict[str, dict[str, str]] = {}
        """Where each host's tabs were left (the Files tab's directory), per host id, for this run."""
        self._local: LocalControlPlane | None = None
        loaded = themes if themes is not None else load_themes()
        self._themes = loaded.themes
        self._theme_problems = loaded.problems
        self._initial_theme = theme
        self.clock = clock
        """The time relative times are shown against (fixed in tests and screenshots)."""
        cache = None
        if host_cache and live:
            cache = fleet_cache.cache_path(self._data_dir, profile.name, profile.base_url, profile.token)
        shown = profile.base_url
        kept = config.kept_local_port(self._data_dir) if profile.embedded else None
        if kept is not None:  # the port this data dir's control plane is given (8787 may be another's)
            parts = urlsplit(profile.base_url)
            host = parts.hostname or "127.0.0.1"
            shown = urlunsplit(parts._replace(netloc=f"[{host}]:{kept}" if ":" in host else f"{host}:{kept}"))
        self.fleet = FleetScreen(profile.name, shown, clock, cache=cache)

    @property
    def theme_names(self) -> list[str]:
        return list(self._themes)

    def get_default_screen(self) -> Screen:
        return self.fleet

    def on_mount(self) -> None:
        for theme in self._themes.values():
            self.register_theme(theme)
        self.theme = self._initial_theme
        for problem in self._theme_problems:
            self.notify(problem, title="Theme file skipped", severity="warning", timeout=15)
        if not self._live:
            return
        if self.fleet.cache is not None:
            self.fleet.show_cached()  # then FleetScreen.CacheShown: connect
        else:
            self._connect()

    def on_fleet_screen_cache_shown(self) -> None:
        # The fleet is drawn from the cache (or there was none): get the HTTP client (its imports take
        # a while) after that frame is on the screen.
        self.call_after_refresh(self._connect)

    def _connect(self) -> None:
        if self.client is None and not self.profile.embedded:
            from oc_tui.api import OpenComputersClient

            self.client = OpenComputersClient(self.profile.base_url, self.profile.token)
        if self.client is not None:
            self.fleet.post_message(FleetScreen.ClientReady())
        else:
            self.fleet.post_message(FleetScreen.Connecting("starting local control plane…"))
            self._start_local()

    async def on_unmount(self) -> None:
        if self._local is not None:
            await self._local.stop()
        if self.client is not None and self._owns_client:
            await self.client.aclose()

    # --- the embedded control plane --------------------------------------------------------------

    @work(exclusive=True, group="local", exit_on_error=False)
    async def _start_local(self) -> None:
        import httpx

        from oc_tui.local import LocalControlPlane, LocalControlPlaneError

        port = httpx.URL(self.profile.base_url).port or config.LOCAL_PORT

        def on_event(kind: str, text: str) -> None:
            self.post_message(self.LocalPlaneEvent(kind, text))

        local = LocalControlPlane(
            self._data_dir, port, on_event=on_event, bind=self._bind, public_url=self._public_url
        )
        self._local = local
        try:
            await local.start()
        except (LocalControlPlaneError, OSError) as exc:
            self.post_message(self.LocalPlaneFailed(str(exc)))
        else:
            self.post_message(self.LocalPlaneReady(local))

    def on_key(self, event: events.Key) -> None:
        """A character typed while a dialog or a field was still opening (the keys of one burst, a paste,
        a fast typist) went to the screen — nothing had the keyboard yet — and bubbled up to here unseen
        by any field. A field that has the keyboard now gets it, in order, instead of losing it (a field
        that had it would have taken the character and stopped it)."""
        focused = self.focused
        if not event.is_printable or not event.character or focused is None or focused.disabled:
            return
        if isinstance(focused, Input):
            event.stop()
            selection = focused.selection
            if selection.is_empty:
                focused.insert_text_at_cursor(event.character)
            else:
                focused.replace(event.character, *selection)
        elif isinstance(focused, TextArea) and not focused.read_only:
            event.stop()
            focused.replace(event.character, *focused.selection)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Anything unexpected while starting the local control plane is reported, not a crash."""
        if event.state == WorkerState.ERROR:
            self.post_message(
                self.LocalPlaneFailed(f"{type(event.worker.error).__name__}: {event.worker.error}")
            )

    def on_oc_tui_app_local_plane_ready(self, message: LocalPlaneReady) -> None:
        self.client = message.plane.client()
        self.fleet.set_endpoint(self.client.base_url)
        self.fleet.post_message(FleetScreen.ClientReady())

    def on_oc_tui_app_local_plane_failed(self, message: LocalPlaneFailed) -> None:
        self.fleet.post_message(
            FleetScreen.ConnectFailed(f"local control plane did not start: {message.error}")
        )
        self.notify(host_markup(message.error), title="Local control plane", severity="error", timeout=15)

    def on_oc_tui_app_local_plane_event(self, message: LocalPlaneEvent) -> None:
        self.fleet.post_message(FleetScreen.Note(f"local: {message.text}"))
        if message.kind in LOCAL_WARNINGS:
            self.notify(
                host_markup(message.text), title="Local control plane", severity="warning", timeout=10
            )
        local = self._local
        if message.kind == "server_started" and local is not None and self.client is not None:
            if local.base_url and local.base_url != self.client.base_url:
                self._switch_client(local)

    @work(group="local", exit_on_error=False)
    async def _switch_client(self, local: LocalControlPlane) -> None:
        """The restarted server listens on another port: follow it with a new client."""
        old, self.client = self.client, local.client()
        self.fleet.set_endpoint(self.client.base_url)
        self.fleet.post_message(FleetScreen.ClientReady())
        if old is not None:
            await old.aclose()

    # --- global actions --------------------------------------------------------------------------

    def action_help(self) -> None:
        from oc_tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self._key_sections()))

    def _key_sections(self) -> list[KeySection]:
        # The host screens load on first use, not at start-up (first frame); so here.
        from oc_tui.screens import host
        from oc_tui.screens.cluster_topology import ClusterScreen
        from oc_tui.screens.clusters import ClustersScreen
        from oc_tui.screens.fanout import FanoutScreen

        def rows(bindings: Sequence[BindingType]) -> list[tuple[str, str]]:
            return [
                (
                    "  ".join(
                        self.get_key_display(replace(binding, key=key)) for key in binding.key.split(",")
                    ),
                    binding.tooltip or binding.description,
                )
                for binding in bindings
                if isinstance(binding, Binding) and binding.description
            ]

        return [
            ("Global", [*rows(self.BINDINGS), ("ctrl+p", "Command palette")]),
            (
                "Fleet",
                [
                    ("enter", f"Open the host: {', '.join(tab.TITLE.lower() for tab in host.HOST_TABS)}"),
                    *rows(FleetScreen.BINDINGS),
                    ("↑ ↓  j k", "Move"),
                    ("g  G", "First / last host"),
                ],
            ),
            *host.help_sections(rows),
            ("Fan-out results", [*rows(FanoutScreen.BINDINGS), ("↑ ↓", "Pick the host whose output shows")]),
            (":clusters", rows(ClustersScreen.BINDINGS)),
            (
                "A cluster's topology",
                [*rows(ClusterScreen.BINDINGS), ("enter", "Send the chat box's question")],
            ),
            (
                "Dialogs",
                [
                    ("tab", "Next field"),
                    ("enter", "Submit"),
                    ("esc", "Cancel"),
                    ("c", "Copy the oc-agent command"),
                ],
            ),
        ]

    def action_command_mode(self) -> None:
        from oc_tui.screens import views
        from oc_tui.screens.command import CommandScreen

        self.push_screen(CommandScreen(views.command_names()), self._run_command)

    def _run_command(self, command: str | None) -> None:
        if not command:
            return
        from oc_tui.screens import views

        name = command.split()[0].lower()
        view = views.find_view(command)
        if name in ("q", "quit", "q!"):
            self.exit()
        elif view is not None and view.open is not None:
            view.open(self)
            if view.name == "hosts":
                self.fleet.scope_to_group(views.group_argument(command))
        elif view is not None:
            self.notify(f":{name} is not yet available", severity="warning")
        else:
            self.notify(f"unknown command :{command} — try :hosts or :q", severity="error")

    def action_show_hosts(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.fleet.table.focus()

    async def action_back(self) -> None:
        """``esc``: back to the screen below (the fleet view stays)."""
        if len(self.screen_stack) > 1:
            self.pop_screen()
