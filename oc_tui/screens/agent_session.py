"""One AI agent session, live: a header (status, turns, task) and its log — the model's messages as
Markdown, each tool call a collapsible block with its arguments and, once it ran, its result — with
keys to approve, edit or deny the call waiting for approval, and to cancel the session.

Events come from the session's stream (a worker reads ``client.agent_events`` and posts each as
:class:`AgentSessionScreen.EventArrived`, resuming after a drop); tests and the screenshot script post
fixed events through the same message (``live=False``). Everything the model or the host wrote is
shown through the one escaping helper.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Collapsible, Footer, Markdown, Static

from oc_tui.api import errors
from oc_tui.api.models import AgentEvent, AgentSession
from oc_tui.readonly import ReadOnlyGuard
from oc_tui.screens.agents import DenyForm, EditCallForm
from oc_tui.screens.confirm import ConfirmScreen
from oc_tui.screens.host_tab import client_of, run_client_call
from oc_tui.widgets.formatting import describe_error, host_markup, host_text
from oc_tui.widgets.statuses import status_classes, status_label

if TYPE_CHECKING:
    pass

FINAL = ("completed", "failed", "cancelled")
ARGUMENT_PREVIEW = 60
"""Characters of a call's arguments shown in its collapsed title."""


def call_title(name: str, arguments: Any) -> str:
    """A tool call's one-line title (markup, host text escaped): ``run_command  ls -la``."""
    if isinstance(arguments, dict):
        main = arguments.get("command") or arguments.get("path") or json.dumps(arguments, ensure_ascii=False)
    else:
        main = str(arguments)
    main = " ".join(str(main).split())
    if len(main) > ARGUMENT_PREVIEW:
        main = main[: ARGUMENT_PREVIEW - 1] + "…"
    return f"[b]{host_markup(name)}[/b]  {host_markup(main)}"


def pretty(arguments: Any) -> str:
    """A call's arguments for its block: indented JSON (plain text, escaped)."""
    text = (
        json.dumps(arguments, indent=2, ensure_ascii=False) if not isinstance(arguments, str) else arguments
    )
    return host_text(text, keep="\n")


