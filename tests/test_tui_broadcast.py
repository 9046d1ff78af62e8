"""A terminal on each marked host with opt-in input broadcast, against real agents: asked first, one
typed line reaches every shell while broadcast is on (banner shown), only the focused one when off."""

from __future__ import annotations

from conftest import SIZE, make_app, online_host, rows, wait_until

from oc_tui.screens.broadcast import BroadcastScreen
from oc_tui.screens.confirm import ConfirmScreen
from oc_tui.screens.terminal_tab import TerminalPane

LEAVE = "ctrl+right_square_bracket"


def screen_text(pane: TerminalPane) -> str:
    return "\n".join(line.rstrip() for line in pane.view.terminal_screen.display)


async def test_broadcast_input_reaches_every_terminal(server, start_agent) -> None:
    for name in ("bc-1", "bc-2", "bc-3"):  # sh: quick to start, whatever the machine's bash profile does
        await online_host(server, start_agent, name, SHELL="/bin/sh")
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(rows(app)) == 3, "three hosts")
        app.fleet.table.focus()
        await pilot.press("a", "T")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "asked first")
        assert "bc-1, bc-2, bc-3" in str(app.screen.query_one(".dialog-text").render())
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, BroadcastScreen), "the terminals")
        screen = app.screen
        assert isinstance(screen, BroadcastScreen)
        panes = screen.panes
        await wait_until(pilot, lambda: all(p.state == "running" for p in panes), "three shells", timeout=20)
        banner = screen.query_one("#broadcast-banner")
        assert "BROADCAST ON" not in str(banner.render())  # off until asked for
        await pilot.press(LEAVE, "b", "enter")
        assert screen.broadcast and "BROADCAST ON" in str(banner.render()) and banner.has_class("-on")
        await pilot.press(*"echo hi-$((6*7))", "enter")
        await wait_until(
            pilot,
            lambda: all("\nhi-42" in screen_text(p) for p in panes),
            "the line ran in every shell",
            timeout=15,
        )
        await pilot.press(LEAVE, "b", "enter", *"echo solo-$((1+1))", "enter")
        assert not screen.broadcast
        await wait_until(pilot, lambda: "\nsolo-2" in screen_text(panes[0]), "the focused shell ran it")
        await pilot.pause(0.5)
        assert not any("solo" in screen_text(p) for p in panes[1:])
