"""A job's output as a terminal would show it: ANSI colours, carriage returns, and only the tail kept.

Output arrives as byte chunks (one per stream event, stdout and stderr interleaved as produced).
:meth:`JobOutput.feed` only queues them; a short timer turns everything queued into lines at most
``FLUSH_INTERVAL`` apart, so a job printing 50 MB costs a few hundred redraws, not a million writes.

Memory and time stay bounded whatever a job prints: only the last ``MAX_LINES`` lines are kept, a line
longer than ``MAX_LINE_CHARS`` is broken, and a flush holding more lines than are kept decodes only its
tail (the colour state of skipped lines is then lost, which is the price of staying responsive). The
border says how many lines were dropped; the full output stays on the server.

Lines are not wrapped: long ones scroll sideways, as in a pager, so a resize costs nothing. The view
follows the tail until the operator scrolls up, and follows again once scrolled back to the end.
"""

from __future__ import annotations

import codecs
import re
from collections import deque
from typing import ClassVar

from rich.ansi import AnsiDecoder
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from oc_tui.widgets.formatting import host_text
from oc_tui.widgets.styles import text_style

MAX_LINES = 10_000
"""Lines kept for display (the oldest are dropped)."""
MAX_LINE_CHARS = 4_000
"""A line longer than this is broken (a job printing megabytes without a newline stays cheap)."""
FLUSH_INTERVAL = 1 / 20
"""Seconds between turning queued bytes into lines."""

# C0 controls a terminal would act on but a cell grid cannot show; ESC (ANSI), TAB, LF and CR are kept.
_CONTROLS = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 27), *range(28, 32), 127])
# Control strings, whole (ECMA-48 8.3.89/8.3.27/8.3.2/8.3.94/8.3.128: OSC, DCS, APC, PM, SOS), ended by ST
# or, for OSC, by BEL as xterm takes it: a window title, an OSC 52 clipboard payload or a DCS payload is
# not text of the output. Taken out before the controls above (BEL among them), which would otherwise
# leave the payload behind as text.
_CONTROL_STRING = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[P_^X][^\x1b]*(?:\x1b\\)?")


