"""Host → Desktop tab (placeholder until it is built)."""

from __future__ import annotations

from textual.widgets import Static


class DesktopTab(Static):
    def __init__(self, host_id: str, *, live: bool = True, id: str | None = None) -> None:
        super().__init__("Desktop: not yet available", id=id, classes="coming")
        self.host_id = host_id
        self.live = live

    def activate(self) -> None:
        """The tab was shown: take focus where typing should go."""
        self.focus()
