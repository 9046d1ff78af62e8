"""One line of terminal cells → one Textual ``Strip``.

Cells with the same attributes are joined into one ``Segment``; a rich ``Style`` is made once per
distinct attribute set (on top of the widget's own colours, so "default" foreground and background
follow the theme). The cursor is its own segment: reverse video while the terminal has the focus,
underlined while it does not. A two-cell character whose second half was overwritten (or that does not
fit) is shown as a blank, so the line keeps exactly ``columns`` cells.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import groupby, repeat
from operator import itemgetter

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from wcwidth import wcwidth
from wcwidth import width as text_width

from oc_tui.widgets.terminal.screen import Cell

_DATA = itemgetter(0)
_ATTRS = itemgetter(1, 2, 3, 4, 5, 6, 7, 8, 9)
"""A cell's character; its attributes (what ``cell[1:]`` is, in one C call)."""
_STYLE_LIMIT = 4096
_CURSOR_FOCUSED = Style(reverse=True)
_CURSOR_UNFOCUSED = Style(underline=True)


class LineRenderer:
    """Renders cell lines to strips; call :meth:`set_base` when the widget's colours change."""

    def __init__(self, base: Style | None = None) -> None:
        self.base = base or Style()
        self._styles: dict[tuple, Style] = {}

    def set_base(self, base: Style) -> None:
        self.base = base
        self._styles.clear()

    def style(self, key: tuple) -> Style:
        style = self._styles.get(key)
        if style is None:
            fg, bg, bold, italics, underscore, strike, reverse, blink, dim = key
            style = self.base + Style(
                color=None if fg == "default" else fg,
                bgcolor=None if bg == "default" else bg,
                bold=bold or None,
                italic=italics or None,
                underline=underscore or None,
                strike=strike or None,
                reverse=reverse or None,
                blink=blink or None,
                dim=dim or None,
            )
            if len(self._styles) >= _STYLE_LIMIT:
                self._styles.clear()
            self._styles[key] = style
        return style

    def _cursor_style(self, key: tuple, focused: bool) -> Style:
        style = self.style(key)
        if focused:
            return style + Style(reverse=not key[6])
        return style + _CURSOR_UNFOCUSED

    def _ascii_strip(self, line: Mapping[int, Cell], columns: int) -> Strip | None:
        """The common line (no cursor, one ASCII character in every cell) with the per-cell work done
        in C: runs of equal attributes become segments. None for any other line."""
        default = getattr(line, "default", None)
        if default is None:
            return None
        cells = list(map(line.get, range(columns), repeat(default)))
        text = "".join(map(_DATA, cells))
        if len(text) != columns or not text.isascii():  # a wide character, its stub, a combining mark
            return None
        style = self.style
        segments = []
        x = 0
        for key, run in groupby(map(_ATTRS, cells)):
            end = x + len(list(run))
            segments.append(Segment(text[x:end], style(key)))
            x = end
        return Strip(segments, columns)

    def strip(
        self, line: Mapping[int, Cell], columns: int, cursor_x: int = -1, focused: bool = True
    ) -> Strip:
        """``columns`` cells of ``line`` (a dict of column → cell with a default), cursor at ``cursor_x``."""
        if not line and cursor_x < 0:
            default = line[0]
            return Strip([Segment(" " * columns, self.style(default[1:]))], columns)
        if cursor_x < 0:
            strip = self._ascii_strip(line, columns)
            if strip is not None:
                return strip
        segments: list[Segment] = []
        append = segments.append
        style = self.style
        text: list[str] = []
        key: tuple | None = None
        x = 0
        while x < columns:
            cell = line[x]
            data = cell.data
            width = 1
            if not data:
                data = " "  # the second half of a two-cell character that is no longer there
            elif data > "\u0900" and (wcwidth(data[0]) == 2 or (len(data) > 1 and text_width(data) == 2)):
                if x + 1 < columns and line[x + 1].data == "":
                    width = 2
                elif wcwidth(data[0]) == 2:
                    data = " "
            cell_key = cell[1:]
            if cursor_x == x or (width == 2 and cursor_x == x + 1):
                if text:
                    append(Segment("".join(text), style(key)))  # type: ignore[arg-type]
                    text = []
                append(Segment(data, self._cursor_style(cell_key, focused)))
                key = None
            elif cell_key == key:
                text.append(data)
            else:
                if text:
                    append(Segment("".join(text), style(key)))  # type: ignore[arg-type]
                text = [data]
                key = cell_key
            x += width
        if text:
            append(Segment("".join(text), style(key)))  # type: ignore[arg-type]
        strip = Strip(segments)
        if strip.cell_length != columns:  # wcwidth and rich disagree on some emoji
            strip = strip.adjust_cell_length(columns, self.base)
        return strip
