"""Host → Terminal tab: login shells on the host, several at once as inner tabs.

Inside a terminal every key goes to the shell, so the tab's own keys live one step out: **ctrl+]**
leaves the terminal for the tab's bar, where ``n`` opens another terminal, ``w``/``x`` closes this one,
← → switch and ``enter`` goes back in (as does ``t``, the host screen's "Terminal" key). Showing the tab
opens the first terminal. A session that ends leaves its screen and says ``[exited N] press enter to
restart``; one that could not be opened says why (in the pane and in a notification), and ``enter``
tries again.

Data flow: each :class:`TerminalPane` runs its session in a worker on the app's event loop: output is
fed to the :class:`TerminalView` (which parses it off the UI path), the view's ``Input`` and ``Resized``
messages are queued to a sender task. While the view has a large backlog to parse, the worker stops
reading the socket, so a huge ``cat`` slows the program on the host instead of piling up here.
Tests and the screenshot script use ``live=False`` (no sessions) and feed the view themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import string
from collections.abc import Callable
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import ContentSwitcher, Static, Tab, Tabs

from oc_tui.api import OpenComputersClient, errors
from oc_tui.api.terminal import TerminalSession
from oc_tui.screens.host_tab import HostTab, HostTabContext, client_of
from oc_tui.widgets.formatting import describe_error, host_markup, host_text
from oc_tui.widgets.terminal import TerminalView

BACKLOG_LIMIT = 1 << 20
"""Bytes the view may have queued unparsed before the session stops reading the socket."""
MIN_SIZE = (2, 2)
"""A smaller grid is a pane being laid out, not a size to give the PTY."""

HELP = [
    ("ctrl+]", "Leave the terminal: focus its tab bar (every other key goes to the shell)"),
    ("n", "New terminal (tab bar)"),
    ("w  x", "Close the terminal (tab bar)"),
    ("← →", "Switch terminals (tab bar)"),
    ("enter  t", "Back into the terminal (tab bar); enter restarts an ended one"),
    ("shift+pgup/pgdn", "Scroll back (in the terminal; the mouse wheel too)"),
]
"""Rows for the ``?`` help screen."""
SHADOWED = [*string.ascii_letters, *string.digits, "escape", "question_mark", "colon", "slash", "space"]
"""Keys the footer must not offer while the terminal has the focus (see :attr:`TerminalPane.BINDINGS`)."""


def _note(text: str, sgr: str) -> bytes:
    """A line the tab writes into a terminal itself (not from the host): on a fresh line, styled."""
    return f"\x1b[0m\r\n\x1b[{sgr}m{text}\x1b[0m\r\n".encode()


class TerminalPane(Vertical):
    """One terminal: a :class:`TerminalView` and the session behind it."""

    DEFAULT_CSS = """
    TerminalPane { height: 1fr; }
    """

    # The view sends every key to the shell, so the host screen's and the app's one-key bindings do
    # nothing while it has the focus. These hidden bindings shadow them, so the footer shows only what
    # works in a terminal (ctrl+]); they never fire, as the view stops every key first.
    BINDINGS: ClassVar[list[BindingType]] = [Binding(",".join(SHADOWED), "typed", show=False, system=True)]

    class StateChanged(Message):
        """The session connected, ended or failed: the tab relabels it."""

        def __init__(self, pane: TerminalPane) -> None:
            super().__init__()
            self.pane = pane

    def __init__(self, host_id: str, number: int, *, live: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.host_id = host_id
        self.number = number
        self.live = live
        self.state = "idle"
        """idle → connecting → running → ended | failed; ``enter`` on ended/failed starts again."""
        self.exit_note = ""
        self._grid: tuple[int, int] | None = None
        self._keys = bytearray()
        self._resize: tuple[int, int] | None = None
        self._wake = asyncio.Event()
        self.on_typed: Callable[[TerminalPane, bytes], bool] | None = None
        """Hears what is typed first; True: it took care of the keys (the broadcast screen's hook)."""

    def compose(self) -> ComposeResult:
        yield TerminalView(id=f"{self.id}-view" if self.id else None)

    @property
    def view(self) -> TerminalView:
        return self.query_one(TerminalView)

    @property
    def client(self) -> OpenComputersClient | None:
        return client_of(self)

    @property
    def label(self) -> str:
        suffix = {"connecting": " …", "ended": f" ({host_markup(self.exit_note)})", "failed": " (failed)"}
        return f"{self.number}{suffix.get(self.state, '')}"

    def action_typed(self) -> None:
        """Never runs: the view has taken the key for the shell."""

    def _set_state(self, state: str) -> None:
        self.state = state
        self.post_message(self.StateChanged(self))

    # --- the view's messages -----------------------------------------------------------------------

    @on(TerminalView.Resized)
    def _resized(self, event: TerminalView.Resized) -> None:
        event.stop()
        if event.cols < MIN_SIZE[0] or event.rows < MIN_SIZE[1]:
            return
        self._grid = (event.cols, event.rows)
        if self.state == "idle":
            self.start()
        elif self.state in ("connecting", "running"):
            self._resize = self._grid
            self._wake.set()

    @on(TerminalView.Input)
    def _input(self, event: TerminalView.Input) -> None:
        event.stop()
        if self.on_typed is not None and self.on_typed(self, event.data):
            return  # the owner dispatched the keys (input broadcast)
        if self.state in ("connecting", "running"):  # typed while connecting: sent once connected
            self.send_keys(event.data)
        elif self.state in ("ended", "failed") and event.data in (b"\r", b"\n"):
            self.view.reset()
            self.start()

    def send_keys(self, data: bytes) -> None:
        """Type ``data`` into the session (while it connects: sent once connected; else dropped)."""
        if self.state in ("connecting", "running"):
            self._keys += data
            self._wake.set()

    # --- the session -------------------------------------------------------------------------------

    def start(self) -> None:
        """Open a session at the view's size (once the view has one); a no-op without ``live``."""
        if not self.live or self._grid is None:
            return
        self._keys.clear()
        self._resize = None
        self._set_state("connecting")
        self.run_session(*self._grid)

    @work(exclusive=True, group="session", exit_on_error=False)
    async def run_session(self, cols: int, rows: int) -> None:
        client = self.client
        if client is None:
            self._failed("not connected to a control plane")
            return
        try:
            term = await client.open_terminal(self.host_id, cols, rows)
        except errors.OpenComputersError as exc:
            self._failed(describe_error(exc))
            return
        except Exception as exc:  # a bug or an odd URL must not leave the pane "connecting" for ever
            self._failed(f"{type(exc).__name__}: {exc}")
            return
        sender = asyncio.create_task(self._send(term))
        try:
            async with term:
                self._set_state("running")
                view = self.view
                async for chunk in term:
                    view.feed(chunk)
                    while view.pending_bytes > BACKLOG_LIMIT:  # let the parser catch up first
                        await asyncio.sleep(0.01)
        except errors.OpenComputersError as exc:
            self._failed(describe_error(exc), opened=True)
            return
        except Exception as exc:
            self._failed(f"{type(exc).__name__}: {exc}", opened=True)
            return
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        self._ended(term)

    async def _send(self, term: TerminalSession) -> None:
        """Keys and sizes to the session, in order, as few frames as the typing allows."""
        with contextlib.suppress(errors.OpenComputersError):
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._resize is not None:
                    size, self._resize = self._resize, None
                    await term.resize(*size)
                if self._keys:
                    data = bytes(self._keys)
                    self._keys.clear()
                    await term.send(data)

    def _ended(self, term: TerminalSession) -> None:
        if term.exit_signal is not None:
            self.exit_note = f"signal {term.exit_signal}"
        elif term.exit_code is not None:
            self.exit_note = f"exited {term.exit_code}"
        else:
            self.exit_note = "closed"
        self._leave_alternate_screen()
        self.view.feed(_note(f"[{self.exit_note}] press enter to restart", "7"))
        self._set_state("ended")

    def _failed(self, reason: str, *, opened: bool = False) -> None:
        """The session could not be opened, or (``opened``) was lost: a dropped connection, a restarted
        control plane, the host gone offline. ``reason`` may be relayed from the host: shown escaped."""
        reason = host_text(reason)
        self.exit_note = reason
        self._leave_alternate_screen()
        what = "terminal lost" if opened else "could not open a terminal"
        self.view.feed(_note(f"[{what}: {reason}] press enter to try again", "1;31"))
        self.app.notify(host_markup(reason), title="Terminal", severity="error")
        self._set_state("failed")

    def _leave_alternate_screen(self) -> None:
        """A program that died full-screen (vim, htop) must not hide the note."""
        if self.view.terminal_screen.in_alternate:
            self.view.feed(b"\x1b[?1049l")

    def stop(self) -> None:
        """End the session (the host hangs the shell up)."""
        self.workers.cancel_group(self, "session")


class SessionTabs(Tabs):
    """The bar of a host's terminals; it has the focus when the keys are the tab's, not the shell's."""

    DEFAULT_CSS = """
    SessionTabs { height: 1; }
    SessionTabs Underline { display: none; }
    SessionTabs Tab { padding: 0 1; }
    SessionTabs Tab.-active { background: $panel; text-style: bold; }
    SessionTabs:focus Tab.-active { background: $primary; color: $text; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_terminal", "New terminal"),
        Binding("w,x", "close_terminal", "Close terminal"),
        Binding("enter", "enter_terminal", "Into terminal"),
    ]

    def action_new_terminal(self) -> None:
        self.post_message(TerminalTab.Command("new"))

    def action_close_terminal(self) -> None:
        self.post_message(TerminalTab.Command("close"))

    def action_enter_terminal(self) -> None:
        self.post_message(TerminalTab.Command("enter"))


class TerminalTab(HostTab):
    """Terminals on one host, as inner tabs."""

    TAB_ID = "terminal"
    TITLE = "Terminal"
    KEY = "t"
    HELP_ROWS = HELP

    DEFAULT_CSS = """
    TerminalTab #terminal-panes { height: 1fr; }
    TerminalTab #terminal-empty { color: $text-muted; padding: 1 2; }
    """

    class Command(Message):
        """A key of the tab bar: ``new``, ``close`` or ``enter``."""

        def __init__(self, command: str) -> None:
            super().__init__()
            self.command = command

    def __init__(self, context: HostTabContext, *, id: str | None = None) -> None:
        super().__init__(context, id=id)
        self._opened = 0
        """Terminals opened so far (numbers them)."""
        self._activated = False

    def compose(self) -> ComposeResult:
        yield SessionTabs(id="terminal-tabs")
        with ContentSwitcher(id="terminal-panes", initial="terminal-empty"):
            yield Static(
                "No terminal open. Press n for a new one (ctrl+] leaves a terminal for this bar).",
                id="terminal-empty",
            )

    @property
    def bar(self) -> SessionTabs:
        return self.query_one(SessionTabs)

    @property
    def panes(self) -> list[TerminalPane]:
        return list(self.query(TerminalPane))

    @property
    def current(self) -> TerminalPane | None:
        current = self.query_one(ContentSwitcher).current
        return next((pane for pane in self.panes if pane.id == current), None)

    def activate(self) -> bool:
        """The tab was shown: open the first terminal, or go back into the current one."""
        if not self._activated:
            self._activated = True
            self.run_worker(self.new_terminal(), group="terminal-tab")
        else:
            self._focus_terminal()
        return True

    async def new_terminal(self) -> TerminalPane:
        """Open another terminal and focus it; its session starts once the view has a size."""
        self._opened += 1
        number = self._opened
        pane = TerminalPane(self.host_id, number, live=self.live, id=f"terminal-{number}")
        switcher = self.query_one(ContentSwitcher)
        await switcher.mount(pane)
        await self.bar.add_tab(Tab(pane.label, id=f"tab-terminal-{number}"))
        self._show(pane)
        return pane

    async def close_terminal(self, pane: TerminalPane) -> None:
        pane.stop()
        panes = self.panes
        index = panes.index(pane)
        await self.bar.remove_tab(f"tab-{pane.id}")
        await pane.remove()
        rest = [p for p in panes if p is not pane]
        if rest:
            self._show(rest[min(index, len(rest) - 1)], focus=False)
        else:
            self.query_one(ContentSwitcher).current = "terminal-empty"
        self.bar.focus()

    def _show(self, pane: TerminalPane, *, focus: bool = True) -> None:
        self.query_one(ContentSwitcher).current = pane.id
        tab_id = f"tab-{pane.id}"
        if self.bar.active != tab_id:
            self.bar.active = tab_id
        if focus:
            pane.view.focus()

    def _focus_terminal(self) -> None:
        pane = self.current
        self.take_focus(pane.view if pane is not None else self.bar)

    # --- messages ------------------------------------------------------------------------------------

    @on(Tabs.TabActivated, "#terminal-tabs")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()  # ours, not the host screen's tabs
        pane_id = (event.tab.id or "").removeprefix("tab-")
        if pane_id and self.query_one(ContentSwitcher).current != pane_id:
            self.query_one(ContentSwitcher).current = pane_id

    @on(Tabs.Cleared, "#terminal-tabs")
    def _tabs_cleared(self, event: Tabs.Cleared) -> None:
        event.stop()

    @on(TerminalView.Escaped)
    def _escaped(self, event: TerminalView.Escaped) -> None:
        event.stop()
        self.bar.focus()

    @on(TerminalPane.StateChanged)
    def _state_changed(self, event: TerminalPane.StateChanged) -> None:
        event.stop()
        with contextlib.suppress(NoMatches):  # closed meanwhile
            self.bar.query_one(f"#tab-{event.pane.id}", Tab).label = event.pane.label

    async def on_terminal_tab_command(self, message: Command) -> None:
        message.stop()
        pane = self.current
        if message.command == "new":
            await self.new_terminal()
        elif message.command == "close" and pane is not None:
            await self.close_terminal(pane)
        elif message.command == "enter" and pane is not None:
            pane.view.focus()
            if pane.state in ("ended", "failed"):
                pane.view.reset()
                pane.start()
