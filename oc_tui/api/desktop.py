"""Desktop sessions: an asyncvnc client speaking RFB over the desktop WebSocket.

The agent authenticates to the host's VNC server and offers us security type None (the ticket was our
authentication), so from ClientInit on the bytes are the VNC server's own. asyncvnc's ``connect(...,
opener=...)`` takes any (reader, writer) pair: :class:`SocketPipe` gives it an ``asyncio.StreamReader``
fed from the WebSocket's binary frames and a writer whose writes leave as binary frames (writes made in
the same loop tick share one frame). asyncvnc does the handshake, the pixel format and the encodings
(Raw and ZLib: all it decodes); we read the framebuffer updates ourselves, because asyncvnc does not say
which rectangle changed, and we need that to redraw only what changed.

Worked around here: asyncvnc leaves the socket open when its handshake fails (we close it, and turn the
server's close code and reason into :class:`errors.SessionRefused`); it has no DesktopSize, so the session
announces DesktopSize and ExtendedDesktopSize itself and follows the remote screen's size (``width``,
``height`` and a new ``framebuffer``) without reconnecting; its DES code warns on current
``cryptography`` (only reached with VNC passwords, which the agent handles; silenced at the call site).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
import warnings
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import asyncvnc
import numpy as np
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from . import errors
from .models import Ticket
from .sessions import open_session_socket

HANDSHAKE_TIMEOUT = 15.0  # seconds the RFB handshake may take
FPS_WINDOW = 2.0  # seconds of updates the frame rate is averaged over
ECHO_WINDOW = 2.0  # seconds after an input within which an update counts as the screen's answer to it
NO_VNC_SERVER = "no VNC server"  # how the agent's NO_VNC_SERVER reason begins (docs/api.md)
VNC_AUTH_FAILED = "VNC password refused"  # … the agent's password was wrong
VNC_NO_PASSWORD = "the VNC server wants a password"  # … and the agent has none

ENCODING_RAW = 0
ENCODING_ZLIB = 6
ENCODING_DESKTOP_SIZE = -223
ENCODING_EXTENDED_DESKTOP_SIZE = -308
ENCODINGS = (ENCODING_ZLIB, ENCODING_RAW, ENCODING_EXTENDED_DESKTOP_SIZE, ENCODING_DESKTOP_SIZE)
"""What the session tells the VNC server it reads (SetEncodings, sent after asyncvnc's own): asyncvnc's
two, and the pseudo-encodings that let the server change the screen's size under a live session."""
MAX_PIXELS = 8192 * 8192
"""The largest remote screen a session holds (192 MiB of RGB); a bigger one ends the session."""

BUTTONS = {"left": 1, "middle": 2, "right": 3}
NAMED_KEYS = {
    "\n": "Return",
    "\r": "Return",
    "\t": "Tab",
    "\x1b": "Escape",
    "\b": "BackSpace",
    "\x7f": "Delete",
}


@dataclass(frozen=True)
class Rect:
    """A rectangle of the remote screen, in its pixels."""

    x: int
    y: int
    width: int
    height: int

    def union(self, other: Rect | None) -> Rect:
        """The smallest rectangle holding both.

        Args:
            other: another rectangle, or None (then this one is the answer).

        Returns:
            The union, in the remote screen's pixels.
        """
        if other is None:
            return self
        x0, y0 = min(self.x, other.x), min(self.y, other.y)
        x1 = max(self.x + self.width, other.x + other.width)
        y1 = max(self.y + self.height, other.y + other.height)
        return Rect(x0, y0, x1 - x0, y1 - y0)


@dataclass
class DesktopStats:
    """What the readout shows. Times in milliseconds; None until measured."""

    frames: int = 0  # framebuffer updates received
    rects: int = 0
    resizes: int = 0  # times the remote screen changed size during the session
    bytes_received: int = 0
    fps: float = 0.0  # updates per second over the last FPS_WINDOW seconds
    update_ms: float | None = None  # first byte to last byte of the latest update (transfer + decode)
    # From an input event to the end of the first update after it: the screen's answer to the input.
    # An update more than ECHO_WINDOW after the input was not its answer (nothing changed on the screen):
    # it is not counted, and the figure stays the last real one.
    input_ms: float | None = None
    encoding: str = ""


def refusal_kind(reason: str) -> str | None:
    """What an agent's refusal of a desktop session means, by its close reason.

    Args:
        reason: the ``SessionRefused.reason`` of a 4502 close.

    Returns:
        ``"no_vnc_server"`` (the host runs no VNC server), ``"vnc_auth_failed"`` (the agent's password
        is wrong), ``"vnc_no_password"`` (the server asks for one and the agent has none), else None.
    """
    if reason.startswith(NO_VNC_SERVER):
        return "no_vnc_server"
    if reason.startswith(VNC_AUTH_FAILED):
        return "vnc_auth_failed"
    if reason.startswith(VNC_NO_PASSWORD):
        return "vnc_no_password"
    return None


def keysym(key: str) -> int:
    """An X keysym for a key.

    Args:
        key: a character (``"a"``, ``"é"``, ``"\\n"``) or a keysym name (``"Return"``, ``"F5"``,
            ``"Control_L"``; asyncvnc's table, which also knows ``"Ctrl"``, ``"Alt"``, ``"Esc"``).

    Returns:
        The keysym number.

    Raises:
        ValueError: an unknown name.
    """
    key = NAMED_KEYS.get(key, key)
    if len(key) == 1:
        code = ord(key)
        if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF:
            return code  # Latin-1 keysyms are the code points
        return 0x01000000 + code  # any other Unicode character
    try:
        return asyncvnc.key_codes[key]
    except KeyError:
        raise ValueError(f"unknown key {key!r}") from None


class SocketPipe:
    """A WebSocket as the (reader, writer) pair asyncvnc wants.

    The reader is a plain ``asyncio.StreamReader`` fed by a task that receives binary frames; the
    writer has the four methods asyncvnc uses (``write``, ``drain``, ``close``, ``wait_closed``).
    ``close_code``/``close_reason`` tell how the server ended the socket.
    """

    def __init__(self, ws: ClientConnection) -> None:
        """Start receiving the WebSocket's binary frames into :attr:`reader` (in a task of the running loop)."""
        self.ws = ws
        self.reader = asyncio.StreamReader(limit=2**20)
        self.close_code: int | None = None
        self.close_reason = ""
        self.bytes_received = 0
        self._out = bytearray()
        self._flushing: asyncio.Task[None] | None = None
        self._closing = False
        self._pump = asyncio.get_running_loop().create_task(self._receive())

    async def _receive(self) -> None:
        try:
            async for frame in self.ws:
                if isinstance(frame, bytes):
                    self.bytes_received += len(frame)
                    self.reader.feed_data(frame)
        except ConnectionClosed:
            pass
        finally:
            rcvd = self.ws.protocol.close_rcvd
            self.close_code = rcvd.code if rcvd is not None else None
            self.close_reason = rcvd.reason if rcvd is not None else "connection lost"
            self.reader.feed_eof()

    # --- the writer side ---

    def write(self, data: bytes) -> None:
        """Queue ``data`` to leave as a binary frame (writes in the same loop tick share one); dropped after close."""
        if self._closing:
            return
        self._out += data
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._out and not self._closing:
            data = bytes(self._out)
            self._out.clear()
            try:
                await self.ws.send(data)
            except ConnectionClosed:
                self._out.clear()
                return

    async def drain(self) -> None:
        """Wait until what was written has left.

        Raises:
            ConnectionResetError: the session has ended (the socket is closed).
        """
        if self._flushing is not None:
            await asyncio.shield(self._flushing)
        if self._pump.done():
            raise ConnectionResetError("the desktop session has ended")

    def is_closing(self) -> bool:
        """True once :meth:`close` or :meth:`wait_closed` was called."""
        return self._closing

    def close(self) -> None:
        """Stop writing (asyncio's ``StreamWriter.close``); :meth:`wait_closed` closes the socket."""
        self._closing = True

    async def wait_closed(self) -> None:
        """Close the WebSocket and wait for the receiving task to end. Never raises."""
        self._closing = True
        with contextlib.suppress(ConnectionClosed, OSError):
            await self.ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump


class DesktopSession:
    """A live view of a remote screen, and its keyboard and mouse.

    ``framebuffer`` is an RGB ``numpy`` array (height × width × 3) updated in place as updates arrive;
    ``await next_update()`` (or ``async for rect in updates()``) gives the rectangle that changed since
    the last call, merged. Input methods send at once (no await needed); ``await drain()`` waits until
    it has left. ``close()`` ends the session.
    """

    def __init__(self, client: asyncvnc.Client, pipe: SocketPipe, exits: contextlib.AsyncExitStack) -> None:
        """A session over a finished RFB handshake (use ``client.open_desktop`` or :func:`open_direct`).

        Args:
            client: asyncvnc's client after the handshake (pixel format and screen size known).
            pipe: the connection it reads from and writes to.
            exits: closes the connection; :meth:`close` runs it.
        """
        self.client = client
        self.pipe = pipe
        self._exits = exits
        video = client.video
        self.name: str = video.name
        self.width: int = video.width
        self.height: int = video.height
        self._channels = [video.mode.index(c) for c in "rgb"]
        self._check_size(self.width, self.height)
        self.framebuffer = np.zeros((self.height, self.width, 3), np.uint8)
        self.stats = DesktopStats()
        self._times: deque[float] = deque()
        self._dirty: Rect | None = None
        self._changed = asyncio.Event()
        self._buttons = 0
        self._input_at: float | None = None
        self._ended: BaseException | None = None
        self._closed = False
        self._resized = False
        # SetEncodings again, now with DesktopSize and ExtendedDesktopSize (asyncvnc announces only
        # ZLib): without them a server whose screen changes size (xrandr) drops the client.
        self.pipe.write(struct.pack(f">BxH{len(ENCODINGS)}i", 2, len(ENCODINGS), *ENCODINGS))
        self._reader = asyncio.get_running_loop().create_task(self._read_updates())

    # --- updates ---

    def _request(self, incremental: bool) -> None:
        self.pipe.write(struct.pack(">BBHHHH", 3, incremental, 0, 0, self.width, self.height))

    async def _read_updates(self) -> None:
        reader = self.pipe.reader
        try:
            self._request(False)
            while True:
                kind = (await reader.readexactly(1))[0]
                if kind == 0:
                    started = time.monotonic()
                    self._request(True)  # ask for the next one now: the server prepares it while we read
                    rect = await self._read_video(reader)
                    if self._resized:  # the whole new screen, not just what changes from now on
                        self._resized = False
                        self._request(False)
                    self._note_frame(started, rect)
                elif kind == 1:  # SetColourMapEntries: only for colour-mapped formats, which we never ask for
                    _pad, _first, count = struct.unpack(">BHH", await reader.readexactly(5))
                    await reader.readexactly(6 * count)
                elif kind == 2:  # Bell
                    pass
                elif kind == 3:  # ServerCutText
                    await reader.readexactly(3)
                    length = struct.unpack(">I", await reader.readexactly(4))[0]
                    self.client.clipboard.text = (await reader.readexactly(length)).decode("latin-1")
                else:
                    raise errors.StreamClosed(f"the VNC server sent an unknown message ({kind})")
        except asyncio.IncompleteReadError:
            self._ended = self._ending()
        except (errors.OpenComputersError, ConnectionError) as exc:
            self._ended = exc
        finally:
            if self._ended is None:
                self._ended = errors.StreamClosed("the desktop session was closed")
            self._changed.set()

    def _ending(self) -> errors.OpenComputersError:
        code, reason = self.pipe.close_code, self.pipe.close_reason
        if code is not None and code >= 4000:
            return errors.SessionRefused(code, reason)
        return errors.StreamClosed(reason or "the desktop session ended")

    async def _read_video(self, reader: asyncio.StreamReader) -> Rect | None:
        """One FramebufferUpdate into ``framebuffer``; the union of its rectangles."""
        _pad, count = struct.unpack(">BH", await reader.readexactly(3))
        changed: Rect | None = None
        video = self.client.video
        for _ in range(count):
            x, y, w, h, encoding = struct.unpack(">HHHHi", await reader.readexactly(12))
            if encoding == ENCODING_RAW:
                data = await reader.readexactly(w * h * 4)
                self.stats.encoding = "raw"
            elif encoding == ENCODING_ZLIB:
                length = struct.unpack(">I", await reader.readexactly(4))[0]
                data = video.decompress(await reader.readexactly(length))
                self.stats.encoding = "zlib"
            elif encoding == ENCODING_DESKTOP_SIZE:
                changed = self._resize(w, h)
                continue
            elif encoding == ENCODING_EXTENDED_DESKTOP_SIZE:
                screens = (await reader.readexactly(4))[0]
                await reader.readexactly(16 * screens)  # the screens' layout: one picture shows them all
                if y == 0:  # status 0: the size is the screen's now (not a refused request of ours)
                    changed = self._resize(w, h)
                continue
            else:
                raise errors.StreamClosed(
                    f"the VNC server used encoding {encoding}, which asyncvnc cannot read"
                )
            if w and h:
                pixels = np.frombuffer(data, np.uint8, w * h * 4).reshape(h, w, 4)
                self.framebuffer[y : y + h, x : x + w] = pixels[:, :, self._channels]
                changed = Rect(x, y, w, h).union(changed)
            self.stats.rects += 1
        return changed

    @staticmethod
    def _check_size(width: int, height: int) -> None:
        if width * height > MAX_PIXELS:
            raise errors.StreamClosed(f"the remote screen is too large to show ({width}×{height})")

    def _resize(self, width: int, height: int) -> Rect | None:
        """The remote screen is now ``width`` × ``height``: a new (black) framebuffer of that size, the
        whole of it to be sent again. Returns the whole screen as changed (None when the size is 0)."""
        if (width, height) != (self.width, self.height):
            self._check_size(width, height)
            self.width, self.height = width, height
            self.client.video.width, self.client.video.height = width, height
            self.framebuffer = np.zeros((height, width, 3), np.uint8)
            self.stats.resizes += 1
            self._resized = True
        return Rect(0, 0, width, height) if width and height else None

    def _note_frame(self, started: float, rect: Rect | None) -> None:
        now = time.monotonic()
        stats = self.stats
        stats.frames += 1
        stats.update_ms = (now - started) * 1000
        stats.bytes_received = self.pipe.bytes_received
        if self._input_at is not None:
            if now - self._input_at <= ECHO_WINDOW:
                stats.input_ms = (now - self._input_at) * 1000
            self._input_at = None
        self._times.append(now)
        if rect is not None:
            self._dirty = rect.union(self._dirty)
            self._changed.set()

    def current_fps(self) -> float:
        """Framebuffer updates per second over the last ``FPS_WINDOW`` (2) seconds.

        Returns:
            The rate (it falls to 0 when the screen is still); also kept in ``stats.fps``.
        """
        now = time.monotonic()
        while self._times and self._times[0] < now - FPS_WINDOW:
            self._times.popleft()
        self.stats.fps = len(self._times) / FPS_WINDOW
        return self.stats.fps

    @property
    def ended(self) -> BaseException | None:
        """Why the session is over (SessionRefused, StreamClosed), or None while it runs."""
        return self._ended if self._reader.done() else None

    async def next_update(self, timeout: float | None = None) -> Rect:
        """The rectangle changed since the last call (merged).

        Args:
            timeout: seconds to wait for a change; None waits for ever.

        Returns:
            The changed rectangle, in the remote screen's pixels; its pixels are in ``framebuffer``.

        Raises:
            errors.SessionRefused: the server closed the session with a 4xxx code.
            errors.StreamClosed: the session ended (closed, the connection lost, the screen resized, an
                encoding asyncvnc cannot read).
            TimeoutError: nothing changed within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while self._dirty is None:
                if self._reader.done():
                    raise self._ended or errors.StreamClosed("the desktop session ended")
                self._changed.clear()
                await self._changed.wait()
        rect, self._dirty = self._dirty, None
        return rect

    async def updates(self) -> AsyncIterator[Rect]:
        """Changed rectangles (see :meth:`next_update`) until the session ends; then the iteration stops quietly."""
        while True:
            try:
                yield await self.next_update()
            except errors.OpenComputersError:
                return

    # --- input ---

    def _input(self, data: bytes) -> None:
        if self._input_at is None:
            self._input_at = time.monotonic()
        self.pipe.write(data)

    def key_event(self, key: str | int, down: bool) -> None:
        """Press or release one key; sent at once.

        Args:
            key: a keysym number, a character or a keysym name (:func:`keysym`).
            down: True to press, False to release.

        Raises:
            ValueError: an unknown key name.
        """
        code = key if isinstance(key, int) else keysym(key)
        self._input(struct.pack(">BBHI", 4, down, 0, code))

    def key(self, key: str | int, *modifiers: str) -> None:
        """Press and release ``key`` while holding ``modifiers``; sent at once.

        Args:
            key: as for :meth:`key_event`.
            modifiers: keysym names held around it (``"Control_L"``, ``"Shift_L"``, ``"Alt_L"`` …).

        Raises:
            ValueError: an unknown key name.
        """
        for modifier in modifiers:
            self.key_event(modifier, True)
        self.key_event(key, True)
        self.key_event(key, False)
        for modifier in reversed(modifiers):
            self.key_event(modifier, False)

    def type_text(self, text: str) -> None:
        """Type ``text``, one key press and release per character; sent at once."""
        for char in text:
            self.key(char)

    def _clamp(self, x: int, y: int) -> tuple[int, int]:
        return min(max(int(x), 0), self.width - 1), min(max(int(y), 0), self.height - 1)

    def _pointer(self, x: int, y: int, buttons: int) -> None:
        x, y = self._clamp(x, y)
        self.client.mouse.x, self.client.mouse.y = x, y
        self._input(struct.pack(">BBHH", 5, buttons, x, y))

    def mouse_move(self, x: int, y: int) -> None:
        """Move the pointer to (x, y), in the remote screen's pixels (clamped to it), buttons held as they are."""
        self._pointer(x, y, self._buttons)

    def mouse_button(self, x: int, y: int, button: int, down: bool) -> None:
        """Press or release a mouse button; sent at once.

        Args:
            x: the pointer's column, in the remote screen's pixels (clamped to it).
            y: the pointer's row, in pixels (clamped).
            button: the X button: 1 left, 2 middle, 3 right, 4/5 the wheel.
            down: True to press, False to release.
        """
        mask = 1 << (button - 1)
        self._buttons = self._buttons | mask if down else self._buttons & ~mask
        self._pointer(x, y, self._buttons)

    def mouse_click(self, x: int, y: int, button: int = 1) -> None:
        """Move to (x, y) — remote pixels — and click ``button`` (1 left, 2 middle, 3 right)."""
        self.mouse_move(x, y)
        self.mouse_button(x, y, button, True)
        self.mouse_button(x, y, button, False)

    def scroll(self, x: int, y: int, dy: int) -> None:
        """Turn the wheel at (x, y), in remote pixels; sent at once.

        Args:
            x: the pointer's column, in pixels.
            y: the pointer's row, in pixels.
            dy: notches: negative up, positive down (X buttons 4 and 5).
        """
        button = 4 if dy < 0 else 5
        for _ in range(abs(dy)):
            self.mouse_button(x, y, button, True)
            self.mouse_button(x, y, button, False)

    async def drain(self) -> None:
        """Wait until the input sent so far has left.

        Raises:
            ConnectionResetError: the session has ended.
        """
        await self.pipe.drain()

    # --- pictures and the end ---

    def image(self) -> Any:
        """The whole screen now, as a PIL ``Image`` (RGB, the remote size in pixels; a copy)."""
        from PIL import Image

        return Image.fromarray(self.framebuffer.copy(), "RGB")

    def save_png(self, path: Path) -> Path:
        """Write the full-resolution screen as a PNG (blocking: call it in a thread).

        Args:
            path: the file to write.

        Returns:
            ``path``.

        Raises:
            OSError: the file cannot be written.
        """
        self.image().save(path, "PNG")
        return path

    async def close(self) -> None:
        """End the session and close its connection; idempotent, never raises."""
        if self._closed:
            return
        self._closed = True
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        with contextlib.suppress(ConnectionClosed, OSError, RuntimeError):
            await self._exits.aclose()

    async def __aenter__(self) -> Self:
        """Nothing to open: the session is connected already."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """:meth:`close` it."""
        await self.close()


async def open_desktop_socket(ticket: Ticket) -> DesktopSession:
    """Connect to the ticket's desktop WebSocket and do the RFB handshake over it.

    Args:
        ticket: a fresh desktop ticket.

    Returns:
        The live session.

    Raises:
        errors.SessionRefused: the server closed the socket instead (4502 with the agent's reason when
            the host has no VNC server or the password is wrong: :func:`refusal_kind`).
        errors.ConnectionFailed: the WebSocket cannot be opened.
        errors.StreamClosed: the handshake failed or took more than ``HANDSHAKE_TIMEOUT`` (15) seconds.
    """
    ws = await open_session_socket(ticket)
    pipe = SocketPipe(ws)

    async def opener(_host: str, _port: int) -> tuple[asyncio.StreamReader, SocketPipe]:
        return pipe.reader, pipe

    exits = contextlib.AsyncExitStack()
    exits.push_async_callback(pipe.wait_closed)  # asyncvnc does not close the socket when it fails
    try:
        with warnings.catch_warnings():  # asyncvnc's DES (never used here: the agent offers None)
            warnings.simplefilter("ignore", DeprecationWarning)
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                client = await exits.enter_async_context(asyncvnc.connect("desktop", 0, opener=opener))
    except asyncio.CancelledError:
        await asyncio.shield(exits.aclose())
        raise
    except (ValueError, PermissionError, ConnectionError, asyncio.IncompleteReadError, TimeoutError) as exc:
        await exits.aclose()
        code, reason = pipe.close_code, pipe.close_reason
        if code is not None and code != 1000:
            raise errors.SessionRefused(code, reason) from None
        if isinstance(exc, TimeoutError):
            raise errors.StreamClosed(
                "the desktop session did not start (no RFB handshake in time)"
            ) from None
        raise errors.StreamClosed(f"the desktop session failed to start: {reason or exc}") from None
    try:
        return DesktopSession(client, pipe, exits)
    except errors.StreamClosed:  # a screen too large to hold
        await exits.aclose()
        raise


class TcpPipe:
    """A plain TCP connection in :class:`SocketPipe`'s shape (for :func:`open_direct`)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Wrap an open TCP connection to a VNC server."""
        self.reader = reader
        self.writer = writer
        self.close_code: int | None = None
        self.close_reason = ""

    @property
    def bytes_received(self) -> int:
        """Always 0: bytes are not counted on a direct connection."""
        return 0  # not counted on a direct connection

    def write(self, data: bytes) -> None:
        """Write ``data`` to the socket (buffered; :meth:`drain` waits for it)."""
        self.writer.write(data)

    async def drain(self) -> None:
        """Wait until the buffered bytes have left; raises ``ConnectionError`` when the socket is gone."""
        await self.writer.drain()


async def open_direct(host: str, port: int = 5900, password: str | None = None) -> DesktopSession:
    """A session straight to a VNC server, without the control plane (the benchmark's baseline, and
    a way to look at a local VNC server). asyncvnc does the handshake, VNC passwords included.

    Args:
        host: the VNC server's address.
        port: its TCP port (5900 is display :0).
        password: the VNC password, or None.

    Returns:
        The live session.

    Raises:
        OSError: the server cannot be reached.
        PermissionError: the password was refused.
        ValueError: the server is not a VNC server, or wants a security type asyncvnc lacks.
    """
    pipe: TcpPipe | None = None

    async def opener(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        nonlocal pipe
        reader, writer = await asyncio.open_connection(host, port, limit=2**20)
        pipe = TcpPipe(reader, writer)
        return reader, writer

    exits = contextlib.AsyncExitStack()
    try:
        with warnings.catch_warnings():  # asyncvnc's DES: cryptography deprecates TripleDES
            warnings.simplefilter("ignore")
            client = await exits.enter_async_context(
                asyncvnc.connect(host, port, password=password, opener=opener)
            )
    except BaseException:
        if pipe is not None:  # asyncvnc leaves the socket open when its handshake fails
            pipe.writer.close()
        raise
    assert pipe is not None
    return DesktopSession(client, pipe, exits)  # type: ignore[arg-type]
