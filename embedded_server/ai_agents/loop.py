"""The AI agent loop: one asyncio task per running session, in the control plane.

It calls the tenant's OpenAI-compatible chat-completions endpoint through the official ``openai``
package (streamed or not, as the tenant's configuration says), runs the tool calls it answers on the
host (``tools.py``), feeds their results back, and stops at an answer without tool calls, at
``max_turns``, at a model error, or when cancelled. The model's API key is read from a tenant secret
here, in the control plane: it never reaches a host.

Every step is stored before the next one (``store.py``): the transcript, the call in progress (and
the job it started), the numbered events. So a control-plane restart resumes each unfinished session
from its transcript (a command that was running is waited for as the job it is; it survived the
restart), and a session that cannot go on ends ``failed`` with the reason — never stuck ``running``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

from oc_tui.api.models import APPROVED_TOOLS, AgentDecision

from ..errors import ApiProblem
from ..hub import Hub
from ..jobs.store import JobStore
from . import tools
from .store import FINAL, ModelConfig, SessionStore, now

if TYPE_CHECKING:
    import openai
    from openai import AsyncOpenAI

log = logging.getLogger("oc_server.ai_agents")

EVENT_OUTPUT = 4096  # characters of a tool's result an event carries (the model gets more)
CANCEL_WAIT = 10.0  # seconds DELETE waits for the loop to stop (LLM call dropped, job killed)
NO_KEY = "not-needed"  # the API key sent to an endpoint that needs none (the package wants one)

SYSTEM_PROMPT = """You are an agent working on the computer {host_id} through tools: run_command runs a \
shell command, read_file, write_file, edit_file and list_dir work on its files. Do the operator's task \
with them, checking what you did. The operator may deny a call and say why: take that into account. \
When the task is done (or cannot be done), answer with a short summary and no tool call."""


class SessionFailed(Exception):
    """The session cannot go on; the message is its ``error``."""


class NoDecision(Exception):
    """The session is not waiting for that call's approval."""


def openai_package() -> ModuleType:
    """The ``openai`` package, imported on the first session: its import takes ~0.8 s (measured with
    ``python -X importtime``), which the control plane's start-up does not pay."""
    import openai

    return openai


def describe_llm_error(exc: openai.OpenAIError) -> str:
    """What a failed model call says in the session's ``error``."""
    openai = openai_package()
    if isinstance(exc, openai.APITimeoutError):
        return "the model endpoint did not answer in time"
    if isinstance(exc, openai.APIConnectionError):
        return f"the model endpoint could not be reached: {exc}"
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        return f"the model endpoint answered {exc.status_code}: {body.get('message') or exc.message}"
    return f"the model call failed: {exc}"


def first_messages(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The transcript's start: the system prompt and the task, with the dispatch's ``context``."""
    task = row["task"]
    context = row.get("context") or {}
    if context:
        lines = [
            f"- {key}: {value if isinstance(value, str) else json.dumps(value)}"
            for key, value in context.items()
        ]
        task += "\n\nContext:\n" + "\n".join(lines)
    return [
        {"role": "system", "content": SYSTEM_PROMPT.format(host_id=row["host_id"])},
        {"role": "user", "content": task},
    ]


def assistant_message(message: Any) -> dict[str, Any]:
    """The model's answer as a transcript entry (``content`` and ``tool_calls``, nothing else)."""
    entry: dict[str, Any] = {"role": "assistant", "content": message.content}
    calls = [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": call.function.name, "arguments": call.function.arguments or "{}"},
        }
        for call in message.tool_calls or []
        if getattr(call, "function", None) is not None
    ]
    if calls:
        entry["tool_calls"] = calls
    return entry


