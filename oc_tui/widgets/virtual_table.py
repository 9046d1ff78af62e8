"""A table that draws only the rows on screen, so 10,000 rows cost what 40 do.

Textual's ``DataTable`` keeps a record per row and measures every cell of every new row on the next
idle (about 1.5 s for 10,000 rows on a small machine, during which the app is frozen). This table is
a ``ScrollView`` on Textual's line API: it knows its rows only as an ordered list of keys, asks the
subclass for a row's cells (``row_cells``) when that row is about to be drawn, and caches the drawn
lines. Column widths only grow (as ``DataTable``'s do), from the cell widths the subclass reports with
:meth:`grow_widths`, so columns never jump while a filter narrows the rows.

It looks and behaves like a ``DataTable`` with ``cursor_type="row"``: the same component classes
(``datatable--cursor``, ``--header``, ``--hover``) and CSS, a row cursor moved with the arrows, ``j``/``k``,
page up/down and home/end, a click highlights a row and a second click (or ``enter``) selects it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size, Spacing
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

HEADER = -1
"""The row index of the header line."""


class VirtualTable(ScrollView, can_focus=True):
    """Rows keyed by strings, drawn on demand; subclasses give the columns and each row's cells."""

    COLUMNS: tuple[tuple[str, str], ...] = ()
    """``(key, label)`` of each column, in order."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Select", show=False),
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,ctrl+home", "scroll_top", "Top", show=False),
        Binding("end,ctrl+end", "scroll_bottom", "Bottom", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "datatable--cursor",
        "datatable--hover",
        "datatable--header",
        "datatable--header-hover",
    }

    # DataTable's own look (textual/widgets/_data_table.py), for the parts a row-cursor table uses.
    DEFAULT_CSS = """
    VirtualTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;

        &:focus {
            background-tint: $foreground 5%;
            & > .datatable--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .datatable--header {
                background-tint: $foreground 5%;
            }
        }
        & > .datatable--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .datatable--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .datatable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .datatable--header-hover {
            background: $accent 30%;
        }
        & > .datatable--hover {
            background: $block-hover-background;
        }
    }
    """

    @dataclass
    class RowHighlighted(Message):
        """The cursor is on a different row (or the row under it is another one now)."""

        table: VirtualTable
        cursor_row: int
        row_key: str

        @property
        def control(self) -> VirtualTable:
            return self.table

    @dataclass
    class RowSelected(Message):
        """``enter`` on the cursor row, or a click on the row already highlighted."""

        table: VirtualTable
        cursor_row: int
        row_key: str

        @property
        def control(self) -> VirtualTable:
            return self.table

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._keys: list[str] = []
        self._index: dict[str, int] | None = {}
        self._cursor = 0
        self._highlighted: str | None = None
        self._hover: int | None = None
        self._widths = [cell_len(label) for _, label in self.COLUMNS]
        self._labels = [Text.from_markup(label, end="") for _, label in self.COLUMNS]
        self._versions: dict[str, int] = {}
        self._generation = 0
        self._lines: LRUCache[tuple[object, ...], Strip] = LRUCache(1024)

    # --- what subclasses provide -------------------------------------------------------------------

    def row_cells(self, key: str) -> Sequence[Text]:
        """The cells of the row ``key``, one per column (only called for rows being drawn)."""
        raise NotImplementedError

    # --- rows --------------------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def row_keys(self) -> list[str]:
        """The keys of the rows, in order (do not modify)."""
        return self._keys

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor, or None when there are no rows."""
        return self._keys[self._cursor] if self._keys else None

    def row_index(self, key: str) -> int | None:
        if self._index is None:
            self._index = {row_key: i for i, row_key in enumerate(self._keys)}
        return self._index.get(key)

    def set_rows(self, keys: list[str]) -> None:
        """Show exactly these rows in this order; the cursor stays on the same key (else index)."""
        selected = self.cursor_key
        self._keys = keys
        self._index = None
        self._update_virtual_size()
        index = self.row_index(selected) if selected is not None else None
        self._place_cursor(self._cursor if index is None else index)
        self.refresh()

    def refresh_key(self, key: str) -> None:
        """Draw the row ``key`` again (its cells changed)."""
        self._versions[key] = self._versions.get(key, 0) + 1
        index = self.row_index(key)
        if index is not None:
            self._refresh_row(index)

    def refresh_all_rows(self) -> None:
        """Draw every row again (the theme, or time-dependent cells, changed)."""
        self._generation += 1
        self._lines.clear()
        self.refresh()

    def grow_widths(self, widths: Sequence[int]) -> None:
        """Widen columns to fit cells this wide (columns never narrow, as in ``DataTable``)."""
        grown = False
        current = self._widths
        for i, width in enumerate(widths):
            if width > current[i]:
                current[i] = width
                grown = True
        if grown:
            self._generation += 1
            self._lines.clear()
            self._update_virtual_size()
            self.refresh()

    # --- cursor ------------------------------------------------------------------------------------

    def move_cursor(self, *, row: int, animate: bool = False, scroll: bool = True) -> None:
        self._place_cursor(row, scroll=scroll, animate=animate)

    def _place_cursor(self, row: int, *, scroll: bool = True, animate: bool = False) -> None:
        old = self._cursor
        self._cursor = max(0, min(row, len(self._keys) - 1))
        if old != self._cursor:
            self._refresh_row(old)
            self._refresh_row(self._cursor)
        key = self.cursor_key
        if key is not None and (key != self._highlighted or old != self._cursor):
            self.post_message(self.RowHighlighted(self, self._cursor, key))
        self._highlighted = key
        if scroll:
            self._scroll_cursor_into_view(animate=animate)

    def _scroll_cursor_into_view(self, animate: bool = False) -> None:
        if not self._keys:
            return
        if not self.size.height:  # not laid out yet
            self.call_after_refresh(self._scroll_cursor_into_view)
            return
        region = Region(int(self.scroll_x), self._cursor + 1, self.size.width, 1)
        self.scroll_to_region(region, animate=animate, spacing=Spacing(top=1), force=True)

    def _keyboard(self) -> None:
        """Keys move the cursor: the mouse's hover highlight goes (as in ``DataTable``)."""
        if self._hover is not None:
            self._refresh_row(self._hover)
            self._hover = None

    def action_cursor_up(self) -> None:
        self._keyboard()
        self._place_cursor(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self._keyboard()
        self._place_cursor(self._cursor + 1)

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def action_page_down(self) -> None:
        self._keyboard()
        page = self._page()
        self.scroll_relative(y=page, animate=False, force=True, immediate=True)
        self._place_cursor(self._cursor + page)

    def action_page_up(self) -> None:
        self._keyboard()
        page = self._page()
        self.scroll_relative(y=-page, animate=False, force=True, immediate=True)
        self._place_cursor(self._cursor - page)

    def action_scroll_top(self) -> None:
        self._keyboard()
        self._place_cursor(0)

    def action_scroll_bottom(self) -> None:
        self._keyboard()
        self._place_cursor(len(self._keys) - 1)

    def action_select_cursor(self) -> None:
        key = self.cursor_key
        if key is not None:
            self.post_message(self.RowSelected(self, self._cursor, key))

    # --- mouse -------------------------------------------------------------------------------------

    def _row_at(self, event: events.MouseEvent) -> int | None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return None
        row = offset.y - 1 + int(self.scroll_y)
        return row if row < len(self._keys) else None

    async def _on_click(self, event: events.Click) -> None:
        row = self._row_at(event)
        if row is None:
            return
        event.stop()
        if row == self._cursor:
            self.action_select_cursor()
        else:
            self._place_cursor(row, animate=True)

    def _on_mouse_move(self, event: events.MouseMove) -> None:
        row = self._row_at(event)
        if row != self._hover:
            for old in (self._hover, row):
                if old is not None:
                    self._refresh_row(old)
            self._hover = row

    def _on_leave(self, _: events.Leave) -> None:
        if self._hover is not None:
            self._refresh_row(self._hover)
            self._hover = None

    # --- drawing -----------------------------------------------------------------------------------

    def _update_virtual_size(self) -> None:
        size = Size(sum(self._widths) + 2 * len(self._widths), len(self._keys) + 1)
        if self.styles.auto_dimensions or not self.container_size:
            self.virtual_size = size  # the table's own size follows its rows: lay the screen out again
        elif size != self.virtual_size:
            # A table sized by its container (the fleet's): a filter that changes the number of rows
            # changes only what scrolls, so the scrollbars are updated as Textual's own layout-free
            # resize does, instead of a layout of the whole screen on every keystroke.
            self.set_reactive(VirtualTable.virtual_size, size)
            self._scroll_update(size)
            self.refresh()

    def _refresh_row(self, index: int) -> None:
        y = index + 1 - int(self.scroll_y)
        if 0 < y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        scroll_x, scroll_y = self.scroll_offset
        row = HEADER if y == 0 else y - 1 + scroll_y
        if row >= len(self._keys):
            return Strip.blank(width, base)
        key = None if row == HEADER else self._keys[row]
        cursor = row == self._cursor and self._keys != []
        hover = row == self._hover
        cache_key = (
            key, self._versions.get(key or "", 0), row == HEADER, cursor, hover, width, scroll_x,
            base, self.has_focus, self._generation,
        )  # fmt: skip
        strip = self._lines.get(cache_key)
        if strip is None:
            strip = self._render_row(key, cursor, hover, width, base)
            strip = strip.crop(scroll_x, scroll_x + width).adjust_cell_length(width, base).simplify()
            self._lines[cache_key] = strip
        return strip

    def _render_row(self, key: str | None, cursor: bool, hover: bool, width: int, base: Style) -> Strip:
        """One row as ``DataTable`` draws it: each cell padded by one on each side, in ``base``
        (the header's style for the header) plus the cursor's or hover's, and the cursor's colour on
        top; the rest of the line in the same style."""
        if key is None:
            row_style = self.get_component_styles("datatable--header").rich_style
            cells: Sequence[Text] = self._labels
        else:
            row_style = base
            cells = self.row_cells(key)
        component = Style()
        if hover and key is not None:
            component += self.get_component_rich_style("datatable--hover")
        if cursor and key is not None:
            component += self.get_component_rich_style("datatable--cursor")
        post = Style.from_color(color=component.color) if cursor and key is not None else Style.null()
        console = self.app.console
        pre = row_style + component
        padded = pre + post
        segments: list[Segment] = []
        for cell, content_width in zip(cells, self._widths, strict=False):
            text = cell
            if text.cell_len > content_width:  # a cell that grew since the column was measured
                text = text.copy()
                text.truncate(content_width)
            # Text.render leaves the text's own style out when it has no spans: add it here
            own = pre + console.get_style(text.style, default=Style.null()) if text.style else pre
            segments.append(Segment(" ", padded))
            if not text.spans:  # one style for the whole cell: what Text.render would give, cheaper
                segments.append(Segment(text.plain, own + post))
            else:
                segments.extend(
                    Segment(segment.text, own + segment.style + post if segment.style else own + post)
                    for segment in text.render(console, end="")
                )
            segments.append(Segment(" " * (content_width - text.cell_len + 1), padded))
        table_width = sum(self._widths) + 2 * len(self._widths)
        segments.append(Segment(" " * max(0, width - table_width), row_style + component))
        return Strip(segments)
