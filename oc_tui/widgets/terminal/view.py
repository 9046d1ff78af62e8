"""The terminal widget: PTY bytes in (:meth:`TerminalView.feed`), the user's key bytes out (messages).

Why it is built this way:

- ``feed`` only queues. A task on the event loop parses the queue in slices of at most
  ``PARSE_SLICE`` seconds and sleeps ``YIELD`` between slices, so keys, timers and other widgets
  keep running while a program prints megabytes. (A parser thread would not help: the parse is pure
  Python and holds the GIL, and a busy thread makes every GIL hand-over of the UI thread wait.)
- Redraws are coalesced to at most ``1 / FRAME_INTERVAL`` per second (``1 / BUSY_FRAME_INTERVAL``
  while a flood of output waits to be parsed: nobody reads a screen that scrolls that fast, and each
  frame's drawing is time the parser does not get), and a frame re-renders and refreshes only the
  lines the screen marked dirty (plus the cursor's old and new line).
- The widget is a plain Line-API widget, not a ScrollView: the terminal owns its own scrollback.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.timer import Timer

from oc_tui.widgets.key_capture import KeyCapture
from oc_tui.widgets.terminal.fastparse import FastStream
from oc_tui.widgets.terminal.keys import key_to_bytes, paste_to_bytes
from oc_tui.widgets.terminal.render import LineRenderer
from oc_tui.widgets.terminal.screen import TerminalScreen

WHEEL_LINES = 3
SYNC_TIMEOUT = 0.25
"""Seconds a frame waits at most for a program's synchronized update (mode 2026) to end."""