def unanswered(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tool calls of the last assistant message that have no result in the transcript yet."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index]["role"] == "assistant":
            answered = {m.get("tool_call_id") for m in messages[index + 1 :] if m["role"] == "tool"}
            return [call for call in messages[index].get("tool_calls") or [] if call["id"] not in answered]
    return []


def arguments_of(raw: str) -> Any:
    """A call's arguments for an event: the object, or the text when it is not JSON."""
    try:
        return json.loads(raw or "{}")
    except json.JSONDecodeError:
        return raw


class Runner:
    """The running sessions of this control plane.

    Args:
        store: the sessions; hub: the connected agents; jobs: the job store (run_command's jobs).
        state: the app's state, where ``secrets`` (issue 13's section) is looked up when a key is read.
        call_timeout: seconds one model call may take.
    """

    def __init__(
        self, store: SessionStore, hub: Hub, jobs: JobStore, state: Any, call_timeout: float
    ) -> None:
        self.store = store
        self.hub = hub
        self.jobs = jobs
        self.state = state
        self.call_timeout = call_timeout
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.decisions: dict[str, tuple[str, asyncio.Future[AgentDecision]]] = {}
        self.cancelling: set[str] = set()
        self.stopping = False

    # --- control ---------------------------------------------------------------------------------------

    def start(self, session_id: str) -> None:
        """Run the session's loop (it resumes from its transcript)."""
        if session_id in self.tasks:
            return
        task = asyncio.get_running_loop().create_task(self._guarded(session_id), name=session_id)
        self.tasks[session_id] = task

    def resume_all(self) -> None:
        """Server start: resume every session a previous run left pending or running."""
        self.stopping = False
        for row in self.store.unfinished():
            log.info("session %s: resumed from its transcript", row["id"])
            self.start(row["id"])

    def stop(self) -> None:
        """Server stopping: drop the loops without ending their sessions (the next start resumes them;
        their running commands are jobs and go on)."""
        self.stopping = True
        for task in self.tasks.values():
            task.cancel()

    async def cancel(self, session_id: str) -> None:
        """End the session ``cancelled``: the model call in flight is dropped, a running command's
        process tree is killed. A finished session stays as it is."""
        row = self.store.get(session_id)
        if row is None or row["status"] in FINAL:
            return
        task = self.tasks.get(session_id)
        if task is not None:
            self.cancelling.add(session_id)
            task.cancel()
            await asyncio.wait({task}, timeout=CANCEL_WAIT)
        row = self.store.get(session_id)
        if row is not None and row["status"] not in FINAL:
            self.finish(session_id, "cancelled", None)

    def decide(self, session_id: str, decision: AgentDecision) -> None:
        """The operator's answer to the call waiting for approval.

        Raises:
            NoDecision: the session is not waiting for ``decision.call_id``.
        """
        waiting = self.decisions.get(session_id)
        if waiting is None or waiting[0] != decision.call_id or waiting[1].done():
            raise NoDecision(f"the session is not waiting for the approval of call {decision.call_id!r}")
        waiting[1].set_result(decision)

    def finish(self, session_id: str, status: str, error: str | None, result: str | None = None) -> None:
        """Store the session's end and send its last events (``error``, then the final ``status``)."""
        row = self.store.get(session_id)
        if row is None or row["status"] in FINAL:
            return
        stamp = now()
        self.store.update(
            session_id,
            status=status,
            error=error,
            result=result,
            completed_at=stamp,
            pending_approval=None,
            current_tool=None,
        )
        if error:
            self.store.add_event(session_id, "error", {"message": error})
        data = {"status": status, "error": error, "turns_used": row["turns_used"], "result": result}
        self.store.add_event(session_id, "status", data)

    # --- the loop ---------------------------------------------------------------------------------------

    async def _guarded(self, session_id: str) -> None:
        try:
            await self._run(session_id)
        except asyncio.CancelledError:
            if session_id in self.cancelling:
                self.finish(session_id, "cancelled", None)
            elif not self.stopping:
                self.finish(session_id, "failed", "the session's loop was stopped")
        except SessionFailed as exc:
            self.finish(session_id, "failed", str(exc))
        except Exception as exc:  # a model error, or a bug: either must end the session, with its reason
            if isinstance(exc, openai_package().OpenAIError):
                self.finish(session_id, "failed", describe_llm_error(exc))
                return
            log.exception("session %s failed", session_id)
            self.finish(session_id, "failed", f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self.tasks.pop(session_id, None)
            self.cancelling.discard(session_id)
            self.decisions.pop(session_id, None)

    async def _api_key(self, row: dict[str, Any], config: ModelConfig) -> str:
        """The endpoint's API key, from the tenant secret the configuration names."""
        if not config.key_secret:
            return NO_KEY
        secrets = getattr(self.state, "secrets", None)
        if secrets is None:
            raise SessionFailed(f"the API key secret {config.key_secret!r} cannot be read: no secrets store")
        try:  # a tenant secret: a host secret of the same name does not replace the operator's key
            values = await secrets.values(row["tenant_id"], None, [config.key_secret])
        except ApiProblem as exc:
            raise SessionFailed(
                f"the model's API key (secret {config.key_secret!r}): {exc.message}"
            ) from None
        key = values.get(config.key_secret)
        if not key:
            raise SessionFailed(f"there is no secret named {config.key_secret!r} (the model's API key)")
        return str(key)

    async def _run(self, session_id: str) -> None:
        row = self.store.get(session_id)
        if row is None or row["status"] in FINAL:
            return
        config = self.store.config(row["tenant_id"])
        if not config.configured:
            raise SessionFailed("no model is configured for AI agents")
        if row["status"] == "pending":
            self.store.update(session_id, status="running", started_at=now())
            self.store.add_event(session_id, "status", {"status": "running"})
        messages = self.store.messages(session_id)
        if not messages:
            for message in first_messages(row):
                self.store.add_message(session_id, message)
                messages.append(message)
        client = openai_package().AsyncOpenAI(
            base_url=config.base_url,
            api_key=await self._api_key(row, config),
            timeout=self.call_timeout,
            max_retries=2,
        )
        try:
            async with asyncio.timeout(self._time_left(row)):
                await self._turns(session_id, config, messages, client)
        except TimeoutError:
            raise SessionFailed("the session ran out of its time budget (budget.timeout_ms)") from None
        finally:
            await client.close()

    def _time_left(self, row: dict[str, Any]) -> float | None:
        limit = (row.get("budget") or {}).get("timeout_ms")
        if not isinstance(limit, int | float) or limit <= 0:
            return None
        started = datetime.fromisoformat(str(row["started_at"] or row["created_at"]).replace("Z", "+00:00"))
        return max(0.0, limit / 1000 - (datetime.now(started.tzinfo) - started).total_seconds())

    async def _turns(
        self, session_id: str, config: ModelConfig, messages: list[dict[str, Any]], client: AsyncOpenAI
    ) -> None:
        while True:
            await self._answer_calls(session_id, messages)
            row = self.store.get(session_id)
            assert row is not None
            last = messages[-1]
            if last["role"] == "assistant" and not last.get("tool_calls"):
                self.finish(session_id, "completed", None, last.get("content") or "")
                return
            if row["turns_used"] >= row["max_turns"]:
                raise SessionFailed(f"max_turns ({row['max_turns']}) reached before a final answer")
            turn = row["turns_used"] + 1
            self.store.update(session_id, turns_used=turn)
            self.store.add_event(session_id, "turn_started", {"turn": turn, "max_turns": row["max_turns"]})
            message, tokens = await self._complete(client, config, row, messages)
            self._spend(row, tokens)
            entry = assistant_message(message)
            self.store.add_message(session_id, entry)
            messages.append(entry)
            if entry["content"]:
                kind = "assistant_message" if entry.get("tool_calls") else "final_answer"
                self.store.add_event(session_id, kind, {"content": entry["content"], "turn": turn})
            elif not entry.get("tool_calls"):
                self.store.add_event(session_id, "final_answer", {"content": "", "turn": turn})
            for call in entry.get("tool_calls", []):
                data = {
                    "call_id": call["id"],
                    "name": call["function"]["name"],
                    "arguments": arguments_of(call["function"]["arguments"]),
                }
                self.store.add_event(session_id, "tool_call", data)

    def _spend(self, row: dict[str, Any], tokens: int) -> None:
        used = int(row["tokens_used"] or 0) + tokens
        self.store.update(row["id"], tokens_used=used)
        limit = (row.get("budget") or {}).get("max_tokens")
        if isinstance(limit, int) and 0 < limit <= used:
            raise SessionFailed(f"the session used {used} tokens, its budget is {limit} (budget.max_tokens)")

    async def _complete(
        self, client: AsyncOpenAI, config: ModelConfig, row: dict[str, Any], messages: list[dict[str, Any]]
    ) -> tuple[Any, int]:
        """One model call: its message and the tokens it used."""
        allowed = set(row.get("tools") or tools.TOOLS)
        specs = [spec for spec in tools.TOOL_SPECS if spec["function"]["name"] in allowed]
        model = row["model_id"] or config.model
        kwargs: dict[str, Any] = {"model": model, "messages": messages}
        if specs:
            kwargs["tools"] = specs
        if config.streaming:
            async with client.chat.completions.stream(**kwargs) as stream:
                completion: Any = await stream.get_final_completion()
        else:
            completion = await client.chat.completions.create(**kwargs)
        if not completion.choices:
            raise SessionFailed("the model endpoint answered without a choice")
        usage = getattr(completion, "usage", None)
        return completion.choices[0].message, int(getattr(usage, "total_tokens", 0) or 0)

    # --- tool calls -------------------------------------------------------------------------------------

    async def _answer_calls(self, session_id: str, messages: list[dict[str, Any]]) -> None:
        """Run the last answer's tool calls that have no result yet, storing each result."""
        for call in unanswered(messages):
            row = self.store.get(session_id)
            assert row is not None
            name = call["function"]["name"]
            result = await self._one_call(row, call["id"], name, call["function"]["arguments"])
            message = {"role": "tool", "tool_call_id": call["id"], "content": result.output}
            self.store.add_message(session_id, message)
            messages.append(message)
            self.store.update(session_id, current_tool=None)
            output, cut = tools.cut(result.output, EVENT_OUTPUT)
            data = {"call_id": call["id"], "name": name, "output": output, **result.extra}
            data["truncated"] = bool(data.get("truncated")) or cut
            self.store.add_event(session_id, "tool_result", data)

    async def _one_call(self, row: dict[str, Any], call_id: str, name: str, raw: str) -> tools.ToolResult:
        session_id = row["id"]
        allowed = row.get("tools") or list(tools.TOOLS)
        if name not in allowed:
            return tools.ToolResult(
                f"error: the tool {name!r} is not available in this session", {"error": True}
            )

        def noted(job_id: str) -> None:
            self.store.update(session_id, current_tool={"call_id": call_id, "name": name, "job_id": job_id})

        ctx = tools.ToolContext(
            self.hub,
            self.jobs,
            row["tenant_id"],
            row["host_id"],
            session_id,
            on_job=noted,
            kill_on_cancel=lambda: session_id in self.cancelling,
        )
        current = row.get("current_tool") or {}
        if current.get("call_id") == call_id and current.get("job_id"):  # its job survived a restart
            return await tools.job_result(ctx, current["job_id"], tools.MAX_COMMAND_TIMEOUT + tools.END_SLACK)
        try:
            args = tools.parse_arguments(raw)
        except tools.ToolError as exc:
            return tools.ToolResult(f"error: {exc}", {"error": True})
        note = ""
        if row["approval"] and name in APPROVED_TOOLS:
            decision = await self._approval(session_id, call_id, name, args)
            if decision.decision == "deny":
                reason = decision.reason or "no reason given"
                return tools.ToolResult(f"the operator denied this call: {reason}", {"denied": True})
            if decision.arguments is not None and decision.arguments != args:
                args = decision.arguments
                note = f"(the operator edited the call; it ran with {json.dumps(args)})\n"
        self.store.update(session_id, current_tool={"call_id": call_id, "name": name})
        result = await tools.run_tool(ctx, name, args)
        if note:
            result.output = note + result.output
        return result

    async def _approval(
        self, session_id: str, call_id: str, name: str, args: dict[str, Any]
    ) -> AgentDecision:
        """Wait for the operator's decision on the call (the session shows it as ``pending_approval``)."""
        pending = {"call_id": call_id, "name": name, "arguments": args}
        future: asyncio.Future[AgentDecision] = asyncio.get_running_loop().create_future()
        self.decisions[session_id] = (call_id, future)
        self.store.update(session_id, pending_approval=pending)
        self.store.add_event(session_id, "approval_required", pending)
        try:
            decision = await future
        finally:
            self.decisions.pop(session_id, None)
            with contextlib.suppress(Exception):
                self.store.update(session_id, pending_approval=None)
        data: dict[str, Any] = {"call_id": call_id, "name": name, "decision": decision.decision}
        if decision.reason:
            data["reason"] = decision.reason
        if decision.arguments is not None:
            data["arguments"] = decision.arguments
        self.store.add_event(session_id, "approval_decided", data)
        return decision
