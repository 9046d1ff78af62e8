"""AI agent sessions in the TUI, shared by the host screen's Agents tab and the ``:agents`` view: the
table's columns, the fleet-wide lister, the dispatch form and the model configuration form.

("Agents" are the reference's AI agent sessions; the host process is ``oc-agent`` — docs/architecture.md.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Checkbox, Label

from oc_tui.api.models import AgentSession
from oc_tui.screens.form_dialog import FormDialog
from oc_tui.widgets.formatting import relative_time
from oc_tui.widgets.resource_table import HOST_COLUMN, STATUS, Column
from oc_tui.widgets.text_entry import Input, TextArea

if TYPE_CHECKING:
    from oc_tui.api import OpenComputersClient

FLEET_SESSIONS = 20
"""Sessions per host the ``:agents`` view lists (the newest)."""


def _turns(session: AgentSession, _: datetime) -> str:
    return f"{session.turns_used}/{session.max_turns}"


def _waiting(session: AgentSession, _: datetime) -> str:
    if session.pending_approval:
        return f"approve {session.pending_approval.get('name', '?')}"
    return "approval" if session.approval else ""


COLUMNS: tuple[Column, ...] = (
    Column(STATUS, "Status", lambda s, _: s.status),
    Column("turns", "Turns", _turns),
    Column("age", "Age", lambda s, now: relative_time(s.created_at, now)),
    Column("mode", "Mode", _waiting),
    Column("task", "Task", lambda s, _: " ".join(s.task.split())[:200]),
)
"""The Agents tab's columns (one host)."""
FLEET_COLUMNS: tuple[Column, ...] = (*COLUMNS[:1], HOST_COLUMN, *COLUMNS[1:])
"""The ``:agents`` view's columns: every host's sessions, so the host is named."""


async def all_sessions(client: OpenComputersClient) -> list[AgentSession]:
    """The newest sessions of every host of the fleet, newest first, each with its ``host_name``."""
    sessions: list[AgentSession] = []
    for host in await client.all_hosts():
        if host.status == "revoked":
            continue
        page = await client.list_agent_sessions(host.id, per_page=FLEET_SESSIONS)
        sessions += [s.model_copy(update={"host_name": host.name}) for s in page.data]
    return sorted(sessions, key=lambda s: s.created_at, reverse=True)


@dataclass
class DispatchFields:
    """The dispatch form's values."""

    task: str
    model_id: str | None
    max_turns: int
    approval: bool


class TextAreaForm(FormDialog[Any]):
    """A form with a text area, where ``enter`` is a new line: ``ctrl+s`` sends it."""

    BINDINGS: ClassVar[list[BindingType]] = [*FormDialog.BINDINGS, Binding("ctrl+s", "submit", "Send")]

    def action_submit(self) -> None:
        """Send the form (as its submit button does)."""
        self._submit()


class DispatchForm(TextAreaForm):
    """Dispatch an AI agent session onto ``host_id``: task, model (empty: the tenant's default), max
    turns, approval mode (on by default: commands and writes wait for the operator)."""

    FAILURE_TITLE = "Agent not dispatched"
    NEEDS_CLIENT = True

    def __init__(self, client: OpenComputersClient | None, host_id: str) -> None:
        super().__init__(client)
        self.host_id = host_id

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide"):
            yield Label("Dispatch an AI agent", classes="dialog-title")
            yield Label("Task", classes="field-label")
            yield TextArea(id="task", compact=True, classes="agent-task")
            yield Label("Model (empty: the configured default)", classes="field-label -spaced")
            yield Input(id="model", compact=True, placeholder="e.g. llama3.1:8b")
            yield Label("Max turns (model calls, 1-500)", classes="field-label -spaced")
            yield Input("20", id="max-turns", compact=True, type="integer")
            yield Checkbox(
                "Approval: commands and file writes wait for me", True, id="approval", compact=True
            )
            yield from self.compose_footer("Dispatch")

    def on_mount(self) -> None:
        self.query_one("#task", TextArea).focus()

    def fields(self) -> DispatchFields | None:
        task = self.query_one("#task", TextArea).text.strip()
        if not task:
            self.show_error("say what the agent should do")
            self.query_one("#task", TextArea).focus()
            return None
        turns = self.query_one("#max-turns", Input).value.strip()
        if not turns.isdigit() or not 1 <= int(turns) <= 500:
            self.show_error("max turns must be a number from 1 to 500")
            self.query_one("#max-turns", Input).focus()
            return None
        model = self.query_one("#model", Input).value.strip() or None
        return DispatchFields(task, model, int(turns), self.query_one("#approval", Checkbox).value)

    async def send(self, fields: DispatchFields) -> AgentSession:
        assert self.client is not None  # NEEDS_CLIENT
        return await self.client.dispatch_agent(
            self.host_id,
            fields.task,
            model_id=fields.model_id,
            max_turns=fields.max_turns,
            approval=fields.approval,
        )


