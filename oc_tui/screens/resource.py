"""The generic screen of one top-level resource view (``:tunnels``, ``:clusters`` …): a title line, a
:class:`~oc_tui.widgets.resource_table.ResourceTable` and the footer; ``r`` reloads, ``esc`` goes back.

What it shows comes from its :class:`~oc_tui.screens.views.ResourceView`: the columns, the status kind and
one async call that lists the resources. The call runs in a worker; an API error is a notification.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from oc_tui.api import errors
from oc_tui.api.models import utcnow
from oc_tui.readonly import ReadOnlyGuard
from oc_tui.screens.host_tab import client_of, run_client_call
from oc_tui.widgets.formatting import describe_error, host_markup
from oc_tui.widgets.keys_footer import KeysFooter
from oc_tui.widgets.resource_table import Column, ResourceTable

if TYPE_CHECKING:
    from oc_tui.api import OpenComputersClient

Lister = Callable[["OpenComputersClient"], Awaitable[Sequence[Any]]]
"""Lists a view's resources (all pages) with the client."""
Change = Callable[["OpenComputersClient"], Awaitable[Any]]
"""A change to a resource, made with the client (start, delete …)."""


class ResourceScreen(ReadOnlyGuard, Screen[None]):
    """One resource view: ``title``, the table of ``kind`` resources in ``columns``, listed by ``load``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.back", "Back"),
        Binding("r", "reload", "Reload"),
    ]

    @dataclass
    class Loaded(Message):
        """The resources, fresh from the API (or a test)."""

        items: Sequence[Any]

    def __init__(
        self,
        title: str,
        kind: str,
        columns: Sequence[Column],
        load: Lister,
        *,
        clock: Callable[[], datetime] = utcnow,
        live: bool = True,
    ) -> None:
        super().__init__()
        self._title = title
        self._kind = kind
        self._columns = columns
        self._load = load
        self._clock = clock
        self._live = live

    def compose(self) -> ComposeResult:
        yield Static(self._title, id="resource-info")
        yield ResourceTable(self._kind, self._columns, self._clock, id="resources")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.table.border_title = self._title
        self.table.focus()
        if self._live:
            self.action_reload()

    @property
    def table(self) -> ResourceTable:
        return self.query_one(ResourceTable)

    def action_reload(self) -> None:
        """List the resources again (in a worker)."""
        self.table.loading = True
        self.run_worker(self._fetch(), name=f"list {self._kind}", group="load", exclusive=True)

    async def _fetch(self) -> None:
        client = client_of(self)
        try:
            if client is None:
                raise errors.ConnectionFailed("not connected yet")
            items = await self._load(client)
        except errors.OpenComputersError as exc:
            self.table.loading = False
            self.notify(
                f"list {self._kind}: {host_markup(describe_error(exc))}",
                title="Request failed",
                severity="error",
            )
        else:
            self.post_message(self.Loaded(items))

    def run_change(self, action: str, call: Callable[[OpenComputersClient], Awaitable[Any]]) -> None:
        """Run a change ``call(client)`` in a worker, then list again (an API error is a notification
        that says ``action``)."""
        run_client_call(self, action, call, self.action_reload)

    def on_resource_screen_loaded(self, message: Loaded) -> None:
        self.table.loading = False
        self.table.show(message.items)
        count = len(message.items)
        self.query_one("#resource-info", Static).update(f"{self._title}  ·  {count} {self._kind}")
