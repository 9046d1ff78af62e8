"""The terminal's cell grid: pyte's ``Screen`` plus what a real terminal needs and pyte lacks.

Added here, because full-screen programs and shells rely on them:

- the **alternate screen** (private modes 1049, 1047 and 47): pyte ignores them, so leaving vim would
  leave vim's picture behind; here the main screen's lines (and, for 1049, its cursor) are put aside
  and restored exactly;
- **scrollback**: lines scrolled off the top of the main screen go into ``history`` (bounded);
- SGR with **dim**, colon sub-parameters (``38:2::r:g:b``, ``4:3``) and 256/true colours kept as
  strings rich can parse (``"red"``, ``"bright_red"``, ``"color(196)"``, ``"#ff8800"``);
- SU/SD (``CSI S``/``CSI T``), REP (``CSI b``), CHT/CBT and DECSTR, which ncurses programs emit;
- a fast ``draw`` for runs of text: a run is written into the line dict in one ``update`` from a
  per-attribute cache of cells instead of building a ``Char`` per character.

Cells are :class:`Cell` tuples (pyte's ``Char`` fields plus ``dim``). Replies the terminal owes the
program (device attributes, cursor position) collect in ``replies`` for the widget to send.
"""

from __future__ import annotations

import copy
import unicodedata
from collections import defaultdict, deque
from typing import Any, NamedTuple

import pyte
from pyte import modes as mo
from pyte.screens import Margins, StaticDefaultDict
from wcwidth import wcwidth
from wcwidth import width as text_width

ALTERNATE_MODES = frozenset({47, 1047, 1049})
"""Private modes that switch to the alternate screen (1049 also saves and restores the cursor)."""
DECCKM = 1 << 5
"""Application cursor keys (pyte stores private modes shifted left by 5)."""
BRACKETED_PASTE = 2004 << 5
MOUSE_TRACKING = frozenset({1000 << 5, 1002 << 5, 1003 << 5})
SGR_MOUSE = 1006 << 5
SYNCHRONIZED_OUTPUT = 2026 << 5
"""Set while a program draws a frame it wants shown whole (tmux, neovim): the widget waits."""
_IGNORED_PRIVATE = frozenset({3})
"""DECCOLM (80/132 columns) would resize the grid behind the widget's back; xterm ignores it too."""

MAX_REPEAT = 65_536
MAX_CLUSTER = 32
"""Most code points one cell keeps (a base character and the zero-width ones joined to it)."""
ZWJ = "\u200d"
"""ZERO WIDTH JOINER: the character after it joins the same cell (an emoji ZWJ sequence is one glyph)."""


class Cell(NamedTuple):
    """One character cell: pyte's ``Char`` fields, plus ``dim``; colours are rich colour strings."""

    data: str
    fg: str = "default"
    bg: str = "default"
    bold: bool = False
    italics: bool = False
    underscore: bool = False
    strikethrough: bool = False
    reverse: bool = False
    blink: bool = False
    dim: bool = False


_PLAIN = Cell(" ")
_REVERSE = Cell(" ", reverse=True)

_NAMES = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"]
_FG = {30 + i: name for i, name in enumerate(_NAMES)} | {90 + i: f"bright_{n}" for i, n in enumerate(_NAMES)}
_BG = {40 + i: name for i, name in enumerate(_NAMES)} | {100 + i: f"bright_{n}" for i, n in enumerate(_NAMES)}
_FLAGS: dict[int, tuple[str, bool]] = {
    1: ("bold", True),
    3: ("italics", True),
    4: ("underscore", True),
    5: ("blink", True),
    6: ("blink", True),
    7: ("reverse", True),
    9: ("strikethrough", True),
    21: ("underscore", True),
    23: ("italics", False),
    24: ("underscore", False),
    25: ("blink", False),
    27: ("reverse", False),
    29: ("strikethrough", False),
}


def _indexed(n: int) -> str:
    n = max(0, min(n, 255))
    if n < 8:
        return _NAMES[n]
    if n < 16:
        return f"bright_{_NAMES[n - 8]}"
    return f"color({n})"


def _rgb(r: int, g: int, b: int) -> str:
    return f"#{min(r, 255):02x}{min(g, 255):02x}{min(b, 255):02x}"


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


