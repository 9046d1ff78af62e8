"""The remote directory listing of the Files tab: name, size, modified, mode; directories first.

A :class:`~oc_tui.widgets.virtual_table.VirtualTable`, so a directory of thousands of entries (``/usr/lib``)
costs only the rows on screen: cells are made when a row is drawn, and sorting is one ``list.sort``.
Rows are keyed by entry name (unique in a directory); ``..`` is the parent's row, always first.

Type-to-jump: a printable key that no binding claims (or any but an upper-case bound key while a jump
is under way, or after ``/``) is added to a prefix, and the cursor moves to the first name starting with it (case-insensitive);
the prefix is forgotten after :data:`JUMP_PAUSE` seconds without typing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.timer import Timer

from oc_tui.api.models import FsEntry, utcnow
from oc_tui.widgets.formatting import format_bytes, host_text, relative_time
from oc_tui.widgets.styles import text_style
from oc_tui.widgets.virtual_table import VirtualTable

PARENT = ".."
COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "NAME"),
    ("size", "SIZE"),
    ("modified", "MODIFIED"),
    ("mode", "MODE"),
)
FIXED_WIDTHS = (10, 10, 10)
"""Size, modified and mode columns; the name column takes the rest of the table's width."""
MIN_NAME_WIDTH = 16
JUMP_PAUSE = 1.0
"""Seconds of no typing after which type-to-jump starts a new prefix."""
SORTS = ("name", "size", "time")
RECENT = timedelta(days=7)
"""Modified within this long ago shows as ``3h ago``; older as a date."""


def entry_label(entry: FsEntry) -> str:
    """The name as listed (control characters escaped): ``dir/``, ``link@`` (``dir/@`` for a link to a
    directory)."""
    return host_text(entry.name) + ("/" if entry.is_dir else "") + ("@" if entry.is_symlink else "")


