"""The Files tab of a host: browse its file system, preview files, download, upload, mkdir, delete.

Two panes under a path bar: the directory listing (:class:`~oc_tui.widgets.file_list.FileList`) and,
beside it (below it in a narrow terminal), the selected entry's details and a preview. A strip at
the bottom shows the running transfer; more wait in a queue and run one after the other.

Data flow as everywhere in oc-tui: workers (``@work``) talk to the client and to the local disk and
post messages; handlers only update widgets. Tests and the screenshot script feed fixed models
through the same messages (``live=False``): :class:`Listed`, :class:`Previewed`, and for transfers
:meth:`FilesTab.add_transfer` with :class:`TransferProgress`.
"""

from __future__ import annotations

import asyncio
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Label, Static
from textual.worker import Worker, WorkerState

from oc_tui.api import errors
from oc_tui.api.models import FsEntry, FsList, utcnow
from oc_tui.files_model import Preview, Transfer, TransferKind, TransferQueue, load_preview, run_transfer
from oc_tui.screens.confirm import ConfirmScreen
from oc_tui.screens.file_dialogs import (
    DownloadDialog,
    DownloadRequest,
    MkdirDialog,
    UploadDialog,
    UploadRequest,
    default_download_path,
    remote_join,
)
from oc_tui.screens.host_tab import HostTab, HostTabContext
from oc_tui.widgets.file_list import PARENT, SORTS, FileList, sort_words
from oc_tui.widgets.file_preview import (
    FileDetails,
    FilePreview,
    highlight_text,
)
from oc_tui.widgets.file_transfers import TransferPanel
from oc_tui.widgets.formatting import describe_error, format_bytes, host_markup, host_text
from oc_tui.widgets.text_entry import Input

PREVIEW_DELAY = 0.25
"""Seconds the cursor must rest on an entry before its preview is fetched."""
PROGRESS_INTERVAL = 0.1
"""Progress messages per transfer are at most this often (plus the last one)."""
COUNT_LIMIT = 10_000
"""A recursive delete's confirmation counts at most this many entries."""
NARROW = 100
"""Below this width the preview goes under the listing."""
UNREACHABLE = (errors.HostOfflineError, errors.ConnectionFailed, errors.AgentUnreachableError)

HELP_KEYS: list[tuple[str, str]] = [
    ("enter", "Open the directory / preview the file"),
    ("..", "The first row: enter on it goes to the parent"),
    ("/", "Jump to a name: type its start (enter opens it, esc stops)"),
    ("↑ ↓  pgup pgdn  home end", "Move"),
]
"""Keys of the Files tab that are not bindings of :class:`FilesTab` (shown in ``?``)."""


