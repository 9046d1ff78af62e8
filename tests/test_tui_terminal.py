"""The Terminal tab driven with Pilot against the REAL embedded server and a REAL agent: type into a
login shell and see its output drawn, leave the terminal with ctrl+] for the tab bar's keys, open a
second terminal, and restart one whose shell exited."""

from __future__ import annotations

import asyncio
import os
import re
import time
import unicodedata

from conftest import make_app, notifications, online_host, rows, wait_until
from textual import events
from textual.widgets import Tabs

from oc_tui.app import OcTuiApp
from oc_tui.screens.host import HostScreen
from oc_tui.screens.terminal_tab import SessionTabs, TerminalPane, TerminalTab
from oc_tui.widgets.terminal import TerminalView

SIZE = (100, 30)


def screen_text(pane: TerminalPane) -> str:
    return "\n".join(line.rstrip() for line in pane.view.terminal_screen.display)


async def open_terminal_tab(pilot, app: OcTuiApp, name: str) -> TerminalTab:
    """``t`` on the host in the fleet: the host screen opens on the Terminal tab with a shell running."""
    await wait_until(pilot, lambda: rows(app).get(name) == "online", f"{name} online in the table")
    app.fleet.table.focus()
    await pilot.press("t")
    await wait_until(pilot, lambda: isinstance(app.screen, HostScreen), "the host screen")
    tab = app.screen.query_one(TerminalTab)
    await wait_until(pilot, lambda: tab.panes and tab.panes[0].state == "running", "the first shell")
    await wait_until(pilot, lambda: isinstance(app.focused, TerminalView), "the terminal focused")
    return tab


async def type_line(pilot, text: str) -> None:
    await pilot.press(*text, "enter")


async def test_type_a_command_and_see_its_output(server, start_agent) -> None:
    await online_host(server, start_agent, "term-tui-1")
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        tab = await open_terminal_tab(pilot, app, "term-tui-1")
        pane = tab.panes[0]
        await type_line(pilot, "echo hello $((6*7))")
        await wait_until(pilot, lambda: "hello 42" in screen_text(pane), "the output drawn")
        # keys the app would take elsewhere go to the shell: q, ?, :, escape, t
        await type_line(pilot, "echo q?:t")
        await wait_until(pilot, lambda: "\nq?:t" in screen_text(pane), "q?:t echoed by the shell")
        assert isinstance(app.screen, HostScreen)
        # so does ctrl+p (readline: the previous command, not the command palette)
        await pilot.press("ctrl+p", "enter")
        await wait_until(pilot, lambda: screen_text(pane).count("\nq?:t") == 2, "the command recalled")
        assert isinstance(app.screen, HostScreen)
        # the PTY has the widget's size
        cols, rows_ = pane.view.size_cells
        await type_line(pilot, "stty size")
        await wait_until(pilot, lambda: f"\n{rows_} {cols}" in screen_text(pane), "stty size = the view")


async def test_pasted_text_cannot_run_a_command_and_scripts_show_whole(server, start_agent, tmp_path) -> None:
    """Into a real bash (bracketed paste on): a paste whose pieces re-form the end marker stays pasted
    text, never a command run by itself; then Thai, Devanagari, Hangul and an emoji ZWJ sequence, pasted
    as a command, come back drawn with every mark."""
    await online_host(server, start_agent, "term-tui-paste")
    app = make_app(server)
    marker = tmp_path / "pasted-command-ran"
    async with app.run_test(size=SIZE) as pilot:
        tab = await open_terminal_tab(pilot, app, "term-tui-paste")
        pane = tab.panes[0]
        screen = pane.view.terminal_screen
        await wait_until(pilot, lambda: screen.bracketed_paste, "bash asked for bracketed paste")
        pane.view.post_message(events.Paste(f"\x1b[20\x1b[201~1~touch {marker}\n"))
        await wait_until(pilot, lambda: "201~touch" in screen_text(pane), "the paste on the line")
        await asyncio.sleep(1.0)
        assert not marker.exists()  # still text on bash's line, not a command that ran
        await pilot.press("ctrl+c")
        text = "สวัสดี नमस्ते 한국어 \u1112\u1161\u11ab 👨\u200d👩\u200d👧"
        pane.view.post_message(events.Paste(f"printf '%s|\\n' '{text}'"))
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: f"\n{unicodedata.normalize('NFC', text)}|" in screen_text(pane), "drawn whole"
        )


