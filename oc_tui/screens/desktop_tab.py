"""Host → Desktop tab: the host's screen through its VNC server, live, with keyboard and mouse.

Showing the tab connects (a worker: ticket, WebSocket, RFB handshake) and gives the picture the focus:
from then on every key goes to the remote screen except **ctrl+]**, which hands the focus back to the
tab, where ``enter`` takes control again, ``s`` saves a full-resolution PNG (to ~/Pictures, or the
current directory) and ``r`` reconnects. Mouse buttons, drags and the wheel go to the remote in its
pixel coordinates. Updates are converted to cells in a thread and only the rows they touch are redrawn.
The readout says: remote size @ scale, updates per second (2 s window), ``update`` (first to last byte
of the latest update: transfer and decode), ``input`` (from the latest key or click to the first update
after it: what typing feels like).

A host without a reachable VNC server refuses the session (close 4502, "no VNC server at …"): the pane
then says how to start one and how to point oc-agent at it. Tests and the screenshot script show a
still picture instead (``live=False``, :meth:`DesktopTab.show_picture`).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Static

from oc_tui.api import errors
from oc_tui.screens.host_tab import HostTab, HostTabContext
from oc_tui.widgets.desktop_view import DesktopView
from oc_tui.widgets.formatting import describe_error, host_markup

READOUT_SECONDS = 0.5

ENABLE_VNC = """\
[b]This host has no VNC server that oc-agent can reach.[/b]
{reason}

Start one on the host, for example:
  • a desktop already running (Linux/X11):  [b]x11vnc -localhost -display :0 -forever[/b]
  • a headless Linux box:  [b]Xvnc :1 -rfbport 5900 -localhost -SecurityTypes None[/b]
    then start programs on it:  [b]DISPLAY=:1 xterm &[/b]
  • macOS: System Settings → General → Sharing → Screen Sharing (set a VNC password)
  • Windows: a VNC server such as TightVNC or UltraVNC

oc-agent looks at 127.0.0.1:5900. Elsewhere, or with a password, start it with
  [b]oc-agent --vnc HOST:PORT --vnc-password-file FILE[/b]   (or OC_VNC_ADDR, OC_VNC_PASSWORD_FILE)
This machine's own host (its agent started by oc-tui): set those variables before starting oc-tui,
  e.g. [b]OC_VNC_ADDR=127.0.0.1:5901 OC_VNC_PASSWORD_FILE=~/.vnc/passwd oc-tui[/b]

Press [b]r[/b] to try again."""

AUTH_FAILED = """\
[b]{heading}[/b]
{reason}

Give oc-agent the VNC server's password: [b]oc-agent --vnc-password-file FILE[/b] (a text file, or a
vncpasswd file such as ~/.vnc/passwd), or the environment variable OC_VNC_PASSWORD; then restart it.

