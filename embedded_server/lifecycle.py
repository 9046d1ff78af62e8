"""The server's lifecycle steps that sections register (start-up, stop signal, shutdown)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Lifecycle:
    """Steps run in the order they were added.

    - ``on_start``: when the server starts serving (e.g. hosts left online by a previous run go offline).
    - ``on_stop``: when it is told to stop, before uvicorn waits for open responses: end live streams,
      so the stop is not held up by them (clients resume later).
    - ``on_close``: after the last request, before the database closes.
    """

    on_start: list[Callable[[], None]] = field(default_factory=list)
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    on_close: list[Callable[[], None]] = field(default_factory=list)

    def start(self) -> None:
        """Run the start-up steps."""
        for step in self.on_start:
            step()

    def stop(self) -> None:
        """Run the stop-signal steps."""
        for step in self.on_stop:
            step()

    def close(self) -> None:
        """Run the shutdown steps."""
        for step in self.on_close:
            step()
