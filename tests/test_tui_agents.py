"""The Agents tab, a session's live log and ``:agents``, driven with Pilot against the REAL embedded
server and a REAL agent, the model being the scripted OpenAI-compatible server (tests/scripted_llm.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import SIZE, api, make_app, online_host, rows, wait_until
from scripted_llm import answer, call, scripted_llm
from test_ai_agents import configure
from textual.widgets import Markdown, Static

from oc_tui.screens.agent_session import AgentSessionScreen
from oc_tui.screens.agents import DispatchForm
from oc_tui.screens.agents_tab import AgentsTab
from oc_tui.screens.host import HostScreen
from oc_tui.screens.resource import ResourceScreen


def log_text(screen: AgentSessionScreen) -> str:
    """Everything the session's log shows, as plain text."""
    parts = []
    for widget in screen.query("#agent-log Static, #agent-log Markdown"):
        if isinstance(widget, Markdown):
            parts.append(widget.source)
        elif isinstance(widget, Static):
            parts.append(str(widget.render()))
    return "\n".join(parts)


async def test_dispatch_watch_and_approve_from_the_tui(server: Any, start_agent: Any, tmp_path: Path) -> None:
    """As the issue's "done when": dispatch from the Agents tab, watch the log, approve the write and the
    command; the file exists. Host text (a command's escape sequences, markup) shows escaped."""
    await online_host(server, start_agent, "agents-1")
    target = tmp_path / "x" / "hello.txt"
    with scripted_llm() as llm:
        llm.plan(
            call("write_file", path=str(target), content="hi\n"),
            call("run_command", command="printf '\\033[31m[red]x\\n'"),
            answer("Created **hello.txt**.\x1b]0;pwned\x07"),
        )
        async with api(server) as client:
            await configure(client, llm)
        app = make_app(server)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: rows(app).get("agents-1") == "online", "the host online")
            app.fleet.table.focus()
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, HostScreen), "the host screen")
            await pilot.press("a")
            tab = app.screen.query_one(AgentsTab)
            await wait_until(pilot, lambda: tab.table.has_focus, "the sessions list focused")
            await pilot.press("n")
            await wait_until(pilot, lambda: isinstance(app.screen, DispatchForm), "the dispatch form")
            await pilot.press(*"create hello.txt containing hi", "ctrl+s")
            await wait_until(pilot, lambda: isinstance(app.screen, AgentSessionScreen), "the session's log")
            screen = app.screen
            assert isinstance(screen, AgentSessionScreen)

            await wait_until(pilot, lambda: screen.pending is not None, "the write waiting for approval")
            assert screen.pending is not None and screen.pending["name"] == "write_file"
            assert not target.exists()
            await pilot.press("a")
            await wait_until(
                pilot,
                lambda: screen.pending is not None and screen.pending["name"] == "run_command",
                "the command",
            )
            assert target.read_text() == "hi\n"
            await pilot.press("a")
            await wait_until(pilot, lambda: screen.status == "completed", "the session completed", timeout=20)
            text = log_text(screen)
            assert "Created **hello.txt**.\\e]0;pwned\\a" in text
            assert "\\e[31m[red]x" in text and "\x1b" not in text
            assert "approved write_file" in text and "approved run_command" in text
            # cancel is offered only while the session runs
            assert screen.check_action("cancel_session", ()) is False

            await pilot.press("escape")
            await wait_until(pilot, lambda: isinstance(app.screen, HostScreen), "back on the host")
            await wait_until(
                pilot,
                lambda: [s.status for s in tab.table.items] == ["completed"],
                "the session listed, completed",
            )
            assert tab.table.items[0].turns_used == 3

            await pilot.press("escape")
            await pilot.press("colon", *"agents", "enter")
            await wait_until(pilot, lambda: isinstance(app.screen, ResourceScreen), ":agents")
            view = app.screen
            assert isinstance(view, ResourceScreen)
            await wait_until(pilot, lambda: len(view.table.items) == 1, "the fleet's sessions")
            assert view.table.items[0].host_name == "agents-1"
            await pilot.press("enter")
            await wait_until(
                pilot, lambda: isinstance(app.screen, AgentSessionScreen), "the log from :agents"
            )
            again = app.screen
            assert isinstance(again, AgentSessionScreen)
            await wait_until(pilot, lambda: again.status == "completed", "the replayed log")
            assert len(again.calls) == 2
