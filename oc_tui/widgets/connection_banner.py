"""A one-line banner that says when the control plane is not (yet) there.

Hidden while everything is fine; the fleet screen sets :attr:`message` and :attr:`kind`.
"""

from __future__ import annotations

from typing import Literal

from textual.reactive import reactive
from textual.widgets import Static

BannerKind = Literal["ok", "info", "error"]


class ConnectionBanner(Static):
    """Shows ``message`` styled by ``kind``; ``kind == "ok"`` hides it."""

    kind: reactive[BannerKind] = reactive("ok")
    message: reactive[str] = reactive("")

    def watch_kind(self, old: BannerKind, new: BannerKind) -> None:
        self.remove_class(f"-{old}")
        self.add_class(f"-{new}")

    def watch_message(self, message: str) -> None:
        self.update(message)

    def show_info(self, message: str) -> None:
        self.message, self.kind = message, "info"

    def show_error(self, message: str) -> None:
        self.message, self.kind = message, "error"

    def clear(self) -> None:
        self.message, self.kind = "", "ok"