class JobOutput(ScrollView, can_focus=True):
    """Scrollable, colour-rendered output of one job; :meth:`feed` bytes, :meth:`clear` to start over."""

    COMPONENT_CLASSES = {"job-output--stderr", "job-output--note"}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "scroll_up", "Up", show=False),
        Binding("down,j", "scroll_down", "Down", show=False),
        Binding("left,h", "scroll_left", "Left", show=False),
        Binding("right,l", "scroll_right", "Right", show=False),
        Binding("home,g", "scroll_home", "Top", show=False),
        Binding("end,G", "scroll_end", "End", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
    ]

    following: reactive[bool] = reactive(True, init=False)
    """True while new output scrolls into view (the view is at the end)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._lines: deque[Text] = deque(maxlen=MAX_LINES)
        self._pending: list[tuple[bytes, bool]] = []
        self._flush_scheduled = False
        self._cache: LRUCache[tuple[int, int, int], Strip] = LRUCache(1024)
        self._reset_state()

    def _reset_state(self) -> None:
        self._lines.clear()
        self._pending.clear()
        self._cache.clear()
        self._partial = Text()
        self._carriage = False
        self._dropped = 0
        """Lines no longer kept (dropped from the top or skipped in a flush)."""
        self._total = 0
        """Complete lines seen so far (absolute numbering, for the render cache)."""
        self._widest = 0
        self._decoders = {
            stream: codecs.getincrementaldecoder("utf-8")(errors="replace") for stream in (False, True)
        }
        self._ansi = AnsiDecoder()

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._restyle())
        self._update_subtitle()

    # --- input -------------------------------------------------------------------------------------

    def feed(self, data: bytes, *, stderr: bool = False) -> None:
        """Queue output bytes; they show within ``FLUSH_INTERVAL``."""
        if not data:
            return
        self._pending.append((data, stderr))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.set_timer(FLUSH_INTERVAL, self.flush)

    def add_note(self, text: str) -> None:
        """A line from oc-tui itself (exit status, truncation), set apart by style; a relayed error in it
        is shown escaped."""
        self.flush()
        follow = self.following
        if self._partial.plain:
            self._end_partial()
        self._push(Text(host_text(text), style=text_style(self, "job-output--note")))
        self._refresh_size(follow)

    def clear(self) -> None:
        """Forget everything shown and queued (another job is about to be shown)."""
        self._reset_state()
        self._refresh_size(follow=False)
        self.scroll_to(0, 0, animate=False, immediate=True, force=True)
        self.following = True

    @property
    def line_count(self) -> int:
        """Lines kept, the unfinished last one included."""
        return len(self._lines) + (1 if self._partial.plain else 0)

    @property
    def dropped(self) -> int:
        return self._dropped

    def plain_lines(self) -> list[str]:
        """The kept lines as plain text (the unfinished last one included), for tests and copying."""
        self.flush()
        lines = [line.plain for line in self._lines]
        if self._partial.plain:
            lines.append(self._partial.plain)
        return lines

    # --- turning bytes into lines ------------------------------------------------------------------

    def flush(self) -> None:
        """Decode everything queued into lines, then redraw once."""
        self._flush_scheduled = False
        if not self._pending:
            return
        follow = self.following
        runs: list[tuple[str, bool]] = []
        chunks: list[bytes] = []
        for index, (data, stderr) in enumerate(self._pending):
            chunks.append(data)
            following = self._pending[index + 1][1] if index + 1 < len(self._pending) else None
            if following != stderr:  # one decode per run of the same stream
                text = self._decoders[stderr].decode(b"".join(chunks))
                chunks.clear()
                if text:
                    runs.append((text, stderr))
        self._pending.clear()
        skip = sum(text.count("\n") for text, _ in runs) - MAX_LINES
        for text, stderr in runs:
            pieces = text.split("\n")
            if skip > 0:
                # Lines that would be dropped anyway are counted, not decoded.
                count = min(skip, len(pieces) - 1)
                if count:
                    pieces = pieces[count:]
                    skip -= count
                    self._partial, self._carriage = Text(), False
                    self._dropped += count
                    self._total += count
            style = text_style(self, "job-output--stderr") if stderr else None
            last = len(pieces) - 1
            for index, piece in enumerate(pieces):
                self._add_piece(piece, style)
                if index < last:
                    self._end_partial()
        self._refresh_size(follow)

    def _add_piece(self, piece: str, style: Style | None) -> None:
        """Text of one line (no newline): CR returns to the line's start, as in a terminal."""
        if "\x1b" in piece:
            piece = _CONTROL_STRING.sub("", piece)
        piece = piece.translate(_CONTROLS)
        for index, part in enumerate(piece.split("\r")):
            if index:
                self._carriage = True
            if not part:
                continue
            if self._carriage:
                self._partial, self._carriage = Text(), False
            text = self._ansi.decode_line(part) if "\x1b" in part else Text(part, self._ansi.style or "")
            if "\t" in part:
                text.expand_tabs(8)
            if style is not None:
                text.stylize_before(style)
            self._partial.append_text(text)
            while len(self._partial) > MAX_LINE_CHARS:
                head = self._partial[:MAX_LINE_CHARS]
                self._partial = self._partial[MAX_LINE_CHARS:]
                self._push(head)

    def _end_partial(self) -> None:
        self._push(self._partial)
        self._partial, self._carriage = Text(), False

    def _push(self, line: Text) -> None:
        if len(self._lines) == MAX_LINES:
            self._dropped += 1
        self._lines.append(line)
        self._total += 1
        self._widest = max(self._widest, line.cell_len)

    def _refresh_size(self, follow: bool) -> None:
        width = max(self._widest, self._partial.cell_len)
        self.virtual_size = Size(width, self.line_count)
        self._update_subtitle()
        self.refresh()
        if follow:
            self._scroll_to_end()
            # a horizontal scrollbar may appear with this layout and take a line: end again after it
            self.call_after_refresh(self._catch_up)

    def _scroll_to_end(self) -> None:
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)

    def _catch_up(self) -> None:
        if self.following:
            self._scroll_to_end()

    def _restyle(self) -> None:
        self._cache.clear()
        self.refresh()

    # --- following the tail --------------------------------------------------------------------------

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self.following = round(new_value) >= self.max_scroll_y

    def watch_following(self) -> None:
        self._update_subtitle()

    def _update_subtitle(self) -> None:
        parts = []
        if self._dropped:
            parts.append(f"last {len(self._lines):,} lines ({self._dropped:,} earlier not kept)")
        if not self.following:
            parts.append("paused · G follows")
        self.border_subtitle = " · ".join(parts)

    # --- rendering -----------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if index < len(self._lines):
            absolute = self._total - len(self._lines) + index
            key = (absolute, scroll_x, width)
            strip = self._cache.get(key)
            if strip is None:
                strip = self._strip(self._lines[index], scroll_x, width, base)
                self._cache[key] = strip
            return strip
        if index == len(self._lines) and self._partial.plain:
            return self._strip(self._partial, scroll_x, width, base)
        return Strip.blank(width, base)

    def _strip(self, line: Text, scroll_x: int, width: int, base: Style) -> Strip:
        console = self.app.console
        # Text.render drops the Text's own style when it has no spans: put it back under each segment
        own = console.get_style(line.style) if line.style else None
        segments = [
            Segment(text, own + style if own and style else own or style)
            for text, style, _ in line.render(console)
            if text
        ]
        strip = Strip(segments).crop_extend(scroll_x, scroll_x + width, base)
        return strip.apply_style(base)
