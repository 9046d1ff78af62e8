"""The Tunnels tab and the ``:tunnels`` view, driven with Pilot against the REAL embedded server and a
REAL agent, and a real web app on the host (tests/tunnel_app.py, the ``app_port`` fixture)."""

from __future__ import annotations

import httpx
from conftest import SIZE, make_app, notifications, online_host, rows, wait_until
from test_tunnels import app_port  # noqa: F401  (the fixture)
from textual.widgets import Input

from oc_tui.screens.confirm import ConfirmScreen
from oc_tui.screens.host import HostScreen
from oc_tui.screens.resource import ResourceScreen
from oc_tui.screens.tunnels import TunnelForm
from oc_tui.screens.tunnels_tab import TunnelsTab


async def open_tunnels_tab(pilot, app, name: str) -> TunnelsTab:
    """From the fleet, open host ``name`` (once it is online) on its Tunnels tab."""
    await wait_until(pilot, lambda: rows(app).get(name) == "online", f"{name} online")
    app.fleet.table.focus()
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, HostScreen), "the host screen")
    await pilot.press("u")
    return app.screen.query_one(TunnelsTab)


async def test_create_toggle_copy_and_delete_a_tunnel(server, start_agent, app_port) -> None:  # noqa: F811
    await online_host(server, start_agent, "tunnels-1")
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        tab = await open_tunnels_tab(pilot, app, "tunnels-1")
        await wait_until(pilot, lambda: tab.table.has_focus, "the tunnel list focused")

        # the form checks before it sends, then creates
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, TunnelForm), "the form")
        await pilot.press(*"99999", "enter")
        await wait_until(pilot, lambda: "65535" in str(app.screen.query_one("#error").render()), "port error")
        app.screen.query_one("#port", Input).value = str(app_port)
        app.screen.query_one("#slug", Input).value = "tui-made"
        await pilot.press("enter")
        await wait_until(pilot, lambda: [t.slug for t in tab.table.items] == ["tui-made"], "the new tunnel")
        tunnel = tab.table.items[0]
        async with httpx.AsyncClient() as web:
            assert (await web.get(tunnel.public_url + "/echo/tui")).json()["path"] == "/echo/tui"

            # a slug clash is shown in the server's words, and the form stays open
            await pilot.press("n")
            await wait_until(pilot, lambda: isinstance(app.screen, TunnelForm), "the form again")
            app.screen.query_one("#port", Input).value = "81"
            app.screen.query_one("#slug", Input).value = "tui-made"
            await pilot.press("enter")
            await wait_until(pilot, lambda: "taken" in str(app.screen.query_one("#error").render()), "409")
            await pilot.press("escape")
            await wait_until(pilot, lambda: app.screen.query_one(TunnelsTab) is tab, "back on the tab")

            await pilot.press("space")
            await wait_until(pilot, lambda: tab.table.items[0].status == "disabled", "disabled")
            assert (await web.get(tunnel.public_url + "/echo/tui")).status_code == 503
            await pilot.press("space")
            await wait_until(pilot, lambda: tab.table.items[0].status == "enabled", "enabled again")

            await pilot.press("c")
            assert ("information", tunnel.public_url) in notifications(app)

            await pilot.press("delete")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
            await pilot.press("y")
            await wait_until(pilot, lambda: tab.table.items == [], "the tunnel gone")
            assert (await web.get(tunnel.public_url + "/echo/tui")).status_code == 404


async def test_tunnels_view_lists_the_fleet(server, start_agent, client) -> None:
    first = await online_host(server, start_agent, "view-1")
    second = await online_host(server, start_agent, "view-2")
    await client.create_tunnel(first["id"], 3000, slug="view-one")
    await client.create_tunnel(second["id"], 4000, slug="view-two", auth_mode="password", password="pw")
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon", *"tunnels", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ResourceScreen), "the view")
        table = app.screen.table
        await wait_until(pilot, lambda: len(table.items) == 2, "both tunnels")
        shown = {t.slug: (t.host_name, t.auth_mode) for t in table.items}
        assert shown == {"view-one": ("view-1", "public"), "view-two": ("view-2", "password")}

        # the tab's actions work here too: switch view-one off, delete view-two
        def row_of(slug: str) -> int:
            return [t.slug for t in table.items].index(slug)

        table.focus()
        table.move_cursor(row=row_of("view-one"))
        await pilot.press("space")
        await wait_until(pilot, lambda: table.items[row_of("view-one")].status == "disabled", "switched off")
        one = table.items[row_of("view-one")]
        assert (await client.get_tunnel(first["id"], one.id)).enabled is False
        table.move_cursor(row=row_of("view-two"))
        await pilot.press("delete")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")
        await wait_until(pilot, lambda: [t.slug for t in table.items] == ["view-one"], "view-two deleted")


async def test_inspector_follows_requests_and_replays(server, start_agent, client, app_port) -> None:  # noqa: F811
    from oc_tui.screens.tunnel_inspector import TunnelInspectorScreen

    host = await online_host(server, start_agent, "inspect-1")
    tunnel = await client.create_tunnel(host["id"], app_port, slug="inspect-me")
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot, httpx.AsyncClient() as web:
        tab = await open_tunnels_tab(pilot, app, "inspect-1")
        await wait_until(pilot, lambda: len(tab.table.items) == 1, "the tunnel listed")
        await web.post(tunnel.public_url + "/echo/before", json={"n": 1})
        await pilot.press("i")
        await wait_until(pilot, lambda: isinstance(app.screen, TunnelInspectorScreen), "the inspector")
        inspector = app.screen
        assert isinstance(inspector, TunnelInspectorScreen)
        await wait_until(pilot, lambda: len(inspector.table.items) == 1, "the kept request")
        await web.get(tunnel.public_url + "/echo/live?x=1")
        await wait_until(pilot, lambda: len(inspector.table.items) == 2, "the live request")
        assert inspector.table.items[0].target == "/echo/live?x=1"
        inspector.table.move_cursor(row=1)

        def detail() -> str:
            return str(inspector.query_one("#inspector-text").render())

        await wait_until(pilot, lambda: "POST /echo/before" in detail(), "the highlighted request's detail")
        assert '"n": 1' in detail()  # JSON pretty-printed
        await pilot.press("p")
        await wait_until(
            pilot, lambda: any(r.replay_of is not None for r in inspector.table.items), "the replay"
        )
        replayed = next(r for r in inspector.table.items if r.replay_of is not None)
        assert replayed.target == "/echo/before" and replayed.status == 200