@dataclass
class ModelFields:
    """The model configuration form's values."""

    base_url: str
    model: str
    api_key_secret: str
    streaming: bool


class ModelConfigForm(FormDialog[dict[str, Any]]):
    """Where this tenant's AI agents get their model: an OpenAI-compatible endpoint, the default model,
    the name of the secret holding the API key. ``current``: the configuration as the server has it."""

    FAILURE_TITLE = "Model not saved"
    NEEDS_CLIENT = True

    def __init__(self, client: OpenComputersClient | None, current: dict[str, Any]) -> None:
        super().__init__(client)
        self.current = current

    def compose(self) -> ComposeResult:
        now = self.current
        with Vertical(classes="dialog -wide"):
            yield Label("AI agents: the model", classes="dialog-title")
            yield Label(
                "OpenAI-compatible base URL (Ollama, llama.cpp, vLLM, a cluster …)", classes="field-label"
            )
            yield Input(
                str(now.get("base_url") or ""),
                id="base-url",
                compact=True,
                placeholder="http://127.0.0.1:11434/v1",
            )
            yield Label("Default model", classes="field-label -spaced")
            yield Input(str(now.get("model") or ""), id="model", compact=True, placeholder="e.g. llama3.1:8b")
            yield Label("Secret holding the API key (empty: none needed)", classes="field-label -spaced")
            yield Input(
                str(now.get("api_key_secret") or ""), id="key-secret", compact=True, placeholder="LLM_API_KEY"
            )
            yield Checkbox(
                "Stream the model's answers", bool(now.get("streaming", True)), id="streaming", compact=True
            )
            yield from self.compose_footer("Save")

    def fields(self) -> ModelFields | None:
        base_url = self.query_one("#base-url", Input).value.strip()
        if not base_url.startswith(("http://", "https://")):
            self.show_error("the base URL must start with http:// or https://")
            self.query_one("#base-url", Input).focus()
            return None
        model = self.query_one("#model", Input).value.strip()
        if not model:
            self.show_error("name the default model")
            self.query_one("#model", Input).focus()
            return None
        secret = self.query_one("#key-secret", Input).value.strip()
        return ModelFields(base_url, model, secret, self.query_one("#streaming", Checkbox).value)

    async def send(self, fields: ModelFields) -> dict[str, Any]:
        assert self.client is not None  # NEEDS_CLIENT
        return await self.client.set_agent_config(
            fields.base_url, fields.model, api_key_secret=fields.api_key_secret, streaming=fields.streaming
        )


class EditCallForm(TextAreaForm):
    """Edit a waiting call's arguments (JSON) before approving it; dismisses with the edited object
    (the caller sends the decision)."""

    FAILURE_TITLE = "Call not edited"

    def __init__(self, name: str, arguments: dict[str, Any]) -> None:
        super().__init__(None)
        self.tool = name
        self.arguments = arguments

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide"):
            yield Label(f"Edit the {self.tool} call, then approve it", classes="dialog-title", markup=False)
            yield TextArea(
                json.dumps(self.arguments, indent=2, ensure_ascii=False), id="arguments", classes="agent-edit"
            )
            yield from self.compose_footer("Approve")

    def fields(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self.query_one("#arguments", TextArea).text)
        except json.JSONDecodeError as exc:
            self.show_error(f"not JSON: {exc}")
            return None
        if not isinstance(value, dict):
            self.show_error("the arguments must be a JSON object")
            return None
        return value

    async def send(self, fields: dict[str, Any]) -> dict[str, Any]:
        return fields


class DenyForm(FormDialog[str]):
    """Deny a waiting call: the reason the model will see."""

    FAILURE_TITLE = "Call not denied"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Deny the call", classes="dialog-title")
            yield Label("Why (the agent reads this)", classes="field-label")
            yield Input(id="reason", compact=True, placeholder="e.g. do not touch /etc")
            yield from self.compose_footer("Deny")

    def fields(self) -> str | None:
        return self.query_one("#reason", Input).value.strip() or "denied by the operator"

    async def send(self, fields: str) -> str:
        return fields