class PathBar(Input):
    """The path bar: shows where the listing is; ``g`` edits it, enter goes there, esc goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "leave", "Back to the list")]

    class Left(Message):
        pass

    def action_leave(self) -> None:
        self.post_message(self.Left())


class FilesTab(HostTab):
    """Browse one host's file system and move files to and from it."""

    TAB_ID = "files"
    TITLE = "Files"
    KEY = "f"
    HELP_ROWS = HELP_KEYS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c,ctrl+k", "cancel_transfer", "Cancel", tooltip="Cancel the running transfer"),
        Binding("backspace", "parent", "Parent", tooltip="Parent directory"),
        Binding("D", "download", "Download", tooltip="Download the file to a local path"),
        Binding("U", "upload", "Upload", tooltip="Upload a local file here"),
        Binding("m", "mkdir", "Mkdir", tooltip="Make a directory here"),
        Binding("delete,x", "delete", "Delete", tooltip="Delete (asks first; a directory with all in it)"),
        Binding("S", "sort", "Sort", tooltip="Sort by name / size / time"),
        Binding("R", "reverse", "Reverse", show=False, tooltip="Reverse the sort order"),
        # priority: it runs as the key is dispatched, so the keys typed right after it (a burst, a paste)
        # are routed to the path bar it focuses, not to the listing (check_action: not while typing)
        Binding("g", "go_to", "Path", tooltip="Go to a path (type it; esc goes back)", priority=True),
        Binding("tilde", "home", "Home", show=False, tooltip="The home directory"),
        Binding("r,f5", "refresh", "Refresh", show=False, tooltip="List the directory again"),
        Binding("slash", "jump", "Jump", tooltip="Jump to a name: type its start", priority=True),
    ]

    # --- messages: what workers (or a test) deliver ------------------------------------------------

    @dataclass
    class Listed(Message):
        listing: FsList
        select: str | None = None
        """The entry to put the cursor on (the directory we came up from)."""

    @dataclass
    class ListFailed(Message):
        path: str
        error: errors.OpenComputersError

    @dataclass
    class Previewed(Preview, Message):
        """A preview to show (the worker highlights ``text``; a test or screenshot may give only it)."""

    @dataclass
    class TransferProgress(Message):
        transfer_id: int
        done: int
        total: int | None
        at: float

    @dataclass
    class TransferEnded(Message):
        transfer_id: int
        state: str
        """``done``, ``failed`` or ``cancelled``."""
        detail: str = ""

    @dataclass
    class DeleteCounted(Message):
        entry: FsEntry
        count: int
        complete: bool

    @dataclass
    class Deleted(Message):
        path: str

    # --- setup -------------------------------------------------------------------------------------

    def __init__(self, context: HostTabContext, *, id: str | None = None) -> None:
        super().__init__(context, id=id)
        self.clock: Callable[[], datetime] = utcnow
        """The time "modified" is shown relative to (fixed in screenshots)."""
        self.path: str | None = None
        """The directory listed (absolute, as the host resolved it); None before the first listing."""
        self._loading = False
        self._preview_path: str | None = None
        self._queue = TransferQueue()
        self._active_worker: Worker[None] | None = None
        self._truncated = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="files-bar"):
            yield PathBar(placeholder="path on the host", id="files-path", compact=True)
            yield Label("", id="files-info")
        with Horizontal(id="files-body"):
            with Vertical(id="files-left"):
                yield FileList(lambda: self.clock(), id="file-list")
                yield Static("", id="files-message")
            with Vertical(id="files-side"):
                yield FileDetails(id="file-details")
                yield FilePreview(id="file-preview")
        yield TransferPanel(id="file-transfers")

    def on_mount(self) -> None:
        self.file_list.border_title = "files"
        self.query_one(FileDetails).border_title = "details"
        self.preview.border_title = "preview"
        self.path_bar.can_focus = False  # tab skips it; ``g`` opens it
        self.query_one("#files-message").can_focus = True
        self._update_info()

    def on_resize(self) -> None:
        self.set_class(self.size.width < NARROW, "-narrow")

    def activate(self) -> bool:
        """The tab was shown: the listing (or the message in its place) takes the focus; the first
        time, the directory this host's Files tab was left in this run (else the home) is listed."""
        self.take_focus(self.query_one("#files-message") if self.has_class("-message") else self.file_list)
        if self.live and self.path is None and not self._loading:
            self.load(self.tab_context.places.get(self.TAB_ID, ""))
        return True

    @property
    def file_list(self) -> FileList:
        return self.query_one(FileList)

    @property
    def preview(self) -> FilePreview:
        return self.query_one(FilePreview)

    @property
    def path_bar(self) -> PathBar:
        return self.query_one(PathBar)

    @property
    def transfers(self) -> list[Transfer]:
        """Every transfer of this tab, oldest first (finished ones too)."""
        return self._queue.all

    # --- workers: the only code that talks to the network or the disk -------------------------------

    @work(exclusive=True, group="files-list", exit_on_error=False)
    async def load(self, path: str, select: str | None = None) -> None:
        client = self.client
        if client is None:
            self.post_message(self.ListFailed(path, errors.ConnectionFailed("not connected yet")))
            return
        self._loading = True
        try:
            listing = await client.list_dir(self.host_id, path)
        except errors.OpenComputersError as exc:
            self.post_message(self.ListFailed(path, exc))
        else:
            self.post_message(self.Listed(listing, select))
        finally:
            self._loading = False

    @work(exclusive=True, group="files-preview", exit_on_error=False)
    async def fetch_preview(self, path: str, delay: float, is_dir: bool = False) -> None:
        """The stat of ``path`` and, for a file, a preview of its first bytes, after ``delay`` seconds
        (the cursor rests there). ``is_dir``: the listing says it is a directory."""
        await asyncio.sleep(delay)
        client = self.client
        if client is None:
            return
        preview = await load_preview(client, self.host_id, path, is_dir)
        self.post_message(self.Previewed(**vars(preview)))

    @work(group="files-transfer", exit_on_error=False)
    async def _run_transfer(self, transfer: Transfer) -> None:
        client = self.client
        if client is None:
            self.post_message(self.TransferEnded(transfer.id, "failed", "not connected yet"))
            return
        last = 0.0

        def progress(done: int, total: int | None) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_INTERVAL or done == total:
                last = now
                self.post_message(self.TransferProgress(transfer.id, done, total, now))

        try:
            detail = await run_transfer(client, self.host_id, transfer, progress)
        except asyncio.CancelledError:
            self.post_message(self.TransferEnded(transfer.id, "cancelled"))
            raise
        except (errors.OpenComputersError, OSError, ValueError) as exc:
            self.post_message(self.TransferEnded(transfer.id, "failed", describe_error(exc)))
        else:
            self.post_message(self.TransferEnded(transfer.id, "done", detail))

    @work(exclusive=True, group="files-delete", exit_on_error=False)
    async def _count_for_delete(self, entry: FsEntry) -> None:
        """How many entries a recursive delete of ``entry`` removes (at most :data:`COUNT_LIMIT`)."""
        client = self.client
        if client is None:
            return
        count, pending = 0, [entry.path]
        try:
            while pending and count < COUNT_LIMIT:
                listing = await client.list_dir(self.host_id, pending.pop())
                count += len(listing.entries)
                pending.extend(e.path for e in listing.entries if e.is_dir and not e.is_symlink)
        except errors.OpenComputersError as exc:
            self.post_message(self.RequestFailed(f"count the entries of {entry.path}", exc))
            return
        self.post_message(self.DeleteCounted(entry, count, complete=not pending))

    def _delete(self, entry: FsEntry, recursive: bool) -> None:
        self.request(
            f"delete {entry.path}",
            lambda client: client.delete_path(self.host_id, entry.path, recursive=recursive),
            lambda _: self.post_message(self.Deleted(entry.path)),
            group="files-delete-run",
        )

    @work(group="files-dialog", exit_on_error=False)
    async def _ask_download(self, entry: FsEntry) -> None:
        default = await asyncio.to_thread(default_download_path, entry.name)

        def queued(request: DownloadRequest | None) -> None:
            if request is not None:
                self.add_transfer("download", entry.path, str(request.dest), resume=request.resume)

        self.app.push_screen(DownloadDialog(entry.path, entry.size, default), queued)

    # --- message handlers: update widgets, never await the network ---------------------------------

    def on_files_tab_listed(self, message: Listed) -> None:
        listing = message.listing
        self.path = listing.path
        self.tab_context.places[self.TAB_ID] = listing.path
        self._truncated = bool(getattr(listing, "truncated", False))  # the host stopped listing early
        self._show_message("")
        self.file_list.show(listing.entries, parent_row=listing.path not in ("/", ""), select=message.select)
        self.path_bar.value = host_text(listing.path)
        self.file_list.border_title = f"files · {host_markup(listing.path)}"
        self._update_info()
        self._entry_highlighted()

    def on_files_tab_list_failed(self, message: ListFailed) -> None:
        text = describe_error(message.error)
        if self.path is None or isinstance(message.error, UNREACHABLE):
            if isinstance(message.error, errors.HostOfflineError):
                text = "This host is offline: its files are out of reach until its agent connects again."
            self._show_message(f"{host_markup(text)}\n\nr retries")
        self.app.notify(
            f"list {host_markup(message.path or '~')}: {host_markup(describe_error(message.error))}",
            title="Files",
            severity="error",
        )

    def on_files_tab_previewed(self, message: Previewed) -> None:
        if message.path != self._preview_path:
            return  # the cursor has moved on
        if message.stat is not None:
            self.query_one(FileDetails).show(message.stat)
        preview = self.preview
        preview.border_subtitle = host_markup(message.note) if message.kind == "text" else ""
        if message.kind == "text":
            content = message.content
            if content is None:
                content = highlight_text(posixpath.basename(message.path), message.text or "")
            preview.show_text(content)
        elif message.kind == "image" and message.image is not None:
            preview.show_image(message.image)
        elif message.kind == "binary":
            size = message.size if message.size is not None else (message.stat.size if message.stat else 0)
            preview.show_note(f"binary, {size:,} bytes")
        elif message.kind == "empty":
            preview.show_note("empty file")
        elif message.kind == "directory":
            preview.show_note("directory: enter opens it")
        else:
            preview.show_note(message.note)

    def on_files_tab_transfer_progress(self, message: TransferProgress) -> None:
        transfer = self._queue.get(message.transfer_id)
        if transfer is None:
            return
        transfer.meter.update(message.done, message.total, now=message.at)
        self._show_transfer(bindings=False)

    def on_files_tab_transfer_ended(self, message: TransferEnded) -> None:
        was_active = self._queue.active == message.transfer_id
        transfer = self._queue.end(message.transfer_id, message.state)
        if transfer is None:
            return
        if was_active:
            self._active_worker = None
        verb = "Download" if transfer.kind == "download" else "Upload"
        if message.state == "done":
            self.app.notify(host_markup(message.detail), title=f"{verb} complete")
            if transfer.kind == "upload" and posixpath.dirname(transfer.remote) == self.path:
                self.refresh_listing()
        elif message.state == "cancelled":
            self.app.notify(f"{host_markup(transfer.name)}: cancelled", title=verb, severity="warning")
        else:
            hint = "; downloading it to the same place again resumes" if transfer.kind == "download" else ""
            self.app.notify(
                f"{host_markup(transfer.name)}: {host_markup(message.detail)}{hint}",
                title=f"{verb} failed",
                severity="error",
            )
        self._start_next()

    def on_files_tab_delete_counted(self, message: DeleteCounted) -> None:
        entry = message.entry
        count = f"{message.count:,}" if message.complete else f"more than {message.count:,}"
        text = (
            f"{host_markup(entry.path)} and everything in it ({count} entries) will be deleted on the host. "
            "This cannot be undone."
            if message.count
            else f"The empty directory {host_markup(entry.path)} will be deleted on the host."
        )
        self._confirm_delete(
            entry, f"Delete directory {host_markup(entry.name)}?", text, recursive=bool(message.count)
        )

    def on_files_tab_deleted(self, message: Deleted) -> None:
        self.app.notify(f"deleted {host_markup(message.path)}", title="Files")
        keys = self.file_list.row_keys
        name = posixpath.basename(message.path)
        index = keys.index(name) if name in keys else None
        # the cursor goes to the entry that took the deleted one's place
        around = [] if index is None else keys[index + 1 : index + 2] or keys[index - 1 : index]
        neighbour = around[0] if around else None
        self.refresh_listing(select=neighbour)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A transfer's worker that died of a bug: the transfer failed (:class:`HostTab`, whose handler
        Textual calls too, reports the bug)."""
        if event.state == WorkerState.ERROR:
            if event.worker is self._active_worker and self._queue.active is not None:
                error = host_text(event.worker.error)
                self.post_message(self.TransferEnded(self._queue.active, "failed", error))

    @on(FileList.RowHighlighted, "#file-list")
    def _entry_highlighted(self) -> None:
        entry = self.file_list.selected
        self.query_one(FileDetails).show(entry)
        if entry is None:
            self._preview_path = None
            self.preview.border_subtitle = ""
            self.preview.clear("" if self.file_list.cursor_key is None else "the parent directory")
            return
        if entry.path == self._preview_path:
            return
        self._preview_path = entry.path
        self.preview.border_subtitle = ""
        self.preview.clear("…")
        if self.live:
            self.fetch_preview(entry.path, PREVIEW_DELAY, entry.is_dir)

    @on(FileList.RowSelected, "#file-list")
    def _entry_selected(self, event: FileList.RowSelected) -> None:
        if event.row_key == PARENT:
            self.action_parent()
            return
        entry = self.file_list.entries.get(event.row_key)
        if entry is None:
            return
        if entry.is_dir:
            self.load(entry.path)
        elif self.live:
            self._preview_path = entry.path
            self.fetch_preview(entry.path, 0)

    @on(FileList.JumpChanged)
    def _jump_changed(self) -> None:
        self._update_info()

    @on(Input.Submitted, "#files-path")
    def _path_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if self.path is not None and value == host_text(self.path):
            value = self.path  # the path as listed (shown escaped), not its escaped form
        self._leave_path_bar()
        if value:
            self.load(remote_join(self.path or "~", value))

    @on(PathBar.Left)
    def _path_left(self) -> None:
        self._leave_path_bar()

    # --- actions -----------------------------------------------------------------------------------

    def action_parent(self) -> None:
        if self.path is None or self.path in ("/", ""):
            return
        self.load(
            posixpath.dirname(self.path.rstrip("/")) or "/", select=posixpath.basename(self.path.rstrip("/"))
        )

    def action_home(self) -> None:
        self.load("~")

    def action_go_to(self) -> None:
        """The path bar takes the keyboard at once (not on the next message, as ``focus()`` does): keys
        typed right after ``g`` — a fast typist, a paste — go into it, none to the listing."""
        bar = self.path_bar
        bar.can_focus = True
        self.screen.set_focus(bar)
        bar.select_all()

    def action_sort(self) -> None:
        lst = self.file_list
        lst.resort(SORTS[(SORTS.index(lst.sort_by) + 1) % len(SORTS)])
        self._update_info()

    def action_reverse(self) -> None:
        self.file_list.resort(reverse=not self.file_list.reverse)
        self._update_info()

    def action_refresh(self) -> None:
        self.refresh_listing()

    def action_jump(self) -> None:
        self.take_focus(self.file_list)
        self.file_list.start_jump()

    def action_download(self) -> None:
        entry = self._selected_entry("download")
        if entry is None:
            return
        if entry.is_dir:
            self.app.notify(
                "only files can be downloaded (not directories)", title="Files", severity="warning"
            )
            return
        self._ask_download(entry)

    def action_upload(self) -> None:
        if self.path is None:
            self.app.notify("nothing listed yet", title="Files", severity="warning")
            return
        existing = {entry.path for entry in self.file_list.entries.values()}

        def queued(request: UploadRequest | None) -> None:
            if request is not None:
                self.add_transfer("upload", request.remote, str(request.source), size=request.size)

        self.app.push_screen(UploadDialog(self.path, existing), queued)

    def action_mkdir(self) -> None:
        if self.path is None:
            self.app.notify("nothing listed yet", title="Files", severity="warning")
            return

        def made(path: str | None) -> None:
            if path is not None:
                self.app.notify(f"created {host_markup(path)}", title="Files")
                self.refresh_listing(select=posixpath.basename(path.rstrip("/")))

        self.app.push_screen(MkdirDialog(self.client, self.host_id, self.path), made)

    def action_delete(self) -> None:
        entry = self._selected_entry("delete")
        if entry is None:
            return
        if entry.is_dir and not entry.is_symlink:
            self.app.notify(f"counting what is in {host_markup(entry.path)}…", title="Files")
            self._count_for_delete(entry)
            return
        kind = (
            "symbolic link (its target stays)" if entry.is_symlink else f"file ({format_bytes(entry.size)})"
        )
        text = f"The {kind} {host_markup(entry.path)} will be deleted on the host. This cannot be undone."
        self._confirm_delete(entry, f"Delete {host_markup(entry.name)}?", text, recursive=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Cancel is offered (and in the footer) only while a transfer runs; ``g`` (a priority key) is
        text while a field or a jump has the keyboard."""
        if action == "cancel_transfer":
            return self._queue.active is not None
        if action in ("go_to", "jump"):  # priority keys (see BINDINGS): text while typing
            focused = self.screen.focused
            if isinstance(focused, Input) or getattr(focused, "takes_text", False):
                return False
        return super().check_action(action, parameters)

    def action_cancel_transfer(self) -> None:
        if self._active_worker is not None:
            self._active_worker.cancel()

    # --- transfers ---------------------------------------------------------------------------------

    def add_transfer(
        self, kind: TransferKind, remote: str, local: str, *, resume: bool = False, size: int | None = None
    ) -> Transfer:
        """Queue a transfer; it starts when those before it are done."""
        transfer = self._queue.add(kind, remote, local, resume=resume, size=size)
        if self._queue.active is not None:
            self.app.notify(f"{host_markup(transfer.name)}: queued", title="Files")
        self._start_next()
        return transfer

    def _start_next(self) -> None:
        transfer = self._queue.start_next()
        if transfer is not None and self.live:
            self._active_worker = self._run_transfer(transfer)
        self._show_transfer()

    def _show_transfer(self, bindings: bool = True) -> None:
        """The strip shows the running transfer; ``bindings``: whether one started or ended (the
        footer's Cancel comes and goes; rebuilding the footer on every progress step costs a lot)."""
        self.query_one(TransferPanel).show(self._queue.running, self._queue.waiting)
        if bindings:
            self.refresh_bindings()

    # --- helpers -----------------------------------------------------------------------------------

    def refresh_listing(self, select: str | None = None) -> None:
        key = self.file_list.cursor_key
        self.load(self.path or "", select=select or (key if key != PARENT else None))

    def _selected_entry(self, action: str) -> FsEntry | None:
        entry = self.file_list.selected
        if entry is None:
            self.app.notify(f"choose a file to {action}", title="Files", severity="warning")
        return entry

    def _confirm_delete(self, entry: FsEntry, title: str, text: str, *, recursive: bool) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self._delete(entry, recursive)

        self.app.push_screen(ConfirmScreen(title, text, "Delete"), answered)

    def _leave_path_bar(self) -> None:
        bar = self.path_bar
        bar.value = host_text(self.path or "")
        bar.can_focus = False
        self.file_list.focus()

    def _show_message(self, text: str) -> None:
        """A message instead of the listing (the host is offline…); it takes the focus from the hidden
        listing so the tab's keys (``r`` retries) keep working."""
        message = self.query_one("#files-message", Static)
        message.update(text)
        had_focus = self.file_list.has_focus or message.has_focus
        self.set_class(bool(text), "-message")
        if had_focus:
            (message if text else self.file_list).focus()

    def _update_info(self) -> None:
        lst = self.file_list
        count = f"{len(lst.entries):,} entries" + (" (the host listed no more)" if self._truncated else "")
        parts: list[Any] = [count, f"sort: {sort_words(lst.sort_by, lst.reverse)}"]
        prefix = lst.jump_prefix or ("/" if lst.jumping else "")
        if prefix:
            parts.insert(0, f"jump: {host_markup(prefix)}")
        self.query_one("#files-info", Label).update(" · ".join(parts))
