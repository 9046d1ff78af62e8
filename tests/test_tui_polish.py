"""First-day polish (issue 19): keys typed in a burst, honest words, the keys a footer offers, and the
screens at 80x24. Driven on the demo fleet of scripts/screenshots.py (no server: fast); the parts that
need the real control plane are in the modules of their section.
"""

from __future__ import annotations

from conftest import wait_until
from test_tui_snapshots import screenshots
from textual import events
from textual.keys import _character_to_key
from textual.widgets import Footer, Label

from oc_tui.app import OcTuiApp
from oc_tui.screens.fleet import FleetScreen
from oc_tui.screens.run_command import RunCommandScreen


def burst(app: OcTuiApp, text: str) -> None:
    """Deliver ``text`` as one burst of keys (a paste, a fast typist, tmux send-keys): nothing waits
    for the app between them."""
    for character in text:
        app.post_message(events.Key(_character_to_key(character), character))


def footer_keys(app: OcTuiApp) -> set[str]:
    """The keys the footer of the active screen offers."""
    return {binding.key for _, binding, _, _ in app.screen.active_bindings.values() if binding.show}


async def test_fanout_dialog_takes_a_burst_and_says_why_it_stays() -> None:
    app = screenshots.demo_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await screenshots.fleet(pilot)
        burst(app, "xuname -a")  # x opens the dialog; the command typed at once is not lost
        await wait_until(pilot, lambda: isinstance(app.screen, RunCommandScreen), "the fan-out dialog")
        field = app.screen.query_one("#fanout-command")
        await wait_until(pilot, lambda: getattr(field, "value", "") == "uname -a", "the whole command")
        # the dialog's footer offers its own keys, not the fleet's (x, n, space do nothing here)
        assert app.screen.query(Footer) and footer_keys(app) == {"escape"}

        await pilot.press("ctrl+u", "enter")  # nothing to run: said in the dialog, which stays
        error = app.screen.query_one("#error", Label)
        assert isinstance(app.screen, RunCommandScreen) and error.display
        assert "type a command" in str(error.content)
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen)
