"""The live event feed: one line per host event, newest at the bottom.

The screen resolves host names (events carry only the id) and hands over finished lines, so this
widget only knows how to print them.
"""

from __future__ import annotations

from datetime import UTC

from rich.style import Style
from rich.text import Text
from textual.widgets import RichLog

from oc_tui.api.models import HostEvent
from oc_tui.widgets.formatting import host_text, status_label
from oc_tui.widgets.styles import text_style


class EventFeed(RichLog):
    """A bounded log of host events, styled per status by component classes."""

    COMPONENT_CLASSES = {
        "event-feed--time",
        "event-feed--online",
        "event-feed--offline",
        "event-feed--pending",
        "event-feed--revoked",
        "event-feed--error",
        "event-feed--note",
    }

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=500, min_width=20, wrap=True, markup=False, auto_scroll=True)

    def add_event(self, event: HostEvent, host_name: str) -> None:
        """Write ``12:00:01  web-1  ● online (was offline)`` (or the event type when not a status)."""
        line = Text.assemble(
            (event.timestamp.astimezone(UTC).strftime("%H:%M:%S"), self._style("time")),
            "  ",
            host_text(host_name),
            "  ",
        )
        if event.type == "status_change":
            status = str(event.data.get("status", "?"))
            line.append(status_label(status), style=self._style(status))
            previous = event.data.get("previous")
            if previous:
                line.append(f" (was {host_text(previous)})", style=self._style("time"))
        elif event.type == "identity_refused":  # a leaked host key used from another machine
            where = host_text(str(event.data.get("remote_addr") or "an unknown address"))
            line.append(
                f"refused another machine using this host key (from {where})", style=self._style("error")
            )
        else:
            line.append(host_text(event.type.replace("_", " ")), style=self._style("note"))
        self.write(line)

    def add_note(self, text: str) -> None:
        """A line from the app itself (connection lost / restored; a reason in it may be the network's:
        shown escaped)."""
        self.write(Text(host_text(text), style=self._style("note")))

    def _style(self, name: str) -> Style:
        return text_style(self, f"event-feed--{name}")