def format_modified(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "-"
    if now - when.astimezone(UTC) < RECENT:
        return relative_time(when, now)
    return when.astimezone(UTC).strftime("%Y-%m-%d")


SORT_WORDS = {
    ("name", False): "name A→Z",
    ("name", True): "name Z→A",
    ("size", False): "size, largest first",
    ("size", True): "size, smallest first",
    ("time", False): "time, newest first",
    ("time", True): "time, oldest first",
}
"""How the Files tab says an order (an arrow alone meant opposite things for name and size)."""


def sort_words(by: str, reverse: bool) -> str:
    """The order ``by`` (``name``/``size``/``time``), reversed or not, in words."""
    return SORT_WORDS.get((by, reverse), by)


def sort_entries(entries: Iterable[FsEntry], by: str, reverse: bool = False) -> list[FsEntry]:
    """Directories first, then files, each in the order ``by``: ``name`` A→Z, ``size`` biggest
    first, ``time`` newest first; ``reverse`` turns the order within each group around."""
    epoch = datetime.min.replace(tzinfo=UTC)
    if by == "size":

        def key(e: FsEntry) -> tuple:
            return (-e.size, e.name.lower())
    elif by == "time":

        def key(e: FsEntry) -> tuple:
            stamp = (e.modified_at or epoch).timestamp() if e.modified_at else float("-inf")
            return (-stamp, e.name.lower())
    else:

        def key(e: FsEntry) -> tuple:
            return (e.name.lower(), e.name)

    items = list(entries)
    dirs = sorted((e for e in items if e.is_dir), key=key, reverse=reverse)
    files = sorted((e for e in items if not e.is_dir), key=key, reverse=reverse)
    return dirs + files


class FileList(VirtualTable):
    """One directory's entries as rows; :meth:`show` replaces them, :meth:`resort` reorders."""

    COMPONENT_CLASSES = VirtualTable.COMPONENT_CLASSES | {
        "file-list--dir",
        "file-list--link",
        "file-list--dim",
        "file-list--parent",
    }
    COLUMNS = COLUMNS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open", tooltip="Open the directory / preview the file")
    ]

    @dataclass
    class JumpChanged(Message):
        """The type-to-jump prefix changed ("" when it was reset)."""

        prefix: str

    def __init__(self, clock: Callable[[], datetime] = utcnow, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.entries: dict[str, FsEntry] = {}
        self.sort_by = "name"
        self.reverse = False
        self.parent_row = False
        self._jump = ""
        self._jump_at = 0.0
        self._jump_forced = False
        self._jump_timer: Timer | None = None

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.refresh_all_rows())

    def on_resize(self) -> None:
        self._fit_columns()

    # --- content -----------------------------------------------------------------------------------

    def show(self, entries: Sequence[FsEntry], *, parent_row: bool, select: str | None = None) -> None:
        """A new listing; the cursor goes to ``select`` if it is there, else to the first row."""
        self.entries = {entry.name: entry for entry in entries}
        self.parent_row = parent_row
        self.reset_jump()
        self._order(select=select, keep=False)

    def resort(self, by: str | None = None, reverse: bool | None = None) -> None:
        """Reorder (keeping the cursor on its entry)."""
        if by is not None:
            self.sort_by = by
        if reverse is not None:
            self.reverse = reverse
        self._order(select=self.cursor_key, keep=True)

    def _order(self, *, select: str | None, keep: bool) -> None:
        keys = [entry.name for entry in sort_entries(self.entries.values(), self.sort_by, self.reverse)]
        if self.parent_row:
            keys.insert(0, PARENT)
        if not keep:
            self._cursor = 0
            self._highlighted = None
        self.set_rows(keys)
        self._fit_columns()
        self.refresh_all_rows()
        index = self.row_index(select) if select is not None else None
        first = 1 if self.parent_row and len(keys) > 1 else 0  # the first entry, not ``..``
        self.move_cursor(row=index if index is not None else (self.cursor_row if keep else first))
        if not keep:
            self.scroll_to(y=0, animate=False, immediate=True)

    @property
    def selected(self) -> FsEntry | None:
        """The entry under the cursor (None for ``..`` or an empty listing)."""
        key = self.cursor_key
        return None if key is None or key == PARENT else self.entries.get(key)

    def row_cells(self, key: str) -> Sequence[Text]:
        dim = text_style(self, "file-list--dim")
        if key == PARENT:
            return [Text("../", style=text_style(self, "file-list--parent")), Text(""), Text(""), Text("")]
        entry = self.entries[key]
        style = text_style(self, "file-list--dir") if entry.is_dir else None
        name = Text(entry_label(entry), style=style or "", overflow="ellipsis", no_wrap=True)
        if entry.is_symlink:
            name.stylize(text_style(self, "file-list--link"), len(name) - 1)
        size = Text("-" if entry.is_dir else format_bytes(entry.size), style=dim, justify="right")
        modified = Text(format_modified(entry.modified_at, self.clock()), style=dim)
        mode = Text(host_text(entry.permissions or ""), style=dim)
        return [name, size, modified, mode]

    def _fit_columns(self) -> None:
        """The name column gets what the fixed columns leave of the table's width (never too little).

        The base table's widths only ever grow; a listing must fit the pane it is in, so the widths
        are set here outright (``VirtualTable._widths``)."""
        width = self.content_region.width
        if not width:
            return
        # room for a vertical scrollbar, shown or not, so that one appearing never adds a horizontal one
        room = width - self.styles.scrollbar_size_vertical - sum(FIXED_WIDTHS) - 2 * len(COLUMNS)
        widths = [max(MIN_NAME_WIDTH, room), *FIXED_WIDTHS]
        if widths != self._widths:
            self._widths = widths
            self._update_virtual_size()
            self.refresh_all_rows()

    # --- type-to-jump ------------------------------------------------------------------------------

    @property
    def jump_prefix(self) -> str:
        """The prefix typed so far ("" once the pause has passed)."""
        if self._jump and time.monotonic() - self._jump_at > JUMP_PAUSE and not self._jump_forced:
            self._jump = ""
        return self._jump

    @property
    def jump_forced(self) -> bool:
        """``/`` was pressed and nothing typed since."""
        return self._jump_forced

    def start_jump(self) -> None:
        """``/``: the next keys are a name prefix even if they are bound to something."""
        self._jump, self._jump_forced, self._jump_at = "", True, time.monotonic()
        self.post_message(self.JumpChanged("/"))

    def _jump_expired(self) -> None:
        self._jump_timer = None
        if self._jump and not self._jump_forced:
            self._jump = ""
            self.post_message(self.JumpChanged(""))

    def reset_jump(self) -> None:
        if self._jump or self._jump_forced:
            self._jump, self._jump_forced = "", False
            self.post_message(self.JumpChanged(""))

    def jump(self, character: str) -> bool:
        """Add ``character`` to the prefix and move to the first match; False if nothing matches."""
        prefix = (self.jump_prefix + character).lower()
        self._jump, self._jump_at, self._jump_forced = prefix, time.monotonic(), False
        self.post_message(self.JumpChanged(prefix))
        if self._jump_timer is not None:
            self._jump_timer.stop()
        self._jump_timer = self.set_timer(JUMP_PAUSE, self._jump_expired)
        for index, key in enumerate(self.row_keys):
            if key.lower().startswith(prefix):
                self.move_cursor(row=index)
                return True
        return False

    def on_key(self, event: events.Key) -> None:
        """Printable keys nothing else wants (or all of them while jumping) go to type-to-jump."""
        character = event.character
        if event.key == "escape" and (self._jump or self._jump_forced):
            event.stop()
            event.prevent_default()
            self.reset_jump()
            return
        if character is None or len(character) != 1 or not character.isprintable() or character == " ":
            self.reset_jump()  # moving, opening, going up: the next letters start a new name
            return
        jumping = bool(self.jump_prefix) or self._jump_forced
        # the jump ignores case, so an upper-case key (``D``, ``S``) keeps its binding even mid-jump
        if event.key in self.screen.active_bindings and (not jumping or character.isupper()):
            return
        event.stop()
        event.prevent_default()
        self.jump(character)
