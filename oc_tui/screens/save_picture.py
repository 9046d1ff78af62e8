"""Where to save a picture of a host's screen: a path asked for, the picture written there as PNG."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label

from oc_tui.screens.form_dialog import FormDialog
from oc_tui.widgets.formatting import host_markup


class SavePictureDialog(FormDialog[Path]):
    """Asks for a local path (prefilled with ``default``) and saves ``image`` there as PNG.

    Dismisses with the written path; a directory as the answer keeps the default file name. A path that
    cannot be written is said in the dialog, which stays open.

    Args:
        image: a PIL image.
        default: the proposed path.
    """

    FAILURE_TITLE = "Save screenshot"

    def __init__(self, image: Any, default: Path) -> None:
        super().__init__(None)
        self._image = image
        self._default = default

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Save screenshot", classes="dialog-title")
            size = f"{self._image.width}×{self._image.height}"
            yield Label(f"The screen ({size}) as PNG, to (on this machine)", classes="field-label")
            yield Input(str(self._default), id="path", compact=True)
            yield from self.compose_footer("Save")

    def fields(self) -> Path | None:
        text = self.query_one("#path", Input).value.strip()
        if not text:
            self.show_error("where to? a path is required")
            return None
        path = Path(text).expanduser()
        return path / self._default.name if path.is_dir() else path

    async def send(self, fields: Path) -> Path:
        if not fields.parent.is_dir():
            raise ValueError(f"no such directory: {host_markup(str(fields.parent))}")
        await asyncio.to_thread(self._image.save, fields, "PNG")
        return fields
