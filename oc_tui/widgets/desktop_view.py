"""The remote screen drawn with half-block cells: ``▀`` with the upper pixel as foreground colour and the
lower one as background, in true colour, so a cell shows two pixels and any terminal (over SSH, in
snapshots) can show a desktop.

Why it is built this way:

- :class:`HalfBlocks` is pure (no widget state): it maps a frame of W×H pixels onto the widget's cells
  keeping the aspect ratio (pillow resizes, centred), and renders any band of cell rows to Strips. The
  tab runs it in a thread (``asyncio.to_thread``): a full 200×100-cell frame takes tens of ms.
- An update redraws only the cell rows its rectangle touches: :meth:`HalfBlocks.rows_for` maps it to a
  band, pillow resizes just that band of the source (``resize(box=…)`` gives the very pixels a whole
  resize would), and only those rows' cached Strips are replaced and refreshed.
- Runs of equal cells share one Segment, and Styles are cached per colour pair: a still or flat area
  costs almost nothing.
- Keys go to the remote (:class:`KeyPressed`) except **ctrl+]**, which posts :class:`Escaped` so the
  tab can take the focus back; mouse buttons and the wheel are posted in remote pixel coordinates.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Region
from textual.keys import key_to_character
from textual.message import Message
from textual.strip import Strip

from oc_tui.widgets.key_capture import KeyCapture

if TYPE_CHECKING:  # numpy and pillow load with the first frame, not with the app (start-up time)
    import numpy as np

HALF_BLOCK = "▀"
PAD = Style()  # padding and missing lower pixels: the widget's background, applied in render_line
STYLE_CACHE_MAX = 50_000

NAMED = {
    "enter": "Return",
    "tab": "Tab",
    "backspace": "BackSpace",
    "escape": "Escape",
    "delete": "Delete",
    "insert": "Insert",
    "home": "Home",
    "end": "End",
    "pageup": "Prior",
    "pagedown": "Next",
    "up": "Up",
    "down": "Down",
    "left": "Left",
    "right": "Right",
    "space": " ",
}
MODIFIERS = {"ctrl": "Control_L", "shift": "Shift_L", "alt": "Alt_L", "meta": "Meta_L", "super": "Super_L"}


def remote_key(key: str, character: str | None) -> tuple[str, tuple[str, ...]] | None:
    """A Textual key (``"a"``, ``"ctrl+c"``, ``"shift+tab"``, ``"f5"``) as a keysym name or character
    plus the modifier keysyms to hold; None when it has no remote equivalent."""
    parts = key.split("+")
    base, mods = parts[-1], [MODIFIERS[m] for m in parts[:-1] if m in MODIFIERS]
    if not mods and character and character.isprintable():
        return character, ()
    if base in NAMED:
        return NAMED[base], tuple(mods)
    if len(base) > 1 and base[0] == "f" and base[1:].isdigit():
        return f"F{base[1:]}", tuple(mods)
    if len(base) == 1:
        return base, tuple(mods)
    char = key_to_character(base)
    if char is not None:
        return char, tuple(mods)
    return None


@dataclass(frozen=True)
class HalfBlocks:
    """A frame of ``frame_w``×``frame_h`` pixels fitted into ``cols``×``rows`` cells (two pixels a cell)."""

    frame_w: int
    frame_h: int
    cols: int
    rows: int

    @property
    def scale(self) -> float:
        if self.frame_w <= 0 or self.frame_h <= 0 or self.cols <= 0 or self.rows <= 0:
            return 0.0
        return min(self.cols / self.frame_w, 2 * self.rows / self.frame_h)

    @property
    def image_w(self) -> int:
        """Width of the scaled picture, in cells (= pixels)."""
        return max(1, min(self.cols, round(self.frame_w * self.scale))) if self.scale else 0

    @property
    def image_h(self) -> int:
        """Height of the scaled picture, in pixels (two a cell row)."""
        return max(1, min(2 * self.rows, round(self.frame_h * self.scale))) if self.scale else 0

    @property
    def image_rows(self) -> int:
        return (self.image_h + 1) // 2

    @property
    def left(self) -> int:
        return (self.cols - self.image_w) // 2

    @property
    def top(self) -> int:
        return (self.rows - self.image_rows) // 2

    def rows_for(self, x: int, y: int, width: int, height: int) -> range:
        """The widget's cell rows that show any of the frame's rows ``y`` … ``y + height - 1``."""
        if not self.scale or height <= 0 or width <= 0:
            return range(0)
        sy = self.image_h / self.frame_h
        first = max(0, math.floor(y * sy) - 1) // 2  # one pixel of margin: resampling reaches over
        last = min(self.image_h - 1, math.ceil((y + height) * sy)) // 2
        return range(self.top + first, self.top + min(last, self.image_rows - 1) + 1)

    def all_rows(self) -> range:
        return range(self.rows)

    def to_remote(self, cx: int, cy: int) -> tuple[int, int] | None:
        """The remote pixel under the centre of cell (cx, cy), or None outside the picture."""
        ix, iy = cx - self.left, cy - self.top
        if not self.scale or not (0 <= ix < self.image_w and 0 <= iy < self.image_rows):
            return None
        x = int((ix + 0.5) * self.frame_w / self.image_w)
        y = int((2 * iy + 1) * self.frame_h / self.image_h)
        return min(x, self.frame_w - 1), min(y, self.frame_h - 1)

    def scaled_band(self, frame: np.ndarray, first_px: int, last_px: int) -> np.ndarray:
        import numpy as np
        from PIL import Image

        """Rows ``first_px`` … ``last_px - 1`` of the scaled picture (RGB, image_w wide)."""
        sy = self.frame_h / self.image_h
        top, bottom = first_px * sy, last_px * sy
        margin = max(2, math.ceil(sy) + 1)
        src0, src1 = max(0, math.floor(top) - margin), min(self.frame_h, math.ceil(bottom) + margin)
        source = Image.fromarray(np.ascontiguousarray(frame[src0:src1]), "RGB")
        down = self.image_w < self.frame_w
        resample = Image.Resampling.BOX if down else Image.Resampling.BILINEAR
        band = source.resize(
            (self.image_w, last_px - first_px), resample, box=(0, top - src0, self.frame_w, bottom - src0)
        )
        return np.asarray(band)

    def render(
        self, frame: np.ndarray, rows: range, pad: Style, cache: dict[bytes, Style]
    ) -> dict[int, Strip]:
        """Strips for the widget's cell ``rows`` (thread-safe except for ``cache``, which only grows)."""
        out: dict[int, Strip] = {}
        blank = Strip([Segment(" " * self.cols, pad)], self.cols)
        inside = [r for r in rows if 0 <= r - self.top < self.image_rows]
        for r in rows:
            if r not in inside:
                out[r] = blank
        if not inside:
            return out
        first, last = inside[0] - self.top, inside[-1] - self.top
        first_px, last_px = 2 * first, min(self.image_h, 2 * last + 2)
        band = self.scaled_band(frame, first_px, last_px)
        if len(cache) > STYLE_CACHE_MAX:
            cache.clear()
        left = Segment(" " * self.left, pad) if self.left else None
        right_w = self.cols - self.left - self.image_w
        right = Segment(" " * right_w, pad) if right_w else None
        for r in inside:
            i = 2 * (r - self.top) - first_px
            upper = band[i]
            lower = band[i + 1] if i + 1 < len(band) else None
            segments = [left] if left else []
            segments += _runs(upper, lower, pad, cache)
            if right:
                segments.append(right)
            out[r] = Strip(segments, self.cols)
        return out


