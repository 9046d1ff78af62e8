"""The Files tab's data, without a widget: previews of remote files and the transfer queue.

:func:`load_preview` asks the API for what the preview pane shows of one path (its stat, and for a file
the first bytes: text highlighted, an image decoded, or what kind of file it is). :class:`TransferQueue`
keeps the tab's transfers and runs them one after the other; :func:`run_transfer` moves one file.
"""

from __future__ import annotations

import asyncio
import posixpath
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from PIL import Image
from textual.content import Content

from oc_tui.api import OpenComputersClient, errors
from oc_tui.api.models import FsStat
from oc_tui.api.transfers import TransferMeter
from oc_tui.widgets.file_preview import (
    IMAGE_LIMIT,
    PREVIEW_BYTES,
    Kind,
    classify,
    decode_image,
    decode_text,
    highlight_text,
)
from oc_tui.widgets.formatting import describe_error, format_bytes

TransferKind = Literal["download", "upload"]


# --- previews ------------------------------------------------------------------------------------------


@dataclass
class Preview:
    """What the preview pane shows of ``path`` (the fields of the tab's ``Previewed`` message)."""

    path: str
    stat: FsStat | None
    kind: Kind
    text: str | None = None
    content: Content | None = None
    """``text`` highlighted."""
    image: Image.Image | None = None
    note: str = ""
    size: int | None = None
    """The file's size (a symlink's target's; the stat is the link's own)."""


async def load_preview(client: OpenComputersClient, host_id: str, path: str, is_dir: bool = False) -> Preview:
    """The stat of ``path`` and, for a file, a preview of its first bytes. ``is_dir``: the listing says
    it is a directory (a symlink's stat is the link's own, so it cannot tell). Never raises an API
    error: a failure is a ``note`` preview saying why."""
    try:
        stat = await client.stat(host_id, path)
    except errors.OpenComputersError as exc:
        return Preview(path, None, "note", note=f"no details: {describe_error(exc)}")
    if stat.is_dir or is_dir:
        return Preview(path, stat, "directory")
    try:
        head, size = await _head(client, host_id, path)
    except errors.OpenComputersError as exc:
        return Preview(path, stat, "note", note=f"no preview: {describe_error(exc)}")
    kind = classify(head, size)
    if kind == "image":
        return await _image(client, host_id, path, stat, head, size)
    if kind == "text":
        text = decode_text(head) or ""
        content = await asyncio.to_thread(highlight_text, posixpath.basename(path), text)
        note = f"first {format_bytes(len(head))} of {format_bytes(size)}" if size > len(head) else ""
        return Preview(path, stat, "text", text=text, content=content, note=note)
    return Preview(path, stat, kind, size=size)


async def _head(client: OpenComputersClient, host_id: str, path: str) -> tuple[bytes, int]:
    """The first :data:`PREVIEW_BYTES` of a file and its whole size (through a symlink: the target's,
    which the link's own stat does not tell)."""
    try:
        async with client.download_stream(host_id, path, length=PREVIEW_BYTES) as stream:
            head = b"".join([chunk async for chunk in stream])
    except errors.RangeNotSatisfiableError:  # an empty file
        return b"", 0
    return head, stream.size if stream.size is not None else len(head)


async def _image(
    client: OpenComputersClient, host_id: str, path: str, stat: FsStat, head: bytes, size: int
) -> Preview:
    if size > IMAGE_LIMIT:
        return Preview(path, stat, "note", note=f"image, {format_bytes(size)}: too big to preview")
    try:
        data = head if len(head) >= size else await client.download(host_id, path)
        image = await asyncio.to_thread(decode_image, data)
    except errors.OpenComputersError as exc:
        return Preview(path, stat, "note", note=f"no preview: {describe_error(exc)}")
    except (OSError, ValueError, Image.DecompressionBombError):
        return Preview(path, stat, "binary")
    return Preview(path, stat, "image", image=image)


# --- transfers -----------------------------------------------------------------------------------------


@dataclass
class Transfer:
    """One queued or running transfer between a remote path and a local one."""

    id: int
    kind: TransferKind
    remote: str
    local: str
    resume: bool = False
    meter: TransferMeter = field(default_factory=TransferMeter)
    state: str = "queued"

    @property
    def name(self) -> str:
        """The remote file's name (what a download is of, what an upload becomes)."""
        return self.remote.rstrip("/").rsplit("/", 1)[-1] or self.remote


class TransferQueue:
    """Every transfer of one tab (finished ones too); one runs at a time, the rest wait in order."""

    def __init__(self) -> None:
        self._transfers: dict[int, Transfer] = {}
        self._waiting: deque[int] = deque()
        self.active: int | None = None
        """The id of the running transfer."""
        self._next_id = 1

    @property
    def all(self) -> list[Transfer]:
        """Every transfer, oldest first."""
        return list(self._transfers.values())

    @property
    def waiting(self) -> int:
        """How many transfers wait for the running one."""
        return len(self._waiting)

    @property
    def running(self) -> Transfer | None:
        """The running transfer, if any."""
        return self._transfers.get(self.active) if self.active is not None else None

    def get(self, transfer_id: int) -> Transfer | None:
        """The transfer with this id."""
        return self._transfers.get(transfer_id)

    def add(
        self, kind: TransferKind, remote: str, local: str, *, resume: bool = False, size: int | None = None
    ) -> Transfer:
        """Queue a transfer (``size``: its bytes, when known before it starts)."""
        transfer = Transfer(self._next_id, kind, remote, local, resume=resume)
        transfer.meter.total = size
        self._next_id += 1
        self._transfers[transfer.id] = transfer
        self._waiting.append(transfer.id)
        return transfer

    def start_next(self) -> Transfer | None:
        """When none runs, the next waiting transfer becomes the running one (returned)."""
        if self.active is not None or not self._waiting:
            return None
        transfer = self._transfers[self._waiting.popleft()]
        transfer.state = "running"
        transfer.meter = type(transfer.meter)(transfer.meter.total)
        self.active = transfer.id
        return transfer

    def end(self, transfer_id: int, state: str) -> Transfer | None:
        """A transfer ended (``done``, ``failed`` or ``cancelled``); the next may start."""
        transfer = self._transfers.get(transfer_id)
        if transfer is None:
            return None
        transfer.state = state
        if self.active == transfer_id:
            self.active = None
        return transfer


async def run_transfer(
    client: OpenComputersClient,
    host_id: str,
    transfer: Transfer,
    progress: Callable[[int, int | None], None],
) -> str:
    """Move one file; ``progress(done, total)`` as bytes go. Returns what was done (``saved … (1.0 MiB)``).

    Raises the client's ``OpenComputersError``, ``OSError`` (the local file) or ``ValueError``.
    """
    if transfer.kind == "download":
        size = await client.download_to(
            host_id, transfer.remote, transfer.local, resume=transfer.resume, progress=progress
        )
        return f"saved {transfer.local} ({format_bytes(size)})"
    stat = await client.upload(host_id, transfer.remote, transfer.local, progress=progress)
    size = stat.size if stat is not None else transfer.meter.done
    return f"uploaded {transfer.remote} ({format_bytes(size)})"