def apply_sgr(cell: Cell, params: list[str], default: Cell) -> Cell:
    """``cell`` with the SGR parameters applied (each parameter may carry ``:`` sub-parameters)."""
    replace: dict[str, Any] = {}
    i, n = 0, len(params)
    while i < n:
        param = params[i]
        i += 1
        if ":" in param:
            sub = [_int(s) for s in param.split(":")]
            code = sub[0]
            if code in (38, 48) and len(sub) >= 3:
                if sub[1] == 5:
                    replace["fg" if code == 38 else "bg"] = _indexed(sub[2])
                elif sub[1] == 2 and len(sub) >= 5:
                    r, g, b = sub[3:6] if len(sub) >= 6 else sub[2:5]
                    replace["fg" if code == 38 else "bg"] = _rgb(r, g, b)
            elif code == 4:
                replace["underscore"] = len(sub) < 2 or sub[1] != 0
            continue
        code = _int(param)
        if code == 0:
            replace = default._asdict()
            del replace["data"]
        elif code in _FG:
            replace["fg"] = _FG[code]
        elif code in _BG:
            replace["bg"] = _BG[code]
        elif code in _FLAGS:
            name, value = _FLAGS[code]
            replace[name] = value
        elif code == 2:
            replace["dim"] = True
        elif code == 22:
            replace["bold"] = replace["dim"] = False
        elif code == 39:
            replace["fg"] = "default"
        elif code == 49:
            replace["bg"] = "default"
        elif code in (38, 48, 58):
            kind = params[i] if i < n else ""
            if kind == "5" and i + 1 < n:
                colour = _indexed(_int(params[i + 1]))
                i += 2
            elif kind == "2" and i + 3 < n:
                colour = _rgb(_int(params[i + 1]), _int(params[i + 2]), _int(params[i + 3]))
                i += 4
            else:
                break  # malformed: ignore the rest, as xterm does
            if code != 58:  # 58 is the underline colour: parsed so its arguments are skipped
                replace["fg" if code == 38 else "bg"] = colour
    return cell._replace(**replace) if replace else cell


class _Cells(dict[str, Cell]):
    """Characters in one set of attributes, made once: drawing a run is then a dict lookup per char."""

    __slots__ = ("attrs",)

    def __init__(self, attrs: Cell) -> None:
        super().__init__()
        self.attrs = attrs

    def __missing__(self, char: str) -> Cell:
        cell = self[char] = self.attrs._replace(data=char)
        return cell


Line = StaticDefaultDict  # column -> Cell, the default cell for missing columns