class TerminalView(KeyCapture):
    """A terminal: feed it the PTY's bytes, it emits the user's key bytes.

    Every key goes to the program (ctrl combinations, arrows, home/end, function keys, alt, paste),
    tab and ctrl+c included, except one: **ctrl+]** (``ESCAPE_KEY``, the telnet/ssh tradition), which
    sends nothing and posts :class:`Escaped` so the parent can move the focus out and the app's own
    keys work again. Priority bindings of the app (Textual's ``ctrl+q`` quit, the ``ctrl+p`` command
    palette) are checked by Textual before any widget sees the key, so they win unless the app's
    ``check_action`` declines those actions while a ``TerminalView`` has the focus.

    Scrollback: shift+pageup / shift+pagedown and the mouse wheel scroll the history while the
    program is on the main screen; any key that sends bytes returns to the bottom. On the alternate
    screen (vim, less, htop) those keys and the wheel go to the program instead (the wheel as arrow
    keys). A program that turned mouse tracking on (modes 1000/1002/1003, SGR form 1006) gets clicks
    and the wheel as mouse reports.

    Messages: :class:`Input` (bytes for the PTY: keys, pastes, and replies to the program's
    queries), :class:`Resized` (the grid's size, once it first has one and on every change) and
    :class:`Escaped`.
    """

    DEFAULT_CSS = """
    TerminalView {
        width: 1fr;
        height: 1fr;
    }
    """

    LEAVE = "Leave terminal"

    FRAME_INTERVAL = 1 / 60
    """Seconds between redraws at most."""
    BUSY_FRAME_INTERVAL = 1 / 20
    """Seconds between redraws at most while output is queued faster than it is parsed (measured on
    ``ls -lR``: a frame at 60 per second took half the CPU away from the parser)."""
    PARSE_SLICE = 0.008
    """Seconds of parsing before yielding to the event loop."""
    PIECE = 16_384
    YIELD = 0.001
    """Seconds the parser sleeps between slices: a bare ``sleep(0)`` lets the loop run one round, but
    a key or a timer travels through several tasks (driver → app → widget → handler), and each hop
    would wait a whole slice; a millisecond lets the whole chain through (measured: timer gaps under
    a 20 MB flood fell from ~500 ms to under 100 ms, throughput unchanged)."""
    """Bytes parsed at a time (queued data is split into pieces this large)."""

    class Input(Message):
        """Bytes for the PTY: the user's keys and pastes, and the terminal's replies to queries."""

        def __init__(self, terminal: TerminalView, data: bytes) -> None:
            super().__init__()
            self.terminal = terminal
            self.data = data

        @property
        def control(self) -> TerminalView:
            return self.terminal

    class Resized(Message):
        """The terminal's size in cells changed (posted once the widget first has a size, too)."""

        def __init__(self, terminal: TerminalView, cols: int, rows: int) -> None:
            super().__init__()
            self.terminal = terminal
            self.cols = cols
            self.rows = rows

        @property
        def control(self) -> TerminalView:
            return self.terminal

    class Escaped(KeyCapture.Escaped):
        """The escape key was pressed: the parent should move the focus out of the terminal."""

        def __init__(self, terminal: TerminalView) -> None:
            super().__init__()
            self.terminal = terminal

        @property
        def control(self) -> TerminalView:
            return self.terminal

    def __init__(self, *, scrollback: int = 5000, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._screen = TerminalScreen(80, 24, scrollback)
        self._stream = FastStream(self._screen)
        self._renderer = LineRenderer()
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._pump_task: asyncio.Task[None] | None = None
        self._frame_timer: Timer | None = None
        self._last_frame = 0.0
        self._strips: list[Strip] = []
        self._offset = 0
        """Lines scrolled back into history (0: the live screen)."""
        self._seen_pushed = 0
        self._drawn_cursor: tuple[int, int, bool] | None = None
        self._posted_size: tuple[int, int] | None = None
        self._live = False
        self._sync_since = 0.0

    # --- public API --------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Queue bytes from the PTY; they are parsed off the UI path and drawn within a frame or so."""
        if not data:
            return
        if len(data) > self.PIECE:
            view = memoryview(data)
            self._pending.extend(bytes(view[i : i + self.PIECE]) for i in range(0, len(data), self.PIECE))
        else:
            self._pending.append(bytes(data))
        self._pending_bytes += len(data)
        self._start_pump()

    def reset(self) -> None:
        """Forget everything: screen, scrollback, modes and queued bytes (a new session starts)."""
        self._pending.clear()
        self._pending_bytes = 0
        self._stream.reset()
        self._screen.reset()
        self._screen.clear_history()
        self._offset = 0
        self._redraw_all()

    @property
    def size_cells(self) -> tuple[int, int]:
        """(cols, rows) of the terminal grid."""
        return self._screen.columns, self._screen.lines

    @property
    def pending_bytes(self) -> int:
        """Bytes fed but not parsed yet (a session may pause reading when this grows large)."""
        return self._pending_bytes

    @property
    def terminal_screen(self) -> TerminalScreen:
        """The cell grid (read it, do not change it): for tests and for copying text."""
        return self._screen

    @property
    def title(self) -> str:
        """The window title the program set (OSC 0/2), or ``""``."""
        return self._screen.title

    @property
    def scrolled_back(self) -> int:
        """Lines of history scrolled into view (0 at the bottom)."""
        return self._offset

    def flush(self) -> None:
        """Parse everything queued and draw it now. Blocks for as long as that takes: for tests, and
        for the moment a session ends."""
        while self._pending:
            self._parse(budget=None)
        self._after_parse()
        if self._live:
            self._frame()

    def scroll_history(self, lines: int) -> None:
        """Scroll the view ``lines`` into history (negative: towards the bottom)."""
        if self._screen.in_alternate:
            return
        offset = max(0, min(self._offset + lines, len(self._screen.history)))
        if offset != self._offset:
            self._offset = offset
            self._seen_pushed = self._screen.pushed
            self._redraw_all()

    # --- lifecycle ---------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self._live = True
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._restyle())
        self._apply_size()
        self._start_pump()

    def on_unmount(self) -> None:
        self._live = False
        if self._pump_task is not None:
            self._pump_task.cancel()
            self._pump_task = None

    def on_resize(self, event: events.Resize) -> None:
        self._apply_size()

    def on_focus(self) -> None:
        self._request_frame()

    def on_blur(self) -> None:
        self._request_frame()

    def _restyle(self) -> None:
        self._redraw_all()

    def _apply_size(self) -> None:
        cols, rows = self.size.width, self.size.height
        if cols < 1 or rows < 1:
            return
        self._screen.resize(rows, cols)
        self._redraw_all()
        if self._posted_size != (cols, rows):
            self._posted_size = (cols, rows)
            self.post_message(self.Resized(self, cols, rows))

    # --- parsing -----------------------------------------------------------------------------------

    def _start_pump(self) -> None:
        if self._pump_task is not None or not self._live or not self._pending:
            return
        self._pump_task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        try:
            while self._pending:
                self._parse(budget=self.PARSE_SLICE)
                self._after_parse()
                await asyncio.sleep(self.YIELD)
        finally:
            self._pump_task = None

    def _parse(self, budget: float | None) -> None:
        deadline = time.perf_counter() + budget if budget is not None else None
        pending, feed = self._pending, self._stream.feed
        while pending:
            data = pending.popleft()
            self._pending_bytes -= len(data)
            try:
                feed(data)
            except Exception as error:  # a parser bug must not stop the terminal: drop the piece
                self.log.error(f"terminal: could not parse {len(data)} bytes: {error!r}")
            if deadline is not None and time.perf_counter() >= deadline:
                break

    def _after_parse(self) -> None:
        screen = self._screen
        if screen.replies:
            reply = "".join(screen.replies).encode("utf-8")
            screen.replies.clear()
            self.post_message(self.Input(self, reply))
        if screen.bells:
            screen.bells = 0
            if self._live:
                self.app.bell()
        self._request_frame()

    # --- drawing -----------------------------------------------------------------------------------

    def _request_frame(self) -> None:
        if self._frame_timer is not None or not self._live:
            return
        interval = self.BUSY_FRAME_INTERVAL if self._pending else self.FRAME_INTERVAL
        delay = self._last_frame + interval - time.monotonic()
        self._frame_timer = self.set_timer(max(delay, 0.002), self._frame, name="terminal-frame")

    def _redraw_all(self) -> None:
        self._screen.dirty.update(range(self._screen.lines))
        self._drawn_cursor = None
        self._request_frame()

    def _frame(self) -> None:
        """Render the dirty lines and refresh only those."""
        if self._frame_timer is not None:
            self._frame_timer.stop()
            self._frame_timer = None
        now = time.monotonic()
        screen = self._screen
        if screen.synchronized:  # the program is mid-frame (mode 2026): wait for it, within reason
            self._sync_since = self._sync_since or now
            if now - self._sync_since < SYNC_TIMEOUT:
                self._last_frame = now
                self._request_frame()
                return
        self._sync_since = 0.0
        self._last_frame = now
        lines, columns = screen.lines, screen.columns
        base = self.rich_style  # the widget's colours: "default" cells follow the theme
        if base != self._renderer.base:
            self._renderer.set_base(base)
            screen.dirty.update(range(lines))
            self._drawn_cursor = None
        if len(self._strips) != lines:
            self._strips = [Strip.blank(columns)] * lines
            screen.dirty.update(range(lines))
        if screen.in_alternate:
            self._offset = 0
        if self._offset:
            self._offset = min(len(screen.history), self._offset + screen.pushed - self._seen_pushed)
            self._seen_pushed = screen.pushed
            screen.dirty.clear()
            self._render_history_view()
            return
        self._seen_pushed = screen.pushed
        cursor = screen.cursor
        shown = (cursor.y, min(cursor.x, columns - 1), self.has_focus) if not cursor.hidden else None
        rows = {y for y in screen.dirty if y < lines}
        screen.dirty.clear()
        if shown != self._drawn_cursor:
            for state in (shown, self._drawn_cursor):
                if state is not None and state[0] < lines:
                    rows.add(state[0])
            self._drawn_cursor = shown
        if not rows:
            return
        strip = self._renderer.strip
        buffer = screen.buffer
        for y in rows:
            if shown is not None and y == shown[0]:
                self._strips[y] = strip(buffer[y], columns, shown[1], shown[2])
            else:
                self._strips[y] = strip(buffer[y], columns)
        if len(rows) >= lines // 2:
            self.refresh()
        else:
            width = self.size.width
            self.refresh(*(Region(0, y, width, 1) for y in sorted(rows)))

    def _render_history_view(self) -> None:
        screen = self._screen
        history, columns = screen.history, screen.columns
        start = len(history) - self._offset
        for row in range(screen.lines):
            index = start + row
            line = history[index] if index < len(history) else screen.buffer[index - len(history)]
            self._strips[row] = self._renderer.strip(line, columns)
        label = f" ↑ {self._offset}/{len(history)} lines "  # where the view is: keys return to the bottom
        if len(label) < columns:
            marker = Strip([Segment(label, self._renderer.base + Style(reverse=True))])
            self._strips[0] = Strip.join([self._strips[0].crop(0, columns - len(label)), marker])
        self._drawn_cursor = None
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        strip = self._strips[y] if y < len(self._strips) else Strip.blank(width, self._renderer.base)
        if strip.cell_length != width:
            strip = strip.adjust_cell_length(width, self._renderer.base)
        return strip

    # --- input -------------------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if self._offset:
            self._offset = 0
            self._redraw_all()
        self.post_message(self.Input(self, data))

    def escaped(self) -> Escaped:
        return self.Escaped(self)

    def remote_key(self, event: events.Key) -> None:
        key = event.key
        screen = self._screen
        if key in ("shift+pageup", "shift+pagedown") and not screen.in_alternate:
            page = max(1, screen.lines - 1)
            self.scroll_history(page if key == "shift+pageup" else -page)
            return
        data = key_to_bytes(key, event.character, app_cursor=screen.app_cursor_keys)
        if data:
            self._send(data)

    def on_paste(self, event: events.Paste) -> None:
        event.stop()
        if event.text:
            self._send(paste_to_bytes(event.text, bracketed=self._screen.bracketed_paste))

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self._wheel(True, event)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self._wheel(False, event)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        if self._screen.mouse_tracking and event.button in (1, 2, 3):
            event.stop()
            self._mouse_report(event.button - 1, event, release=False)

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._screen.mouse_tracking and event.button in (1, 2, 3):
            event.stop()
            self._mouse_report(event.button - 1, event, release=True)

    def _mouse_report(self, button: int, event: events.MouseEvent, *, release: bool = False) -> None:
        """An xterm mouse report (SGR form if the program asked for mode 1006): clicks and the wheel
        reach programs that enabled mouse tracking (htop, vim with mouse=a, tmux)."""
        button += 4 * event.shift + 8 * event.meta + 16 * event.ctrl
        x, y = int(event.x) + 1, int(event.y) + 1
        if self._screen.sgr_mouse:
            report = f"\x1b[<{button};{x};{y}{'m' if release else 'M'}".encode()
        else:
            code = 3 if release else button
            report = b"\x1b[M" + bytes([32 + code, 32 + min(x, 223), 32 + min(y, 223)])
        self._send(report)

    def _wheel(self, up: bool, event: events.MouseEvent) -> None:
        screen = self._screen
        if screen.mouse_tracking:
            self._mouse_report(64 if up else 65, event)
        elif screen.in_alternate:
            arrow = key_to_bytes("up" if up else "down", None, app_cursor=screen.app_cursor_keys)
            assert arrow is not None
            self._send(arrow * WHEEL_LINES)
        else:
            self.scroll_history(WHEEL_LINES if up else -WHEEL_LINES)