class AgentSessionScreen(ReadOnlyGuard, Screen[None]):
    """The log of ``session`` on its host; ``live``: False in tests and screenshots (events come as
    messages)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.back", "Back"),
        Binding("a", "approve", "Approve"),
        Binding("e", "edit", "Edit+approve"),
        Binding("d", "deny", "Deny"),
        Binding("x", "cancel_session", "Cancel session"),
    ]

    @dataclass
    class EventArrived(Message):
        """One event of the session's stream."""

        event: AgentEvent

    def __init__(self, session: AgentSession, *, live: bool = True) -> None:
        super().__init__()
        self.session = session
        self.live = live
        self.status: str = session.status
        self.turns = session.turns_used
        self.pending: dict[str, Any] | None = session.pending_approval
        self.calls: dict[str, Collapsible] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="agent-info")
        yield Static(id="agent-task", markup=False)
        yield VerticalScroll(id="agent-log")
        yield Static(id="agent-approval")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#agent-task", Static).update(host_text(self.session.task, keep="\n"))
        self._update_info()
        self.query_one("#agent-log", VerticalScroll).focus()
        if self.live:
            self.run_worker(self._follow(), name="agent events", group="events", exit_on_error=False)

    async def _follow(self) -> None:
        client = client_of(self)
        if client is None:
            return
        try:
            async with client.agent_events(self.session.host_id, self.session.id) as stream:
                async for event in stream:
                    self.post_message(self.EventArrived(event))
        except errors.OpenComputersError as exc:
            self.notify(host_markup(describe_error(exc)), title="Agent events", severity="error")

    # --- the log ---------------------------------------------------------------------------------------

    async def on_agent_session_screen_event_arrived(self, message: EventArrived) -> None:
        await self.show_event(message.event)

    async def show_event(self, event: AgentEvent) -> None:
        """Add ``event`` to the log (and follow the status, turns and waiting call). Each block is
        mounted before the next event is shown, so a call's result finds its block."""
        log = self.query_one("#agent-log", VerticalScroll)
        data = event.data
        follow = log.is_vertical_scroll_end or log.max_scroll_y == 0
        kind = event.type
        if kind == "status":
            self.status = str(data.get("status") or self.status)
            if self.status in FINAL:
                self.pending = None
            line = f"{status_label('agents', self.status)}"
            await log.mount(Static(host_markup(line), classes="agent-status"))
        elif kind == "turn_started":
            self.turns = int(data.get("turn") or self.turns)
            await log.mount(Static(f"turn {self.turns}/{data.get('max_turns', '?')}", classes="agent-turn"))
        elif kind in ("assistant_message", "final_answer"):
            content = host_text(str(data.get("content") or "").expandtabs(4), keep="\n")
            if content:
                await log.mount(Markdown(content, classes=f"agent-message -{kind.replace('_', '-')}"))
        elif kind == "tool_call":
            call_id = str(data.get("call_id"))
            block = Collapsible(
                Static(pretty(data.get("arguments")), markup=False, classes="agent-arguments"),
                title=call_title(str(data.get("name")), data.get("arguments")),
                classes="agent-call",
            )
            self.calls[call_id] = block
            await log.mount(block)
        elif kind == "tool_result":
            await self._show_result(log, data)
        elif kind == "approval_required":
            self.pending = dict(data)
        elif kind == "approval_decided":
            self.pending = None
            word = "approved" if data.get("decision") == "approve" else "denied"
            reason = f": {data['reason']}" if data.get("reason") else ""
            await log.mount(
                Static(host_markup(f"{word} {data.get('name')}{reason}"), classes=f"agent-decision -{word}")
            )
        elif kind == "error":
            await log.mount(Static(host_markup(f"error: {data.get('message')}"), classes="agent-error"))
        self._update_info()
        if follow:  # after the layout took the new block in
            self.call_after_refresh(log.scroll_end, animate=False)

    async def _show_result(self, log: VerticalScroll, data: dict[str, Any]) -> None:
        failed = bool(data.get("error")) or bool(data.get("denied"))
        notes = []
        if data.get("job_id"):
            notes.append(f"job {data['job_id']}, exit {data.get('exit_code')}")
        if data.get("truncated"):
            notes.append("cut")
        head = "result" + (f" ({', '.join(notes)})" if notes else "")
        result = Static(
            host_text(f"{head}:\n{data.get('output') or ''}".expandtabs(4), keep="\n"),
            markup=False,
            classes="agent-result" + (" -failed" if failed else ""),
        )
        block = self.calls.get(str(data.get("call_id")))
        if block is None:
            await log.mount(result)
            return
        await block.query_one(Collapsible.Contents).mount(result)
        block.title = ("✗ " if failed else "✓ ") + block.title
        block.set_class(failed, "-failed")

    def _update_info(self) -> None:
        info = self.query_one("#agent-info", Static)
        for name, on in status_classes("agents", self.status):
            info.set_class(on, name)
        session = self.session
        model = f"  ·  {host_markup(session.model_id)}" if session.model_id else ""
        mode = "  ·  approval" if session.approval else ""
        info.update(
            f"{status_label('agents', self.status)}  ·  turn {self.turns}/{session.max_turns}{model}{mode}"
            f"  ·  {host_markup(session.id)}"
        )
        approval = self.query_one("#agent-approval", Static)
        if self.pending:
            what = call_title(str(self.pending.get("name")), self.pending.get("arguments"))
            approval.update(f"[b]a[/b] approve · [b]e[/b] edit · [b]d[/b] deny   {what}")
        approval.set_class(bool(self.pending), "-visible")
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Approve, edit and deny only while a call waits; cancel only while the session runs."""
        if action in ("approve", "edit", "deny") and self.pending is None:
            return False
        if action == "cancel_session" and self.status in FINAL:
            return False
        return super().check_action(action, parameters)  # read-only mode (ReadOnlyGuard)

    # --- actions -----------------------------------------------------------------------------------------

    def _decide(
        self, decision: str, *, reason: str | None = None, arguments: dict[str, Any] | None = None
    ) -> None:
        pending = self.pending
        if pending is None:
            return
        session = self.session
        run_client_call(
            self,
            decision,
            lambda client: client.decide_agent_call(
                session.host_id,
                session.id,
                str(pending.get("call_id")),
                "approve" if decision == "approve" else "deny",
                reason=reason,
                arguments=arguments,
            ),
        )

    def action_approve(self) -> None:
        """Let the waiting call run as the model asked."""
        self._decide("approve")

    def action_edit(self) -> None:
        """Edit the waiting call's arguments, then let it run."""
        if self.pending is None:
            return
        arguments = self.pending.get("arguments")
        form = EditCallForm(str(self.pending.get("name")), arguments if isinstance(arguments, dict) else {})

        def edited(value: dict[str, Any] | None) -> None:
            if value is not None:
                self._decide("approve", arguments=value)

        self.app.push_screen(form, edited)

    def action_deny(self) -> None:
        """Refuse the waiting call, with a reason the model sees."""

        def denied(reason: str | None) -> None:
            if reason is not None:
                self._decide("deny", reason=reason)

        if self.pending is not None:
            self.app.push_screen(DenyForm(None), denied)

    def action_cancel_session(self) -> None:
        """Cancel the session (asks first): the model call in flight stops, a running command is killed."""
        session = self.session

        def confirmed(yes: bool | None) -> None:
            if yes:
                run_client_call(
                    self, "cancel", lambda client: client.cancel_agent_session(session.host_id, session.id)
                )

        text = "The model call in flight stops and a running command is killed."
        self.app.push_screen(ConfirmScreen("Cancel this agent session?", text, "Cancel session"), confirmed)
