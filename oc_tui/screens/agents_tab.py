"""The Agents tab of a host: its AI agent sessions (status, turns used/max, age, mode, task), and keys to
dispatch one, open one's live log, cancel one and set the model they use.

Workers talk to the client and post :class:`AgentsTab.SessionsLoaded`; the handler only fills the table.
While the tab is shown the list is reloaded every ``POLL_SECONDS``. Tests and the screenshot script post
fixed models through the same message (``live=False``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Static

from oc_tui.api.models import AgentSession
from oc_tui.screens.agent_session import AgentSessionScreen
from oc_tui.screens.agents import COLUMNS, DispatchForm, ModelConfigForm
from oc_tui.screens.confirm import ConfirmScreen
from oc_tui.screens.host_tab import HostTabContext, ResourceTab
from oc_tui.widgets.formatting import host_markup
from oc_tui.widgets.resource_table import ResourceTable

if TYPE_CHECKING:
    from oc_tui.api import OpenComputersClient

Call = Callable[["OpenComputersClient"], Awaitable[Any]]


class SessionActions(Widget):
    """What can be done to the selected session, shared by the Agents tab and the ``:agents`` view: open
    its log, cancel it (asks first). A mixin, listed after the main base (as ``TunnelActions``); the class
    has a ``table`` of sessions, ``live``, and says how it runs a change (:meth:`run_change`)."""

    SESSION_BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_session", "Open log"),
        Binding("x", "cancel_session", "Cancel"),
    ]
    live: bool

    if TYPE_CHECKING:  # provided by the class this is mixed into

        @property
        def table(self) -> ResourceTable: ...

    def run_change(self, action: str, call: Call) -> None:
        """Run ``call(client)`` in a worker (errors are notified with ``action``), then reload."""
        raise NotImplementedError

    def selected_session(self) -> AgentSession | None:
        """The session under the cursor."""
        chosen = self.table.selected_id
        return next((s for s in self.table.items if s.id == chosen), None)

    def action_open_session(self) -> None:
        """Show the selected session's live log."""
        session = self.selected_session()
        if session is not None:
            self.app.push_screen(AgentSessionScreen(session, live=self.live))

    def action_cancel_session(self) -> None:
        """Cancel the selected session (asks first)."""
        session = self.selected_session()
        if session is None or session.status not in ("pending", "running"):
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.run_change(
                    "cancel session", lambda client: client.cancel_agent_session(session.host_id, session.id)
                )

        text = f"{host_markup(session.task[:200])}\n\nThe model call in flight stops and a running command is killed."
        self.app.push_screen(ConfirmScreen("Cancel this agent session?", text, "Cancel session"), confirmed)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """``enter`` on a row opens its log."""
        event.stop()
        self.action_open_session()


class AgentsTab(ResourceTab, SessionActions):
    """AI agents working on this host."""

    TAB_ID = "agents"
    TITLE = "Agents"
    KEY = "a"
    POLL_SECONDS = 3.0  # turns and statuses move
    HELP_ROWS_AFTER = (
        ("a  e  d", "In a session's log: approve, edit then approve, deny (with a reason) the waiting call"),
        ("x", "In a session's log: cancel the session"),
        ("enter", "In a session's log: open or close a tool call's block"),
        ("ctrl+s", "In the dispatch form: dispatch"),
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "dispatch", "Dispatch"),
        *SessionActions.SESSION_BINDINGS,
        Binding("m", "model", "Model"),
        Binding("r", "reload", "Reload"),
    ]

    @dataclass
    class SessionsLoaded(Message):
        sessions: list[AgentSession]

    def __init__(self, context: HostTabContext, *, id: str | None = None) -> None:
        super().__init__(context, id=id)
        self._clock = context.clock

    def compose(self) -> ComposeResult:
        yield ResourceTable("agents", COLUMNS, self._clock, id="agent-list")
        yield Static("", id="agent-hint", markup=False)

    def on_mount(self) -> None:
        self.table.border_title = "agent sessions"

    def action_reload(self) -> None:
        """List the host's sessions again."""
        self.request(
            "list agent sessions",
            lambda client: client.list_agent_sessions(self.host_id),
            lambda page: self.post_message(self.SessionsLoaded(list(page.data))),
            group="list",
            exclusive=True,
        )

    def run_change(self, action: str, call: Call) -> None:
        """Run a change with the tab's request worker, then list again."""
        self.request(action, call, lambda _: self.action_reload(), group="change", needs_client=True)

    def action_dispatch(self) -> None:
        """Open the dispatch form; a dispatched session's log opens at once."""

        def dispatched(session: AgentSession | None) -> None:
            if session is not None:
                self.action_reload()
                self.app.push_screen(AgentSessionScreen(session, live=self.live))

        self.app.push_screen(DispatchForm(self.client, self.host_id), dispatched)

    def action_model(self) -> None:
        """Open the form that sets where sessions get their model (with the current configuration)."""

        def saved(config: dict[str, Any] | None) -> None:
            if config is not None:
                self.notify(
                    host_markup(f"{config.get('model')} at {config.get('base_url')}"), title="Model saved"
                )

        self.request(
            "read the model configuration",
            lambda client: client.get_agent_config(),
            lambda config: self.app.push_screen(ModelConfigForm(self.client, config), saved),
            group="config",
            needs_client=True,
        )

    def on_agents_tab_sessions_loaded(self, message: SessionsLoaded) -> None:
        self.table.show(message.sessions)
        hint = "" if message.sessions else "No agent sessions yet: n dispatches one (m sets the model)."
        self.query_one("#agent-hint", Static).update(hint)