def _runs(
    upper: np.ndarray, lower: np.ndarray | None, pad: Style, cache: dict[bytes, Style]
) -> list[Segment]:
    """One Segment per run of equal cells of a row."""
    import numpy as np

    pairs = np.concatenate([upper, lower if lower is not None else upper], axis=1)
    width = len(pairs)
    if width == 0:
        return []
    changes = np.flatnonzero(np.any(pairs[1:] != pairs[:-1], axis=1)) + 1
    starts = [0, *changes.tolist()]
    ends = [*changes.tolist(), width]
    segments = []
    for start, end in zip(starts, ends, strict=True):
        key = pairs[start].tobytes()
        style = cache.get(key)
        if style is None:
            r, g, b, r2, g2, b2 = pairs[start].tolist()
            bg = Color.from_rgb(r2, g2, b2) if lower is not None else pad.bgcolor
            style = Style(color=Color.from_rgb(r, g, b), bgcolor=bg)
            cache[key] = style
        segments.append(Segment(HALF_BLOCK * (end - start), style))
    return segments


class DesktopView(KeyCapture):
    """A remote screen: give it frames (:meth:`show`, :meth:`redraw`); it posts the user's input."""

    DEFAULT_CSS = """
    DesktopView {
        width: 1fr;
        height: 1fr;
    }
    """

    LEAVE = "Leave desktop"

    class KeyPressed(Message):
        """A key for the remote: a keysym name or character, with modifier keysyms to hold."""

        def __init__(self, key: str, modifiers: tuple[str, ...]) -> None:
            super().__init__()
            self.key = key
            self.modifiers = modifiers

    @dataclass
    class Pointer(Message):
        """At remote pixel (x, y): a mouse button pressed/released (``button`` 1–3, ``down``), the wheel
        turned (``wheel``: notches, negative up), or (neither) the pointer dragged there."""

        x: int
        y: int
        button: int = 0
        down: bool = False
        wheel: int = 0

    class Escaped(KeyCapture.Escaped):
        """ctrl+] was pressed: the parent should take the focus back."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.frame: np.ndarray | None = None
        self.layout_: HalfBlocks = HalfBlocks(0, 0, 0, 0)
        self._strips: dict[int, Strip] = {}
        self._styles: dict[bytes, Style] = {}
        self._lock = asyncio.Lock()
        self.render_ms: float | None = None
        """How long the latest redraw took (resize and Strips), for the readout."""

    # --- drawing -----------------------------------------------------------------------------------

    def _layout_now(self) -> HalfBlocks:
        size = self.size
        if self.frame is None:
            return HalfBlocks(0, 0, size.width, size.height)
        h, w = self.frame.shape[:2]
        return HalfBlocks(w, h, size.width, size.height)

    @property
    def scale(self) -> float:
        return self.layout_.scale

    def show(self, frame: np.ndarray) -> None:
        """Draw a whole new frame now, on the UI thread (for still pictures and tests)."""
        self.frame = frame
        self.layout_ = layout = self._layout_now()
        self._strips = layout.render(frame, layout.all_rows(), PAD, self._styles)
        self.refresh()

    async def redraw(self, frame: np.ndarray, rect: tuple[int, int, int, int] | None = None) -> None:
        """Redraw the rows ``rect`` (x, y, w, h of the frame) touches, or all, converting in a thread."""
        import time

        async with self._lock:
            new_frame = self.frame is None or self.frame.shape != frame.shape
            self.frame = frame
            layout = self._layout_now()
            if layout != self.layout_ or new_frame or rect is None:
                rows = layout.all_rows()
            else:
                rows = layout.rows_for(*rect)
            if not rows:
                self.layout_ = layout
                return
            started = time.perf_counter()
            strips = await asyncio.to_thread(layout.render, frame, rows, PAD, self._styles)
            self.render_ms = (time.perf_counter() - started) * 1000
            if layout != self._layout_now():  # resized meanwhile: on_resize redraws everything
                return
            if layout != self.layout_:
                self._strips = {}
                self.layout_ = layout
                self.refresh()
            self._strips.update(strips)
            self.refresh_rows(sorted(strips))

    def refresh_rows(self, rows: list[int]) -> None:
        """Repaint these cell rows only."""
        width = self.size.width
        if rows:
            self.refresh(*(Region(0, y, width, 1) for y in rows))

    def on_resize(self, event: events.Resize) -> None:
        if self.frame is not None:
            self.run_worker(self.redraw(self.frame), group="desktop-view-resize", exclusive=True)

    def render_line(self, y: int) -> Strip:
        """The cached Strip of row ``y``, on the widget's background (applied here, not baked in, so a
        theme change or a style computed while hidden never sticks to cached rows)."""
        strip = self._strips.get(y)
        width = self.size.width
        style = self.rich_style
        if strip is None:
            return Strip([Segment(" " * width, style)], width)
        if strip.cell_length != width:
            strip = strip.crop_extend(0, width, None)
        return strip.apply_style(style)

    def cell_colours(self, x: int, y: int) -> tuple[tuple[int, int, int] | None, tuple[int, int, int] | None]:
        """The (upper, lower) colours drawn in cell (x, y), for tests."""
        strip = self._strips.get(y)
        if strip is None:
            return None, None
        offset = 0
        for segment in strip:
            if offset + segment.cell_length > x:
                style = segment.style
                fg = style.color.get_truecolor() if style and style.color else None
                bg = style.bgcolor.get_truecolor() if style and style.bgcolor else None
                upper = (fg.red, fg.green, fg.blue) if fg else None
                lower = (bg.red, bg.green, bg.blue) if bg else None
                return upper, lower
            offset += segment.cell_length
        return None, None

    # --- input -------------------------------------------------------------------------------------

    def escaped(self) -> Escaped:
        return self.Escaped()

    def remote_key(self, event: events.Key) -> None:
        mapped = remote_key(event.key, event.character)
        if mapped is not None:
            self.post_message(self.KeyPressed(*mapped))

    def _at(self, event: events.MouseEvent) -> tuple[int, int] | None:
        return self.layout_.to_remote(event.x, event.y)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        event.stop()
        self.focus()
        spot = self._at(event)
        if spot is not None and event.button in (1, 2, 3):
            self.capture_mouse()
            self.post_message(self.Pointer(*spot, button=event.button, down=True))

    def on_mouse_up(self, event: events.MouseUp) -> None:
        event.stop()
        self.release_mouse()
        spot = self._at(event)
        if spot is None:  # released outside the picture: release at the nearest edge
            layout = self.layout_
            cx = min(max(event.x, layout.left), layout.left + layout.image_w - 1)
            cy = min(max(event.y, layout.top), layout.top + layout.image_rows - 1)
            spot = layout.to_remote(cx, cy)
        if spot is not None and event.button in (1, 2, 3):
            self.post_message(self.Pointer(*spot, button=event.button, down=False))

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if event.button:  # a drag: the remote sees the pointer move with the button held
            spot = self._at(event)
            if spot is not None:
                self.post_message(self.Pointer(*spot))

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        spot = self._at(event)
        if spot is not None:
            self.post_message(self.Pointer(*spot, wheel=-1))

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        spot = self._at(event)
        if spot is not None:
            self.post_message(self.Pointer(*spot, wheel=1))
