"""The right-hand pane of the Files tab: the selected entry's details and a preview of its content.

The tab's worker downloads the first :data:`PREVIEW_BYTES` of a file (a Range request) and decides
with :func:`classify` what it is: text is shown with syntax highlighting (the lexer guessed from the
file name, else from the text), an image as half-block characters (``▀`` with the upper pixel as the
foreground and the lower one as the background, true colour, scaled to the pane keeping its aspect),
anything else as "binary, N bytes". Decoding an image happens in the worker (:func:`decode_image`);
scaling it to the pane is cheap and done when drawn, so a resize redraws it at the new size.
"""

from __future__ import annotations

import io
import stat
from datetime import UTC
from typing import Literal

from PIL import Image
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.content import Content
from textual.highlight import highlight
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from oc_tui.api.models import FsEntry, FsStat
from oc_tui.widgets.formatting import format_bytes, host_markup, host_text

PREVIEW_BYTES = 64 * 1024
"""How much of a file is fetched for its preview."""
IMAGE_LIMIT = 16 * 1024 * 1024
"""Bigger images are not fetched for a preview."""
PREVIEW_LINES = 2000
"""Text previews stop after this many lines (64 KiB of short lines would be more)."""
IMAGE_MAX_PIXELS = 512
"""Decoded images are reduced to at most this many pixels a side (a pane is never bigger)."""

Kind = Literal["text", "image", "binary", "empty", "directory", "note"]

_IMAGE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"RIFF",  # WebP: RIFF....WEBP (checked below)
)


def is_image(head: bytes) -> bool:
    if head.startswith(b"RIFF"):
        return head[8:12] == b"WEBP"
    return head.startswith(_IMAGE_MAGIC)


def decode_text(head: bytes) -> str | None:
    """``head`` as UTF-8 text, or None if it looks binary (a NUL byte, or not UTF-8). A character cut
    at the end of a partial download is forgiven."""
    if b"\x00" in head[:8192]:
        return None
    for cut in range(4):
        try:
            return head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:
                return None
    return None


def classify(head: bytes, size: int) -> Kind:
    """What a file is, from its first bytes."""
    if size == 0 or not head:
        return "empty"
    if is_image(head):
        return "image"
    return "text" if decode_text(head) is not None else "binary"


def highlight_text(name: str, text: str) -> Content:
    """``text`` highlighted for the language its file ``name`` suggests, with line numbers; in the
    theme's colours (Textual's highlighter styles with theme variables). Slow for 64 KiB (~0.1 s):
    call it from a worker thread. Control characters in the file are shown escaped (tabs are kept, a
    CR before a LF dropped)."""
    text = host_text(text.replace("\r\n", "\n"), keep="\t\n")
    lines = highlight(text, path=host_text(name)).split("\n")[:PREVIEW_LINES]
    width = len(str(len(lines)))
    return Content("\n").join(
        [
            Content.assemble((f"{number:>{width}}  ", "$foreground-muted"), line)
            for number, line in enumerate(lines, 1)
        ]
    )


