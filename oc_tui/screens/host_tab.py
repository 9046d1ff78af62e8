"""The base of a host's tabs (as frogmouth's navigation panes): who it is, how it asks the API.

A tab declares its key, title and help rows as class attributes; :data:`oc_tui.screens.host.HOST_TABS`
lists the tabs once, and that list builds the host screen, its bindings and the ``?`` help. The
worker skeleton every tab needs (get the client, call it, catch the API's errors, show them) is
:meth:`HostTab.request`; a tab writes only the call and what to do with its result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, TypeVar, cast

from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget
from textual.worker import Worker, WorkerState

from oc_tui.api import errors
from oc_tui.api.models import utcnow
from oc_tui.readonly import ReadOnlyGuard
from oc_tui.widgets.formatting import describe_error, host_markup
from oc_tui.widgets.resource_table import ResourceTable

if TYPE_CHECKING:
    from oc_tui.api import OpenComputersClient

ResultType = TypeVar("ResultType")
HelpRows = Sequence[tuple[str, str]]


@dataclass
class HostTabContext:
    """What every tab of one host is built from.

    ``host_id``: the host; ``history``: its command-line history (kept by the app for this run);
    ``clock``: the time relative times are shown against (fixed in tests and screenshots);
    ``live``: False in tests and screenshots, where tabs do no network work of their own;
    ``places``: where each tab was on this host (the Files tab's directory), kept by the app for this
    run, so a host opened again shows the tabs where they were left.
    """

    host_id: str
    history: list[str] = field(default_factory=list)
    clock: Callable[[], datetime] = utcnow
    live: bool = True
    places: dict[str, str] = field(default_factory=dict)


def client_of(node: object) -> OpenComputersClient | None:
    """The app's client as seen from a widget or screen (``node.app.client``); None before the app has
    one (the local control plane is still starting) or outside an app."""
    return cast("OpenComputersClient | None", getattr(getattr(node, "app", None), "client", None))


def run_client_call(
    node: Widget,
    action: str,
    call: Callable[[OpenComputersClient], Awaitable[object]],
    then: Callable[[], object] | None = None,
) -> None:
    """Run ``call(client)`` in a worker of ``node`` (a screen or widget), then ``then()``; an API error
    (or no client yet) is an error notification that says ``action``."""

    async def run() -> None:
        client = client_of(node)
        try:
            if client is None:
                raise errors.ConnectionFailed("not connected yet")
            await call(client)
        except errors.OpenComputersError as exc:
            node.notify(
                f"{action}: {host_markup(describe_error(exc))}", title="Request failed", severity="error"
            )
            return
        if then is not None:
            then()

    node.run_worker(run(), name=action, group="change", exit_on_error=False)


class HostTab(ReadOnlyGuard, Vertical):
    """One tab of the host screen; subclasses set the class attributes and compose their content."""

    TAB_ID: ClassVar[str]
    """The pane's id (``jobs``), also the name ``show_tab`` takes."""
    TITLE: ClassVar[str]
    """The tab's label (``Jobs``), also its binding's description."""
    KEY: ClassVar[str]
    """The host screen's key that shows this tab (``j``)."""
    HELP_TITLE: ClassVar[str | None] = None
    """The ``?`` section's title; ``Host · <TITLE> tab`` when None."""
    HELP_ROWS: ClassVar[HelpRows] = ()
    """Rows for ``?`` that are not bindings of the tab: before the rows of the tab's ``BINDINGS``."""
    HELP_ROWS_AFTER: ClassVar[HelpRows] = ()
    """Rows for ``?`` after those of the tab's ``BINDINGS``."""
    IN_HELP: ClassVar[bool] = True
    """Whether ``?`` has a section for this tab."""
    BINDINGS: ClassVar[list[BindingType]] = []

    @dataclass
    class RequestFailed(Message):
        """A request of the tab failed: ``action`` says what it was doing."""

        action: str
        error: BaseException

    def __init__(self, context: HostTabContext, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tab_context = context
        self.host_id = context.host_id
        self.live = context.live

    def take_focus(self, widget: Widget) -> None:
        """Give ``widget`` the keyboard at once, not on the next message as ``focus()`` does: the keys
        typed in the same burst as the tab's key (``j`` then a command, fast) then reach it."""
        self.screen.set_focus(widget)

    @classmethod
    def binding(cls) -> Binding:
        """The host screen's binding that shows this tab: a priority binding, so the same key opens the
        tab from every tab (a tab's own actions use other keys); it gives way while text is typed (an
        input, or a terminal or desktop that has the keyboard: ``HostScreen.check_action``). The tab strip
        names the tabs and ``?`` their keys, so the footer keeps its room for the tab's own keys."""
        return Binding(cls.KEY, f"show_tab('{cls.TAB_ID}')", cls.TITLE, show=False, priority=True)

    @property
    def client(self) -> OpenComputersClient | None:
        """The app's client, None until the app has one."""
        return client_of(self)

    def activate(self) -> bool:
        """The tab was shown: put the focus where typing should go and start what the tab shows first.

        Returns False when the tab takes no focus, so the host screen's tab strip keeps it (← → then
        switch tabs).
        """
        return False

    def request(
        self,
        action: str,
        call: Callable[[OpenComputersClient], Awaitable[ResultType]],
        then: Callable[[ResultType], object] | None = None,
        *,
        group: str,
        exclusive: bool = False,
        needs_client: bool = False,
    ) -> Worker[None]:
        """Run ``call(client)`` in a worker; ``then(result)`` on success (on the event loop: it posts a
        message or starts the next request). An API error is posted as :class:`RequestFailed` with
        ``action``, which notifies. Without a client the request is skipped, or with ``needs_client``
        reported as not connected. ``group``/``exclusive``: as Textual's workers (an exclusive request
        cancels the group's running one). Returns the worker.
        """

        async def run() -> None:
            client = self.client
            if client is None:
                if needs_client:
                    self.post_message(
                        self.RequestFailed(action, errors.ConnectionFailed("not connected yet"))
                    )
                return
            try:
                result = await call(client)
            except errors.OpenComputersError as exc:
                self.post_message(self.RequestFailed(action, exc))
                return
            if then is not None:
                then(result)

        return self.run_worker(run(), name=action, group=group, exclusive=exclusive, exit_on_error=False)

    def on_host_tab_request_failed(self, message: RequestFailed) -> None:
        self.app.notify(
            f"{host_markup(message.action)}: {host_markup(describe_error(message.error))}",
            title=self.TITLE,
            severity="error",
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A bug in a worker must not take the app down: say what failed and carry on."""
        if event.state == WorkerState.ERROR:
            self.app.notify(
                host_markup(f"{event.worker.name}: {event.worker.error}"),
                title="Unexpected error",
                severity="error",
            )


class ResourceTab(HostTab):
    """A tab whose content is a :class:`~oc_tui.widgets.resource_table.ResourceTable` of the host's
    resources (tunnels, secrets): shown, the list takes the focus and is loaded afresh
    (:meth:`action_reload`, which the tab implements)."""

    POLL_SECONDS: ClassVar[float | None] = None
    """How often the list is reloaded while it is shown and focused (None: only when asked)."""

    def on_mount(self) -> None:
        if self.live and self.POLL_SECONDS:
            self.set_interval(self.POLL_SECONDS, self._poll)

    def _poll(self) -> None:
        if self.display and self.table.has_focus:
            self.action_reload()

    def activate(self) -> bool:
        """The tab was shown: the list takes the focus and is loaded afresh."""
        self.take_focus(self.table)
        if self.live:
            self.action_reload()
        return True

    @property
    def table(self) -> ResourceTable:
        """The tab's list."""
        return self.query_one(ResourceTable)

    def action_reload(self) -> None:
        """List the resources again (in a worker)."""
        raise NotImplementedError