Press [b]r[/b] to try again."""


def screenshot_path(host_id: str, now: float | None = None) -> Path:
    """``~/Pictures/<host>-desktop-<time>.png``, or in the current directory without ~/Pictures."""
    from oc_tui.screens.save_picture import default_save_path

    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return default_save_path("Pictures", f"{host_id}-desktop-{stamp}.png")


class DesktopTab(HostTab, can_focus=True):
    """One host's desktop."""

    TAB_ID = "desktop"
    TITLE = "Desktop"
    KEY = "d"
    IN_HELP = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "control", "Control"),
        Binding("p", "save", "Save PNG"),
        Binding("r", "reconnect", "Reconnect"),
    ]

    @dataclass
    class Connected(Message):
        session: Any  # oc_tui.api.desktop.DesktopSession

    @dataclass
    class Ended(Message):
        """The session could not start or has ended; ``error`` says why (None: closed by us)."""

        error: BaseException | None

    def __init__(self, context: HostTabContext, *, id: str | None = None) -> None:
        super().__init__(context, id=id)
        self.session: Any = None
        self._state = "idle"  # idle, connecting, live, ended, picture
        self._picture: Any = None  # the PIL image shown when not live
        self._note = ""

    def compose(self) -> ComposeResult:
        yield Static(id="desktop-readout")
        yield DesktopView(id="desktop-view")
        yield Static(id="desktop-message")

    def on_mount(self) -> None:
        self._message("")
        self._update_readout()
        self.set_interval(READOUT_SECONDS, self._update_readout)

    def on_descendant_focus(self, _: events.DescendantFocus) -> None:
        self._update_readout()  # the hint says what the keys do now: at once, not at the next tick

    def on_descendant_blur(self, _: events.DescendantBlur) -> None:
        self._update_readout()

    @property
    def view(self) -> DesktopView:
        return self.query_one(DesktopView)

    def activate(self) -> bool:
        """The tab was shown: connect if not connected, and give the picture the keyboard."""
        if self.live and self._state == "idle":
            self.connect()
        self.take_focus(self.view if self._state in ("live", "picture") else self)
        return True

    # --- the session -------------------------------------------------------------------------------

    def connect(self) -> None:
        self._state = "connecting"
        self._message("Connecting to the host's desktop…")
        self._update_readout()
        self._run_session()

    @work(exclusive=True, group="desktop-session", exit_on_error=False)
    async def _run_session(self) -> None:
        client = self.client
        if client is None:
            self.post_message(self.Ended(errors.ConnectionFailed("no control plane")))
            return
        try:
            session = await client.open_desktop(self.host_id)
        except errors.OpenComputersError as exc:
            self.post_message(self.Ended(exc))
            return
        self.session = session
        self.post_message(self.Connected(session))
        error: BaseException | None = None
        try:
            await self.view.redraw(session.framebuffer)
            while True:
                rect = await session.next_update()
                await self.view.redraw(session.framebuffer, (rect.x, rect.y, rect.width, rect.height))
        except errors.OpenComputersError as exc:
            error = exc
        finally:
            await session.close()
            if self.session is session:
                self.session = None
            if error is not None:
                self.post_message(self.Ended(error))

    @on(Connected)
    def _connected(self, message: Connected) -> None:
        self._state = "live"
        self._message("")
        self._update_readout()
        if self.has_focus or self.screen.focused is None:
            self.view.focus()

    @on(Ended)
    def _ended(self, message: Ended) -> None:
        self._state = "ended"
        error = message.error
        if isinstance(error, errors.SessionRefused):
            from oc_tui.api.desktop import refusal_kind  # loads numpy and asyncvnc: only when needed

            kind = refusal_kind(error.reason)
            if kind == "no_vnc_server":
                self._message(ENABLE_VNC.format(reason=host_markup(error.reason)), "-refused")
            elif kind in ("vnc_auth_failed", "vnc_no_password"):
                heading = (
                    "The host's VNC server asks for a password, and oc-agent has none."
                    if kind == "vnc_no_password"
                    else "The host's VNC server refused oc-agent's password."
                )
                self._message(
                    AUTH_FAILED.format(heading=heading, reason=host_markup(error.reason)), "-refused"
                )
            else:
                self._message(
                    f"The desktop session was refused: {host_markup(error.reason)}\n\nPress r to retry."
                )
        elif error is not None:
            self._message(
                f"The desktop session ended: {host_markup(describe_error(error))}\n\nPress r to reconnect."
            )
        self._update_readout()
        if self.view.has_focus:
            self.focus()

    def action_reconnect(self) -> None:
        if not self.live:
            return
        session, self.session = self.session, None
        self.workers.cancel_group(self, "desktop-session")
        if session is not None:
            self.run_worker(session.close(), group="desktop-close")
        self.connect()

    def action_control(self) -> None:
        if self._state in ("live", "picture"):
            self.view.focus()
        elif self._state == "ended":
            self.action_reconnect()

    @on(DesktopView.Escaped)
    def _escaped(self) -> None:
        self.focus()

    @on(DesktopView.KeyPressed)
    def _key(self, message: DesktopView.KeyPressed) -> None:
        if self.session is not None:
            with contextlib.suppress(ValueError):  # a key the remote has no keysym for
                self.session.key(message.key, *message.modifiers)

    @on(DesktopView.Pointer)
    def _pointer(self, message: DesktopView.Pointer) -> None:
        session = self.session
        if session is None:
            return
        if message.wheel:
            session.scroll(message.x, message.y, message.wheel)
        elif message.button:
            session.mouse_button(message.x, message.y, message.button, message.down)
        else:
            session.mouse_move(message.x, message.y)

    # --- screenshots -------------------------------------------------------------------------------

    def action_save(self) -> None:
        """Ask where to save the screen as it is now (a PNG; the default in ~/Pictures), then save it."""
        image = self.session.image() if self.session is not None else self._picture
        if image is None:
            self.notify("Nothing to save yet: the desktop is not showing.", severity="warning")
            return
        from oc_tui.screens.save_picture import SavePictureDialog

        def saved(path: Path | None) -> None:
            if path is not None:
                self.notify(f"Saved {image.width}×{image.height} screenshot to {path}", title="Desktop")

        self.app.push_screen(SavePictureDialog(image, screenshot_path(self.host_id)), saved)

    # --- still pictures (tests, screenshots) -------------------------------------------------------

    def show_picture(self, image: Any, note: str = "demo picture") -> None:
        """Show a PIL image as if it were the remote screen (``live=False``)."""
        import numpy as np

        self._picture = image.convert("RGB")
        self._state = "picture"
        self._note = note
        self._message("")
        self.view.show(np.asarray(self._picture))
        self._update_readout()

    # --- the readout -------------------------------------------------------------------------------

    def _message(self, text: str, *classes: str) -> None:
        message = self.query_one("#desktop-message", Static)
        message.update(text)
        message.display = bool(text)
        message.set_class("-refused" in classes, "-refused")
        self.view.display = not text

    def _update_readout(self) -> None:
        readout = self.query_one("#desktop-readout", Static)
        view = self.view
        hint = "ctrl+] leave" if view.has_focus else "⏎ control"
        if self._state == "live" and self.session is not None:
            session = self.session
            stats = session.stats
            parts = [
                f"● {session.width}×{session.height} @{view.scale:.0%}",
                f"{session.current_fps():.1f} fps",
                f"update {_ms(stats.update_ms)}",
                f"input→screen {_ms(stats.input_ms)}",
            ]
            readout.update(" · ".join(parts) + f"   {hint}")
        elif self._state == "picture" and self._picture is not None:
            w, h = self._picture.size
            readout.update(f"◼ {w}×{h} @{view.scale:.0%} · {self._note}   {hint}")
        elif self._state == "connecting":
            readout.update("○ connecting…")
        elif self._state == "ended":
            readout.update("✕ not connected   r reconnect")
        else:
            readout.update("○ not connected" if self.live else "○ offline preview")
        readout.set_class(self._state == "live", "-live")


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"
