"""Pushing a local file to marked hosts from the fleet: asked, confirmed (count and names), one upload
per host with its progress, the outcome grouped; against real agents (one offline)."""

from __future__ import annotations

from conftest import SIZE, make_app, online_host, rows, wait_until

from oc_tui.screens.confirm import ConfirmScreen
from oc_tui.screens.push import PushFileScreen, PushScreen


async def test_push_a_file_to_marked_hosts(server, start_agent, tmp_path) -> None:
    homes = {}
    for name in ("push-1", "push-2"):
        homes[name] = tmp_path / f"home-{name}"
        homes[name].mkdir()
        await online_host(server, start_agent, name, HOME=str(homes[name]))
    server.register("push-3")  # never online: not pushed, said at once
    local = tmp_path / "app.conf"
    local.write_bytes(b"answer = 42\n" * 1000)
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(rows(app)) == 3, "three hosts")
        app.fleet.table.focus()
        await pilot.press("a", "P")
        await wait_until(pilot, lambda: isinstance(app.screen, PushFileScreen), "the push dialog")
        app.screen.query_one("#local").value = str(local)
        app.screen.query_one("#remote").value = "~/conf/app.conf"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        text = str(app.screen.query_one(".dialog-text").render())
        assert "push-1, push-2, push-3" in text and "~/conf/app.conf" in text
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, PushScreen), "the push screen")
        screen = app.screen
        assert isinstance(screen, PushScreen)
        await wait_until(pilot, lambda: len(screen.finished) == 3, "every host finished", timeout=20)
        assert screen.summary() == [
            ("push-[1-2]", 2, "done (11.7 KiB)"),
            ("push-3", 1, "pending — not pushed"),
        ]
    for name in ("push-1", "push-2"):
        assert (homes[name] / "conf" / "app.conf").read_bytes() == local.read_bytes()