class TerminalScreen(pyte.Screen):
    """A pyte screen with the alternate screen, scrollback, and a fast path for drawing text.

    Its buffer and cursor hold :class:`Cell` s where pyte's types say ``Char``: a ``Cell`` has every
    field of a ``Char`` (plus ``dim``), so pyte's own code reads them as it would its own. The two
    declarations below state that once; read and set the cursor's cell through :attr:`attrs`.
    """

    # pyte declares the buffer's cells as Char; this screen stores Cell (Char's fields plus dim).
    buffer: defaultdict[int, StaticDefaultDict[int, Cell]]  # type: ignore[assignment]

    def __init__(self, columns: int, lines: int, scrollback: int = 5000) -> None:
        self.history: deque[Line] = deque(maxlen=max(0, scrollback))
        self.pushed = 0
        """Lines ever pushed into ``history`` (a scrolled-back view uses it to stay anchored)."""
        self.replies: list[str] = []
        self.bells = 0
        self._alternate: tuple[Any, pyte.screens.Cursor | None] | None = None
        self._cells: dict[Cell, _Cells] = {}
        self._sgr_cache: dict[tuple[Cell, str], Cell] = {}
        self._last_char = ""
        self._translate: str | None = None
        super().__init__(columns, lines)

    # --- state -------------------------------------------------------------------------------------

    @property
    def default_char(self) -> Cell:  # type: ignore[override]
        return _REVERSE if mo.DECSCNM in self.mode else _PLAIN

    @property
    def attrs(self) -> Cell:
        """The cell the cursor writes with (pyte's ``cursor.attrs``)."""
        return self.cursor.attrs  # type: ignore[return-value]  # a Cell: only this screen sets it

    @attrs.setter
    def attrs(self, cell: Cell) -> None:
        # pyte types the slot as Char; a Cell has Char's fields (plus dim), which is all pyte reads.
        self.cursor.attrs = cell  # type: ignore[assignment]

    @property
    def in_alternate(self) -> bool:
        """True while a full-screen program has switched to the alternate screen."""
        return self._alternate is not None

    @property
    def app_cursor_keys(self) -> bool:
        return DECCKM in self.mode

    @property
    def bracketed_paste(self) -> bool:
        return BRACKETED_PASTE in self.mode

    @property
    def synchronized(self) -> bool:
        return SYNCHRONIZED_OUTPUT in self.mode

    @property
    def mouse_tracking(self) -> bool:
        return not MOUSE_TRACKING.isdisjoint(self.mode)

    @property
    def sgr_mouse(self) -> bool:
        return SGR_MOUSE in self.mode

    def reset(self) -> None:
        self._alternate = None
        super().reset()
        self.attrs = self.default_char
        self._translate = None
        self._last_char = ""

    def clear_history(self) -> None:
        self.history.clear()

    def write_process_input(self, data: str) -> None:
        self.replies.append(data)

    def bell(self, *args: Any) -> None:
        self.bells += 1

    # --- modes -------------------------------------------------------------------------------------

    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private"):
            modes = self._private(modes, enter=True)
        super().set_mode(*modes, **kwargs)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private"):
            modes = self._private(modes, enter=False)
        super().reset_mode(*modes, **kwargs)

    def _private(self, modes: tuple[int, ...], *, enter: bool) -> tuple[int, ...]:
        rest = []
        for mode in modes:
            if mode in ALTERNATE_MODES:
                if enter:
                    self._enter_alternate(save_cursor=mode == 1049)
                else:
                    self._leave_alternate(restore_cursor=mode == 1049)
            elif mode not in _IGNORED_PRIVATE:
                rest.append(mode)
        return tuple(rest)

    def _enter_alternate(self, *, save_cursor: bool) -> None:
        if self._alternate is not None:
            return
        saved = copy.copy(self.cursor) if save_cursor else None
        self._alternate = (self.buffer, saved)
        self.buffer = defaultdict(self.buffer.default_factory)
        self.dirty.update(range(self.lines))

    def _leave_alternate(self, *, restore_cursor: bool) -> None:
        if self._alternate is None:
            return
        self.buffer, saved = self._alternate
        self._alternate = None
        if restore_cursor and saved is not None:
            self.cursor = saved
            self.cursor.x = min(self.cursor.x, self.columns - 1)
            self.cursor.y = min(self.cursor.y, self.lines - 1)
        self.dirty.update(range(self.lines))

    def define_charset(self, code: str, mode: str) -> None:
        super().define_charset(code, mode)
        self._update_translate()

    def shift_in(self) -> None:
        super().shift_in()
        self._update_translate()

    def shift_out(self) -> None:
        super().shift_out()
        self._update_translate()

    def _update_translate(self) -> None:
        table = self.g1_charset if self.charset else self.g0_charset
        self._translate = None if table is pyte.charsets.LAT1_MAP else table

    def restore_cursor(self) -> None:
        """DECRC: pyte restores the saved character sets too; the drawing translation follows them."""
        super().restore_cursor()
        self._update_translate()

    def soft_reset(self) -> None:
        """DECSTR (``CSI ! p``): modes, margins and attributes back to defaults; the text stays."""
        self.mode = {mo.DECAWM, mo.DECTCEM}
        self.margins = None
        self.attrs = self.default_char
        self.cursor.hidden = False
        self.charset = 0
        self.g0_charset = self.g1_charset = pyte.charsets.LAT1_MAP
        self._translate = None
        self.savepoints = []

    # --- geometry ----------------------------------------------------------------------------------

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        """Resize; a shrink drops lines from the top only as far as needed to keep the cursor's line
        (those go into scrollback), and lines below it are cut, as xterm does."""
        lines = max(1, lines or self.lines)
        columns = max(1, columns or self.columns)
        if lines == self.lines and columns == self.columns:
            return
        old_lines, old_columns = self.lines, self.columns
        if lines < old_lines:
            drop = max(0, self.cursor.y + 1 - lines)
            self._drop_top(self.buffer, drop, old_lines, lines, to_history=self._alternate is None)
            self.cursor.y -= drop
            if self._alternate is not None:
                main, saved = self._alternate
                main_drop = max(0, (saved.y if saved else 0) + 1 - lines)
                self._drop_top(main, main_drop, old_lines, lines, to_history=True)
                if saved is not None:
                    saved.y -= main_drop
        if columns < old_columns:
            buffers = [self.buffer] + ([self._alternate[0]] if self._alternate else [])
            for buffer in buffers:
                for line in buffer.values():
                    for x in range(columns, old_columns):
                        line.pop(x, None)
        elif columns > old_columns:
            self.tabstops.update(range((old_columns // 8 + 1) * 8, columns, 8))
        self.lines, self.columns = lines, columns
        self.margins = None
        self.cursor.x = min(self.cursor.x, columns - 1)
        self.cursor.y = min(self.cursor.y, lines - 1)
        self.dirty.update(range(lines))

    def _drop_top(self, buffer: Any, drop: int, old_lines: int, lines: int, *, to_history: bool) -> None:
        """Move ``buffer`` up by ``drop`` lines (the top ones to scrollback) and cut it to ``lines``."""
        for y in range(drop):
            line = buffer.pop(y, None)
            if to_history:
                self._push_history(line if line is not None else buffer.default_factory())
        for y in range(drop, old_lines):
            line = buffer.pop(y, None)
            if line is not None and y - drop < lines:
                buffer[y - drop] = line

    def _push_history(self, line: Line) -> None:
        if self.history.maxlen:
            self.history.append(line)
            self.pushed += 1

    def cursor_position(self, line: int | None = None, column: int | None = None) -> None:
        """CUP/HVP: to ``line``, ``column`` (1-based); under origin mode (DECOM) relative to the scroll
        region and kept inside it, as xterm does (pyte ignored a position outside the region)."""
        y = (line or 1) - 1
        if self.margins is not None and mo.DECOM in self.mode:
            y += self.margins.top
        self.cursor.x = (column or 1) - 1
        self.cursor.y = y
        self.ensure_hbounds()
        self.ensure_vbounds()

    # --- scrolling ---------------------------------------------------------------------------------

    def index(self) -> None:
        """Move down a line; at the bottom margin scroll the region up, into scrollback if the region
        starts at the top of the main screen."""
        margins = self.margins
        top, bottom = (0, self.lines - 1) if margins is None else margins
        cursor = self.cursor
        if cursor.y != bottom:
            if cursor.y < self.lines - 1:
                cursor.y += 1
            return
        buffer = self.buffer
        if top == 0 and self._alternate is None and self.history.maxlen:
            line = buffer.pop(0, None)
            self.history.append(line if line is not None else self.new_line())
            self.pushed += 1
        elif top == 0:
            buffer.pop(0, None)
        for y in range(top, bottom):
            buffer[y] = buffer[y + 1]
        buffer.pop(bottom, None)
        if len(self.dirty) < self.lines:  # once a frame has scrolled, every line is already dirty
            self.dirty.update(range(top, bottom + 1))

    def crlf(self) -> None:
        """CR LF in one call (the commonest pair in any output)."""
        self.cursor.x = 0
        self.index()

    def scroll_up(self, count: int | None = None) -> None:
        """SU: scroll the region up ``count`` lines; the cursor stays."""
        top, bottom = self.margins or Margins(0, self.lines - 1)
        count = min(count or 1, bottom - top + 1)
        buffer = self.buffer
        for y in range(top, bottom + 1):
            line = buffer.pop(y + count, None) if y + count <= bottom else None
            if line is None:
                buffer.pop(y, None)
            else:
                buffer[y] = line
        self.dirty.update(range(top, bottom + 1))

    def scroll_down(self, count: int | None = None) -> None:
        """SD: scroll the region down ``count`` lines; the cursor stays."""
        top, bottom = self.margins or Margins(0, self.lines - 1)
        count = min(count or 1, bottom - top + 1)
        buffer = self.buffer
        for y in range(bottom, top - 1, -1):
            line = buffer.pop(y - count, None) if y - count >= top else None
            if line is None:
                buffer.pop(y, None)
            else:
                buffer[y] = line
        self.dirty.update(range(top, bottom + 1))

    # --- erasing (the common default-attribute case just drops cells) ------------------------------

    def erase_in_line(self, how: int = 0, private: bool = False) -> None:
        y = self.cursor.y
        self.dirty.add(y)
        attrs = self.attrs
        start, end = {0: (self.cursor.x, self.columns), 1: (0, self.cursor.x + 1)}.get(how, (0, self.columns))
        line = self.buffer[y]
        if attrs == self.default_char:
            if start == 0 and end >= self.columns:
                line.clear()
            else:
                for x in range(start, min(end, self.columns)):
                    line.pop(x, None)
        else:
            line.update(dict.fromkeys(range(start, min(end, self.columns)), attrs))

    def erase_in_display(self, how: int = 0, *args: Any, **kwargs: Any) -> None:
        if how == 3:
            self.history.clear()
            how = 2
        if how == 0:
            rows = range(self.cursor.y + 1, self.lines)
        elif how == 1:
            rows = range(self.cursor.y)
        else:
            rows = range(self.lines)
        self.dirty.update(rows)
        attrs = self.attrs
        plain = attrs == self.default_char
        for y in rows:
            if plain:
                self.buffer.pop(y, None)
            else:
                self.buffer[y].update(dict.fromkeys(range(self.columns), attrs))
        if how in (0, 1):
            self.erase_in_line(how)

    # --- tabs and repeats --------------------------------------------------------------------------

    def tab_forward(self, count: int | None = None) -> None:
        for _ in range(min(count or 1, self.columns)):
            self.tab()

    def tab_back(self, count: int | None = None) -> None:
        for _ in range(min(count or 1, self.columns)):
            stops = [stop for stop in self.tabstops if stop < self.cursor.x]
            self.cursor.x = max(stops) if stops else 0

    def repeat_last(self, count: int | None = None) -> None:
        """REP: the last drawn character again ``count`` times."""
        if self._last_char:
            self.draw(self._last_char * min(count or 1, MAX_REPEAT))

    def report_device_status(self, mode: int = 0, **kwargs: Any) -> None:
        if mode == 6:
            x = min(self.cursor.x, self.columns - 1) + 1
            y = self.cursor.y + 1
            if mo.DECOM in self.mode and self.margins is not None:
                y -= self.margins.top
            self.write_process_input(f"\x1b[{y};{x}R")
        elif mode == 5:
            self.write_process_input("\x1b[0n")

    # --- attributes --------------------------------------------------------------------------------

    def select_graphic_rendition(self, *attrs: int, **kwargs: Any) -> None:
        """SGR from pyte's own parser (the fast parser calls :meth:`sgr` with the raw parameters)."""
        self.sgr(";".join(map(str, attrs)))

    def sgr(self, params: str) -> None:
        attrs = self.attrs
        key = (attrs, params)
        new = self._sgr_cache.get(key)
        if new is None:
            if len(self._sgr_cache) > 4096:
                self._sgr_cache.clear()
            new = self._sgr_cache[key] = apply_sgr(attrs, params.split(";"), self.default_char)
        self.attrs = new

    def sgr_reset(self) -> None:
        self.attrs = self.default_char

    # --- drawing -----------------------------------------------------------------------------------

    def cells_for(self, attrs: Cell) -> _Cells:
        """The cell cache of one attribute set: ``cells_for(attrs)[char]`` is that character's cell."""
        cells = self._cells.get(attrs)
        if cells is None:
            if len(self._cells) > 512:
                self._cells.clear()
            cells = self._cells[attrs] = _Cells(attrs)
        return cells

    @property
    def can_append_lines(self) -> bool:
        """True when output may be appended as whole lines (:meth:`append_lines`): the cursor is on the
        bottom line of the main screen, the whole screen scrolls, and no mode changes how text lands."""
        return (
            self.margins is None
            and self._alternate is None
            and self.cursor.y == self.lines - 1
            and self._translate is None
            and mo.IRM not in self.mode
        )

    def new_line(self) -> Line:
        return StaticDefaultDict(self.default_char)

    def append_lines(self, new_lines: list[Line], x: int, last_char: str) -> None:
        """What ``len(new_lines)`` CR LFs at the bottom would do, in one step: the screen scrolls up that
        many lines (the top ones into scrollback), ``new_lines`` (already written) fill the bottom,
        and the cursor ends at column ``x`` of the last one. Bulk output costs one renumbering of
        the screen's lines per chunk instead of one per line."""
        count = len(new_lines)
        if not count:
            return
        buffer = self.buffer
        rows = [buffer.pop(y, None) for y in range(self.lines)]
        combined = [row if row is not None else self.new_line() for row in rows] + new_lines
        if self.history.maxlen:
            self.history.extend(combined[:count])
            self.pushed += count
        buffer.clear()
        buffer.update(enumerate(combined[count:]))
        self.dirty.update(range(self.lines))
        self.cursor.x = x
        if last_char:
            self._last_char = last_char

    def draw(self, data: str) -> None:
        """Write a run of printable text at the cursor (no control characters reach here)."""
        if self._translate is not None:
            data = data.translate(self._translate)
        if not data:
            return
        if not data.isascii():
            self._draw_wide(data)
            return
        cursor = self.cursor
        cells = self.cells_for(self.attrs)
        x = cursor.x
        end = x + len(data)
        if end <= self.columns and mo.IRM not in self.mode:  # the common case: the run fits the line
            self.buffer[cursor.y].update(zip(range(x, end), map(cells.__getitem__, data), strict=False))
            cursor.x = end
            self.dirty.add(cursor.y)
            self._last_char = data[-1]
            return
        cursor = self.cursor
        columns = self.columns
        mode = self.mode
        wrap = mo.DECAWM in mode
        insert = mo.IRM in mode
        self._last_char = data[-1]
        while data:
            x = cursor.x
            if x >= columns:
                if wrap:
                    self.dirty.add(cursor.y)
                    cursor.x = 0
                    self.index()
                    x = 0
                else:
                    x = cursor.x = columns - 1
                    data = data[-1]
            n = columns - x
            if n >= len(data):
                run, data = data, ""
            else:
                run, data = data[:n], data[n:]
            n = len(run)
            if insert:
                self.insert_characters(n)
            self.buffer[cursor.y].update(zip(range(x, x + n), map(cells.__getitem__, run), strict=False))
            cursor.x = x + n
        self.dirty.add(cursor.y)

    def _draw_wide(self, data: str) -> None:
        """The general path: wide (two-cell) and combining characters, one at a time."""
        cursor = self.cursor
        columns = self.columns
        wrap = mo.DECAWM in self.mode
        insert = mo.IRM in self.mode
        attrs = self.attrs
        for char in data:
            width = wcwidth(char)
            if width < 0 or width > columns:
                continue
            if width == 0 or self._last_char == ZWJ:
                # Every zero-width code point (marks of any combining class, variation selectors,
                # conjoining jamo, enclosing marks, ZWJ) joins the cell before it; the cell's text
                # is what the program wrote, in NFC (canonically the same: é stays one code point).
                self._attach(char)
                self._last_char = char
                continue
            if cursor.x + width > columns:
                if wrap:
                    if cursor.x < columns:  # a wide character that does not fit leaves a blank
                        self.buffer[cursor.y].pop(cursor.x, None)
                    self.dirty.add(cursor.y)
                    cursor.x = 0
                    self.index()
                else:
                    cursor.x = columns - width
            if insert:
                self.insert_characters(width)
            line = self.buffer[cursor.y]
            line[cursor.x] = attrs._replace(data=char)
            if width == 2:
                line[cursor.x + 1] = attrs._replace(data="")
            cursor.x += width
            self._last_char = char
        self.dirty.add(cursor.y)

    def _attach(self, char: str) -> None:
        """Append a zero-width ``char`` to the cell before the cursor (dropped at the screen's start)."""
        cursor = self.cursor
        x, y = min(cursor.x, self.columns) - 1, cursor.y
        if x < 0:
            if y == 0:
                return
            x, y = self.columns - 1, y - 1
        line = self.buffer[y]
        if line[x].data == "" and x > 0:  # a wide character's stub: join to the character
            x -= 1
        elif (
            unicodedata.category(char) == "Mc"
            and y == cursor.y
            and x == cursor.x - 1
            and x + 1 < self.columns
            and text_width(line[x].data + char) == 2
        ):
            # A spacing mark (Devanagari vowel sign ि, Tamil ா) widens its cluster to two cells, as the
            # host's own wcwidth counts it: the cell becomes a wide one and the cursor moves on.
            line[x + 1] = line[x]._replace(data="")
            cursor.x += 1
        last = line[x]
        if len(last.data) >= MAX_CLUSTER:
            return  # a cell is one grapheme: a flood of marks (zalgo text) is not kept without bound
        line[x] = last._replace(data=unicodedata.normalize("NFC", last.data + char))
        self.dirty.add(y)

    @property
    def display(self) -> list[str]:
        """The screen's lines as text, each cell's code points as written (stubs of wide cells skipped).

        pyte's own version asserts that a cell holds one spacing character; a cell here may hold a
        whole cluster (a ZWJ emoji sequence joins into one cell, as tmux shows it)."""
        columns = self.columns
        return [
            "".join(line[x].data for x in range(columns))
            for line in map(self.buffer.__getitem__, range(self.lines))
        ]
