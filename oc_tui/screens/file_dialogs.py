"""The Files tab's dialogs: download to a local path, upload from one, make a directory.

They are :class:`~oc_tui.screens.form_dialog.FormDialog` s: what they check on this machine (does the
file exist, is there a partial download to resume) is done in a worker, a problem is shown inline,
and the dialog stays open to fix it. Download and upload dismiss with what to transfer (the tab
queues it); the mkdir dialog sends its request itself and dismisses with the new directory's path.
"""

from __future__ import annotations

import asyncio
import posixpath
from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label

from oc_tui.api import OpenComputersClient
from oc_tui.api.transfers import existing_size, part_path
from oc_tui.screens.form_dialog import FormDialog
from oc_tui.widgets.formatting import format_bytes, host_markup, host_text
from oc_tui.widgets.text_entry import Input


def remote_join(directory: str, name: str) -> str:
    """``name`` on the host: as given when absolute or ``~``-based, else inside ``directory``."""
    if name.startswith(("/", "~")):
        return name
    return posixpath.join(directory, name)


def default_download_path(name: str) -> str:
    """``~/Downloads/<name>`` when there is a Downloads folder, else ``<cwd>/<name>`` (disk: call it
    from a worker). ``name`` is the host's: control characters in it are escaped
    (:func:`~oc_tui.widgets.formatting.host_text`), so the local file's name is what was shown."""
    name = host_text(name)
    downloads = Path.home() / "Downloads"
    if downloads.is_dir():
        return str(Path("~") / "Downloads" / name)
    return str(Path.cwd() / name)


@dataclass
class DownloadRequest:
    dest: Path
    resume: bool


@dataclass
class UploadRequest:
    source: Path
    remote: str
    size: int


def check_download(value: str, name: str) -> tuple[DownloadRequest, str]:
    """Where a download of ``name`` typed as ``value`` goes, and a warning to confirm ("" if none)."""
    dest = Path(value).expanduser()
    if dest.is_dir():
        dest = dest / name
    if not dest.parent.is_dir():
        raise ValueError(f"there is no folder {dest.parent}")
    partial = existing_size(part_path(dest))
    if partial:
        return DownloadRequest(dest, True), ""
    if dest.exists():
        if dest.is_dir():
            raise ValueError(f"{dest} is a folder")
        return DownloadRequest(dest, False), f"{dest} exists: enter again to replace it"
    return DownloadRequest(dest, False), ""


def check_upload(local: str, remote: str) -> UploadRequest:
    source = Path(local).expanduser()
    if not source.exists():
        raise ValueError(f"there is no file {source}")
    if not source.is_file():
        raise ValueError(f"{source} is not a file")
    if remote.endswith("/"):
        remote += source.name
    return UploadRequest(source, remote, source.stat().st_size)


class DownloadDialog(FormDialog[DownloadRequest]):
    """Asks where on this machine a remote file goes."""

    FAILURE_TITLE = "Download"

    def __init__(self, remote: str, size: int | None, default: str) -> None:
        super().__init__()
        self._remote = remote
        self._file_size = size
        self._default = default
        self._warned: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Download", classes="dialog-title")
            size = f" ({format_bytes(self._file_size)})" if self._file_size is not None else ""
            yield Label(f"{host_markup(self._remote)}{size}", classes="dialog-text")
            yield Label("Save to (a path on this machine)", classes="field-label")
            yield Input(self._default, id="local", compact=True)
            yield from self.compose_footer("Download")

    def fields(self) -> str | None:
        value = self.query_one("#local", Input).value.strip()
        if not value:
            self.show_error("a path is required")
            return None
        return value

    async def send(self, fields: str) -> tuple[DownloadRequest, str]:
        name = posixpath.basename(self._remote.rstrip("/")) or "download"
        return await asyncio.to_thread(check_download, fields, host_text(name))

    def sent(self, result: tuple[DownloadRequest, str]) -> None:
        request, warning = result
        value = str(request.dest)
        if warning and self._warned != value:
            self._warned = value
            self.show_error(warning)
            return
        self.dismiss(request)


class UploadDialog(FormDialog[UploadRequest]):
    """Asks for a local file and where on the host it goes (a path ending in ``/`` keeps its name)."""

    FAILURE_TITLE = "Upload"

    def __init__(self, directory: str, existing: set[str]) -> None:
        super().__init__()
        self._directory = directory
        self._existing = existing
        self._warned: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Upload", classes="dialog-title")
            yield Label("Local file", classes="field-label")
            yield Input(placeholder="~/path/to/file", id="local", compact=True)
            yield Label("To (on the host; ending in / keeps the file's name)", classes="field-label -spaced")
            yield Input(self._directory.rstrip("/") + "/", id="remote", compact=True)
            yield from self.compose_footer("Upload")

    def fields(self) -> tuple[str, str] | None:
        local = self.query_one("#local", Input).value.strip()
        remote = self.query_one("#remote", Input).value.strip()
        if not local:
            self.show_error("which file? a local path is required")
            self.query_one("#local", Input).focus()
            return None
        if not remote:
            self.show_error("a remote path is required")
            return None
        joined = remote_join(self._directory, remote)
        if remote.endswith("/") and not joined.endswith("/"):
            joined += "/"  # a directory: the file keeps its name (checked in check_upload)
        return local, joined

    async def send(self, fields: tuple[str, str]) -> UploadRequest:
        return await asyncio.to_thread(check_upload, *fields)

    def sent(self, result: UploadRequest) -> None:
        remote = result.remote
        if remote in self._existing and self._warned != remote:
            self._warned = remote
            self.show_error(f"{remote} exists: enter again to replace it")
            return
        self.dismiss(result)


class MkdirDialog(FormDialog[str]):
    """Makes a directory (a name inside the current one, or a path; missing parents are made too) and
    dismisses with its path."""

    FAILURE_TITLE = "New directory"
    NEEDS_CLIENT = True

    def __init__(self, client: OpenComputersClient | None, host_id: str, directory: str) -> None:
        super().__init__(client)
        self._host_id = host_id
        self._directory = directory

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("New directory", classes="dialog-title")
            yield Label(f"in {host_markup(self._directory)} (or an absolute path)", classes="field-label")
            yield Input(placeholder="name", id="name", compact=True)
            yield from self.compose_footer("Create")

    def fields(self) -> str | None:
        name = self.query_one("#name", Input).value.strip()
        if not name:
            self.show_error("a name is required")
            return None
        return remote_join(self._directory, name)

    async def send(self, fields: str) -> str:
        assert self.client is not None  # NEEDS_CLIENT
        stat = await self.client.mkdir(self._host_id, fields)
        return stat.path if stat is not None else fields