def decode_image(data: bytes) -> Image.Image:
    """The image in ``data``, reduced to at most :data:`IMAGE_MAX_PIXELS` a side, as RGBA (runs in a
    worker thread: decoding can take a while). Raises ``OSError``/``ValueError`` when it is not one."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (IMAGE_MAX_PIXELS, IMAGE_MAX_PIXELS))  # JPEG: decode at a smaller scale
        image.thumbnail((IMAGE_MAX_PIXELS, IMAGE_MAX_PIXELS))
        return image.convert("RGBA")


def half_blocks(image: Image.Image, columns: int, rows: int, background: tuple[int, int, int]) -> list[Strip]:
    """``image`` scaled to fit ``columns`` x ``rows`` cells (two pixels a cell, one above the other),
    transparent parts over ``background``; at most 4x enlarged so an icon stays an icon."""
    if columns <= 0 or rows <= 0:
        return []
    width, height = image.size
    scale = min(columns / width, 2 * rows / height, 4.0)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    scaled = image.resize(size, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.NEAREST)
    flat = Image.new("RGBA", (size[0], size[1] + size[1] % 2), (*background, 255))
    flat.alpha_composite(scaled)
    rgb = flat.convert("RGB")
    pixels = rgb.tobytes()  # r, g, b per pixel, row after row
    row = 3 * rgb.width
    strips = []
    for y in range(0, rgb.height, 2):
        segments = []
        for x in range(rgb.width):
            at = y * row + 3 * x
            top, bottom = pixels[at : at + 3], pixels[at + row : at + row + 3]
            style = Style(color=Color.from_rgb(*top), bgcolor=Color.from_rgb(*bottom))
            segments.append(Segment("▀", style))
        strips.append(Strip(segments, rgb.width).simplify())
    return strips


class ImageView(Widget):
    """An image drawn with half blocks, scaled to the widget's size (recomputed when it changes)."""

    def __init__(self, image: Image.Image, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.image = image
        self._cache: tuple[tuple[int, int], list[Strip]] | None = None

    def render_line(self, y: int) -> Strip:
        size = (self.size.width, self.size.height)
        if self._cache is None or self._cache[0] != size:
            background = self.background_colors[1].rgb  # what shows through transparent pixels
            self._cache = (size, half_blocks(self.image, *size, background))
        strips = self._cache[1]
        return strips[y] if y < len(strips) else Strip.blank(size[0], self.rich_style)


FILE_TYPES = {
    stat.S_IFIFO: "named pipe (FIFO)",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
}
"""What ``ls -l`` tells apart beyond files, directories and links, by the mode's file-type bits."""


def describe_type(entry: FsStat | FsEntry) -> str:
    """The entry's kind in words: ``file``, ``directory``, ``symbolic link → target``, ``named pipe
    (FIFO)``, … (from its mode when the server sent one)."""
    if entry.is_symlink:
        target = getattr(entry, "symlink_target", None)
        kind = "link to a directory" if entry.is_dir else "symbolic link"
        return f"{kind} → {host_text(target)}" if target else kind
    if entry.is_dir:
        return "directory"
    mode = getattr(entry, "mode", None)
    return FILE_TYPES.get(stat.S_IFMT(mode), "file") if mode is not None else "file"


def details_table(stat: FsStat | FsEntry, key_style: Style, *, compact: bool = False) -> Table:
    """Name, path, type, size, mode and modification time, as a two-column grid."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style=key_style, no_wrap=True)
    table.add_column(overflow="fold")
    name = getattr(stat, "name", None) or stat.path.rstrip("/").rsplit("/", 1)[-1] or stat.path
    table.add_row("name", Text(host_text(name)))
    table.add_row("path", Text(host_text(stat.path)))
    table.add_row("type", Text(describe_type(stat)))
    if not stat.is_dir:
        exact = f"{stat.size:,} bytes"
        human = f"{format_bytes(stat.size)} ({exact})" if not compact else format_bytes(stat.size)
        table.add_row("size", human if stat.size >= 1024 else exact)
    table.add_row("mode", Text(host_text(stat.permissions or "") or "-"))
    stamp = "%Y-%m-%d %H:%MZ" if compact else "%Y-%m-%d %H:%M:%SZ"
    modified = stat.modified_at.astimezone(UTC).strftime(stamp) if stat.modified_at else "-"
    table.add_row("modified", modified)
    return table


class FileDetails(Static):
    """The stat of the selected entry."""

    COMPONENT_CLASSES = {"file-details--key"}

    def show(self, stat: FsStat | FsEntry | None) -> None:
        if stat is None:
            self.update("")
            return
        key = self.get_component_rich_style("file-details--key", partial=True)
        self.update(details_table(stat, key, compact=self.size.width < 40))


class FilePreview(VerticalScroll):
    """The selected file's content: highlighted text, a picture, or a note saying why there is none."""

    def clear(self, note: str = "") -> None:
        self.show_note(note)

    def show_note(self, note: str) -> None:
        """``note``: plain text (it may hold a relayed error: shown escaped)."""
        self._replace(Static(host_markup(note), classes="file-preview-note"))

    def show_text(self, content: Content) -> None:
        """Highlighted text (from :func:`highlight_text`)."""
        self._replace(Static(content, classes="file-preview-text"))

    def show_image(self, image: Image.Image) -> None:
        self._replace(ImageView(image, id="file-preview-image"))

    def _replace(self, widget: Widget) -> None:
        self.remove_children()
        self.mount(widget)
        self.scroll_home(animate=False)
