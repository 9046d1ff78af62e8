"""Editing a host: its labels as ``k=v, k2=v2`` and its name, each → ``PATCH /hosts/{id}``.

The whole map is replaced (as the API's PATCH does), so removing a pair here removes the label.
Dismisses with the updated ``Host``.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label

from oc_tui.api import OpenComputersClient
from oc_tui.api.models import Host
from oc_tui.screens.form_dialog import FormDialog
from oc_tui.widgets.formatting import host_markup
from oc_tui.widgets.labels import format_labels, parse_labels


class HostEditDialog(FormDialog[Host]):
    """One change to a host (``PATCH /hosts/{id}``): a dialog says which in :meth:`change`;
    dismisses with the updated ``Host``."""

    NEEDS_CLIENT = True

    def __init__(self, client: OpenComputersClient | None, host: Host) -> None:
        super().__init__(client)
        self._host = host

    def change(self, fields: Any) -> dict[str, Any]:
        """The keyword arguments of :meth:`~oc_tui.api.OpenComputersClient.update_host` for ``fields``."""
        raise NotImplementedError

    async def send(self, fields: Any) -> Host:
        assert self.client is not None  # NEEDS_CLIENT
        return await self.client.update_host(self._host.id, **self.change(fields))


class EditLabelsScreen(HostEditDialog):
    """Edits one host's labels."""

    FAILURE_TITLE = "Labels not saved"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Labels of {host_markup(self._host.name)}", classes="dialog-title")
            yield Label("key=value pairs, separated by commas", classes="field-label")
            yield Input(
                format_labels(self._host.labels), placeholder="env=prod, team=web", id="labels", compact=True
            )
            yield from self.compose_footer("Save")

    def fields(self) -> dict[str, str] | None:
        try:
            return parse_labels(self.query_one("#labels", Input).value)
        except ValueError as exc:
            self.show_error(str(exc))
            return None

    def change(self, fields: dict[str, str]) -> dict[str, Any]:
        return {"labels": fields}


class RenameHostScreen(HostEditDialog):
    """Renames one host."""

    FAILURE_TITLE = "Not renamed"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Rename {host_markup(self._host.name)}", classes="dialog-title")
            yield Label("New name (1–64 characters; its agent keeps running)", classes="field-label")
            yield Input(self._host.name, id="name", compact=True)
            yield from self.compose_footer("Rename")

    def on_mount(self) -> None:
        self.query_one("#name", Input).select_all()

    def fields(self) -> str | None:
        return self.required("#name")

    def change(self, fields: str) -> dict[str, Any]:
        return {"name": fields}
