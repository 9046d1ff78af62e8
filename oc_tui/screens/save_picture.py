"""Where to save something on this machine: a path asked for (prefilled), then the thing written there.

:class:`SaveFileDialog` is the one shape (the Desktop's picture and a job's full output use it): a path
field with a proposed path, a directory as the answer keeping the proposed file name, a missing parent
directory or a failed write said in the dialog, which stays open.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label

from oc_tui.screens.form_dialog import FormDialog
from oc_tui.widgets.formatting import host_markup
from oc_tui.widgets.text_entry import Input


def default_save_path(folder: str, name: str) -> Path:
    """``~/<folder>/<name>`` (``folder``: ``Pictures``, ``Downloads`` …), or ``<name>`` in the current
    directory when there is no such folder."""
    where = Path.home() / folder
    return (where if where.is_dir() else Path.cwd()) / name


class SaveFileDialog(FormDialog[Path]):
    """Asks for a local path (prefilled with ``default``) and writes there with :meth:`write`.

    Dismisses with the written path. A subclass sets ``TITLE`` and says what is saved in
    :meth:`describe`.

    Args:
        default: the proposed path.
    """

    TITLE = "Save"

    def __init__(self, default: Path, client: Any = None) -> None:
        super().__init__(client)
        self._default = default
        self._replace: Path | None = None  # an existing file the operator asked for twice: replaced

    def describe(self) -> str:
        """The line above the path field: what is saved, and that the path is on this machine."""
        raise NotImplementedError

    async def write(self, path: Path) -> None:
        """Write to ``path`` (its directory exists); raise OSError, ValueError or an API error to say
        why it failed."""
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.TITLE, classes="dialog-title")
            yield Label(self.describe(), classes="field-label")
            yield Input(str(self._default), id="path", compact=True)
            yield from self.compose_footer("Save")

    def fields(self) -> Path | None:
        text = self.query_one("#path", Input).value.strip()
        if not text:
            self.show_error("where to? a path is required")
            return None
        path = Path(text).expanduser()
        path = path / self._default.name if path.is_dir() else path
        if path.exists() and path != self._replace:
            self._replace = path
            self.show_error(f"{host_markup(str(path))} exists: enter again to replace it")
            return None
        return path

    async def send(self, fields: Path) -> Path:
        if not fields.parent.is_dir():
            raise ValueError(f"no such directory: {host_markup(str(fields.parent))}")
        await self.write(fields)
        return fields


class SavePictureDialog(SaveFileDialog):
    """Saves ``image`` (a PIL image) as PNG where the operator says; ``default``: the proposed path."""

    TITLE = "Save screenshot"
    FAILURE_TITLE = "Save screenshot"

    def __init__(self, image: Any, default: Path) -> None:
        super().__init__(default)
        self._image = image

    def describe(self) -> str:
        size = f"{self._image.width}×{self._image.height}"
        return f"The screen ({size}) as PNG, to (on this machine)"

    async def write(self, path: Path) -> None:
        await asyncio.to_thread(self._image.save, path, "PNG")