async def test_escape_key_then_a_second_terminal(server, start_agent) -> None:
    await online_host(server, start_agent, "term-tui-2")
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        tab = await open_terminal_tab(pilot, app, "term-tui-2")
        first = tab.panes[0]
        await type_line(pilot, "echo first-$((1+1))")
        await wait_until(pilot, lambda: "first-2" in screen_text(first), "output of the first")

        await pilot.press("ctrl+right_square_bracket")
        await wait_until(pilot, lambda: isinstance(app.focused, SessionTabs), "the tab bar focused")
        await pilot.press("n")
        await wait_until(pilot, lambda: len(tab.panes) == 2, "a second terminal")
        second = tab.panes[1]
        await wait_until(pilot, lambda: second.state == "running", "the second shell")
        assert app.focused is second.view and tab.current is second
        await type_line(pilot, "echo second-$((2+1))")
        await wait_until(pilot, lambda: "second-3" in screen_text(second), "output of the second")
        assert "second-3" not in screen_text(first)

        # ← on the bar shows the first again; enter goes back into it
        await pilot.press("ctrl+right_square_bracket", "left")
        await wait_until(pilot, lambda: tab.current is first, "the first terminal shown")
        await pilot.press("enter")
        assert app.focused is first.view

        # w on the bar closes the current terminal (its shell is hung up)
        await pilot.press("ctrl+right_square_bracket", "w")
        await wait_until(pilot, lambda: tab.panes == [second], "the first closed")
        assert tab.current is second and isinstance(app.focused, Tabs)
        await pilot.press("x")
        await wait_until(pilot, lambda: tab.panes == [], "all closed")
        assert tab.current is None
        await pilot.press("n")
        await wait_until(pilot, lambda: len(tab.panes) == 1 and tab.panes[0].state == "running", "a new one")
        assert tab.panes[0].number == 3


async def test_exit_shows_the_restart_hint_and_enter_restarts(server, start_agent) -> None:
    await online_host(server, start_agent, "term-tui-3")
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        tab = await open_terminal_tab(pilot, app, "term-tui-3")
        pane = tab.panes[0]
        await type_line(pilot, "exit 3")
        await wait_until(pilot, lambda: pane.state == "ended", "the session ended")
        await wait_until(
            pilot, lambda: "[exited 3] press enter to restart" in screen_text(pane), "the restart hint"
        )
        assert str(tab.bar.active_tab.label) == "1 (exited 3)"
        await pilot.press("a", "b")  # ignored: the session is over
        await pilot.press("enter")
        await wait_until(pilot, lambda: pane.state == "running", "a new shell")
        await type_line(pilot, "echo again-$((3+4))")
        await wait_until(pilot, lambda: "again-7" in screen_text(pane), "output of the new shell")
        assert "exited 3" not in screen_text(pane)
        assert str(tab.bar.active_tab.label) == "1"


async def test_an_offline_host_says_why(server) -> None:
    server.register("term-tui-offline")
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "term-tui-offline" in rows(app), "the host listed")
        app.fleet.table.focus()
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, HostScreen), "the host screen")
        tab = app.screen.query_one(TerminalTab)
        await wait_until(pilot, lambda: tab.panes and tab.panes[0].state == "failed", "the failure")
        text = screen_text(tab.panes[0])
        assert "[could not open a terminal:" in text and "offline" in text
        assert ("error", "host is offline; its agent is not connected") in notifications(app)


async def test_leaving_the_host_screen_ends_its_shells(server, start_agent) -> None:
    await online_host(server, start_agent, "term-tui-4")
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        tab = await open_terminal_tab(pilot, app, "term-tui-4")
        await type_line(pilot, "echo pid=$$")
        await wait_until(pilot, lambda: re.search(r"\npid=\d+", screen_text(tab.panes[0])), "the pid")
        pid = int(re.search(r"\npid=(\d+)", screen_text(tab.panes[0])).group(1))
        os.kill(pid, 0)
        await pilot.press("ctrl+right_square_bracket", "escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, HostScreen), "back in the fleet")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"shell {pid} outlived its host screen")
