"""The fleet view driven with Pilot against the REAL embedded server and REAL agents (tests/conftest.py).

Each test gets a tenant of its own, so the table shows exactly the hosts the test registered.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from conftest import SIZE, make_app, notifications, rows, wait_until
from textual.pilot import Pilot

from oc_tui.api.models import HostSysInfo
from oc_tui.app import OcTuiApp
from oc_tui.config import Profile
from oc_tui.screens.confirm import ConfirmRevokeScreen
from oc_tui.screens.fleet import FleetScreen
from oc_tui.screens.help import HelpScreen
from oc_tui.screens.host_key import HostKeyScreen
from oc_tui.screens.labels import EditLabelsScreen
from oc_tui.screens.register import RegisterHostScreen
from oc_tui.widgets.host_detail import HostDetail


def feed_text(app: OcTuiApp) -> str:
    return "\n".join(line.text for line in app.fleet.query_one("#events").lines)


async def type_filter(pilot: Pilot, text: str) -> None:
    await pilot.press("escape", "slash", *text)
    await pilot.pause()


async def test_hosts_appear_and_filter_by_name_label_and_status(server) -> None:
    server.register("web-1", region="eu-west", labels={"env": "prod"})
    server.register("web-2", labels={"env": "dev"})
    server.register("db-1", labels={"env": "prod", "role": "db"})
    old = server.register("old-box")
    with server.client() as client:
        assert client.delete(f"/hosts/{old['id']}").status_code == 204

    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(rows(app)) == 4, "four hosts")
        assert rows(app) == {"db-1": "pending", "old-box": "revoked", "web-1": "pending", "web-2": "pending"}

        await type_filter(pilot, "web")
        assert set(rows(app)) == {"web-1", "web-2"}
        await type_filter(pilot, "env=prod")
        assert set(rows(app)) == {"web-1", "db-1"}
        await type_filter(pilot, "status:revoked")
        assert set(rows(app)) == {"old-box"}
        await type_filter(pilot, "pending")
        assert set(rows(app)) == {"web-1", "web-2", "db-1"}
        await type_filter(pilot, "web env=prod")
        assert set(rows(app)) == {"web-1"}

        await pilot.press("escape")
        await pilot.pause()
        assert len(rows(app)) == 4
        assert app.query_one("#filter").value == ""


async def test_every_page_of_hosts_is_shown(server) -> None:
    async with httpx.AsyncClient(base_url=server.api_url, headers=server.headers(), timeout=30) as http:
        responses = await asyncio.gather(
            *(http.post("/hosts", json={"name": f"h-{n:03d}"}) for n in range(105))
        )
    assert {response.status_code for response in responses} == {201}

    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(rows(app)) == 105, "105 hosts (two pages)")


async def test_register_shows_the_key_once_with_the_agent_command(server) -> None:
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, RegisterHostScreen), "the register dialog")

        # The server's validation message is shown inline; the dialog stays open to fix it.
        await pilot.press(*"new-box", "tab", *"Not A Slug", "tab", *"env=prod, team=web", "enter")
        error = app.screen.query_one("#error")
        await wait_until(pilot, lambda: "slug" in str(error.render()), "the server's 400 message inline")
        assert any(severity == "error" and "slug" in message for severity, message in notifications(app))
        assert isinstance(app.screen, RegisterHostScreen)

        region = app.screen.query_one("#region")
        region.value = "eu-west"
        region.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, HostKeyScreen), "the host-key dialog")

        key_screen = app.screen
        assert isinstance(key_screen, HostKeyScreen)
        command = key_screen.command
        assert command.startswith("OC_HOST_KEY=hk_") and command.endswith(
            f"oc-agent --server {server.base_url}"
        )
        host_key = command.split(" ", 1)[0].removeprefix("OC_HOST_KEY=")
        assert host_key in str(key_screen.query_one("#host-key").render())
        assert key_screen.query_one("#command").text == command

        await pilot.press("c")
        assert app.clipboard == command

        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen), "back on the fleet")
        assert rows(app) == {"new-box": "pending"}

    with server.client() as client:
        [host] = client.get("/hosts").json()["data"]
    assert host["name"] == "new-box"
    assert host["region"] == "eu-west"
    assert host["labels"] == {"env": "prod", "team": "web"}


async def test_revoke_asks_first_and_the_row_turns_revoked(server) -> None:
    server.register("alpha")
    target = server.register("beta")
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(rows(app)) == 2, "two hosts")
        app.fleet.table.select_host(target["id"])
        await pilot.pause()

        await pilot.press("ctrl+d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmRevokeScreen), "the confirm dialog")
        assert "beta" in str(app.screen.query_one(".dialog-title").render())
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen), "the dialog closed")
        assert server.get_host(target["id"])["status"] == "pending"

        await pilot.press("ctrl+d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmRevokeScreen), "the confirm dialog")
        await pilot.press("y")
        await wait_until(pilot, lambda: rows(app).get("beta") == "revoked", "beta revoked in the table")
        assert rows(app)["alpha"] == "pending"
        assert app.fleet.table.selected_host_id == target["id"]

        await pilot.press("l")  # a revoked host's labels can no longer change: say so, open nothing
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        assert any("revoked" in n.message for n in app._notifications)
    assert server.get_host(target["id"])["status"] == "revoked"


async def test_edit_labels_shows_server_errors_and_saves(server) -> None:
    host = server.register("gamma", labels={"env": "dev"})
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: rows(app) == {"gamma": "pending"}, "gamma")
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, EditLabelsScreen), "the labels editor")
        field = app.screen.query_one("#labels")
        assert field.value == "env=dev"

        field.value = "bad key!=x"
        await pilot.press("enter")
        error = app.screen.query_one("#error")
        await wait_until(pilot, lambda: "label key" in str(error.render()), "the server's 400 message")

        field.value = "env=prod, team=web"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen), "the editor closed")
        labels_cell = app.fleet.table.get_cell(host["id"], "labels").plain
        assert labels_cell == "env=prod, team=web"
    assert server.get_host(host["id"])["labels"] == {"env": "prod", "team": "web"}


async def test_live_status_changes_arrive_without_stealing_the_cursor(server, start_agent) -> None:
    server.register("bbb-watched")
    live = server.register("zzz-live")
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(rows(app)) == 2, "two hosts")
        await wait_until(
            pilot, lambda: app.fleet._stream_down is False and app.fleet.banner.kind == "ok", "stream"
        )
        watched = app.fleet.table.selected_host_id
        assert watched is not None and watched != live["id"]

        server.register("aaa-added-above")  # a new row above the cursor must not move the selection
        await wait_until(pilot, lambda: len(rows(app)) == 3, "the new host")
        assert app.fleet.table.selected_host_id == watched
        assert app.fleet.table.cursor_row == 1

        agent = start_agent(live["host_key"])
        await wait_until(pilot, lambda: rows(app).get("zzz-live") == "online", "zzz-live online", timeout=15)
        assert app.fleet.table.selected_host_id == watched  # the update did not move the cursor

        # The detail pane of an online host shows live facts from its agent.
        app.fleet.table.select_host(live["id"])
        detail = app.fleet.query_one(HostDetail)
        await wait_until(
            pilot, lambda: isinstance(detail.sysinfo, HostSysInfo), f"live sysinfo ({detail.sysinfo})"
        )
        assert detail.sysinfo.hostname

        agent.stop(9)  # SIGKILL: the connection drops without a goodbye
        await wait_until(
            pilot, lambda: rows(app).get("zzz-live") == "offline", "zzz-live offline", timeout=15
        )
        assert "online (was pending)" in feed_text(app) and "offline (was online)" in feed_text(app)


async def test_server_killed_shows_unreachable_and_recovers(server) -> None:
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(
            pilot, lambda: app.fleet.banner.kind == "ok" and not app.fleet.table.loading, "loaded"
        )
        server.register("delta")  # arrives as an event, so the stream has an id to resume from
        await wait_until(pilot, lambda: rows(app) == {"delta": "pending"}, "delta")
        banner = app.fleet.banner

        server.process.kill()
        await wait_until(pilot, lambda: "unreachable" in banner.message, "the unreachable banner")
        assert banner.kind == "error"
        await pilot.press("r")  # a request while it is down becomes a notification, not a crash
        await wait_until(
            pilot,
            lambda: any(sev == "error" and "unreachable" in msg for sev, msg in notifications(app)),
            "an error notification",
        )

        await asyncio.to_thread(server.restart)
        await wait_until(pilot, lambda: banner.kind == "ok", "the banner cleared", timeout=20)
        added = server.register("epsilon")
        await wait_until(pilot, lambda: rows(app).get("epsilon") == "pending", "live again", timeout=10)
        assert added["id"] in app.fleet.table.shown_ids
        assert "connection lost" in feed_text(app) and "reachable again" in feed_text(app)


async def test_help_command_mode_and_palette(server) -> None:
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen), "help closed")

        await pilot.press("colon", *"hosts", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen), "the fleet view")
        assert not [n for n in notifications(app) if n[0] == "error"]

        await pilot.press("colon", *"nope", "enter")
        await wait_until(
            pilot,
            lambda: ("error", "unknown command :nope — try :hosts or :q") in notifications(app),
            "an unknown-command notification",
        )
        await pilot.press("colon", *"clusters", "enter")  # every view of the design exists now
        await wait_until(pilot, lambda: app.screen is not app.fleet, ":clusters open")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.fleet, "back on the fleet")

        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"register host")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: isinstance(app.screen, RegisterHostScreen), "register from the palette"
        )
        await pilot.press("escape")

        await pilot.press("colon", "q", "enter")
        await wait_until(pilot, lambda: not app.is_running, "the app quit")


@pytest.mark.parametrize("theme", ["oc-dark", "oc-light"])
async def test_themes_load(server, theme: str) -> None:
    profile = Profile(name="test", base_url=server.base_url, token=server.token, embedded=False)
    app = OcTuiApp(profile, theme=theme)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == theme


async def test_the_agent_command_names_the_servers_public_url(tmp_path: Path) -> None:
    """A control plane started with a public URL: the command handed out for a new host uses that URL
    (what other machines reach), not the loopback URL this app talks to, and gives no loopback advice."""
    from conftest import Server, ServerProcess

    proc = ServerProcess(
        tmp_path / "plane", tmp_path / "server.log", env={"OC_PUBLIC_URL": "http://fleet.example:8787"}
    )
    await asyncio.to_thread(proc.start)
    try:
        app = make_app(Server(proc))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("n")
            await wait_until(pilot, lambda: isinstance(app.screen, RegisterHostScreen), "the register dialog")
            await pilot.press(*"far-box", "enter")
            await wait_until(pilot, lambda: isinstance(app.screen, HostKeyScreen), "the host-key dialog")
            key_screen = app.screen
            assert isinstance(key_screen, HostKeyScreen)
            assert key_screen.command.endswith(" oc-agent --server http://fleet.example:8787")
            assert key_screen.hint is None
    finally:
        await asyncio.to_thread(proc.stop)


async def test_a_refused_token_gets_a_lasting_banner_naming_the_profile(server) -> None:
    """A wrong API token is not "0 hosts": a banner that stays says which profile's token was refused
    and how to set it (the toast alone vanished after 4 s)."""
    profile = Profile(name="work", base_url=server.base_url, token="not-a-token", embedded=False)
    app = OcTuiApp(profile)
    async with app.run_test(size=SIZE) as pilot:
        banner = app.fleet.banner
        await wait_until(pilot, lambda: "refused the API token" in banner.message, "the 401 banner")
        assert "profile 'work'" in banner.message and "OC_TUI_TOKEN" in banner.message
        assert banner.kind == "error"
        await pilot.pause(1.0)
        assert "refused the API token" in banner.message  # still there: it lasts


async def test_the_last_host_list_is_drawn_at_start_marked_stale_until_the_server_answers(
    server, tmp_path: Path
) -> None:
    """oc-tui keeps the host list it was shown (0600, in the data dir) and the next start draws it at
    once, marked stale, until the control plane's own answer replaces it; a server that cannot be
    reached leaves it stale; another token of the same server has a cache of its own."""
    import json
    import socket
    import stat

    from oc_tui import fleet_cache

    server.register("cached-1")

    def app_for(base_url: str) -> OcTuiApp:
        profile = Profile(name="test", base_url=base_url, token=server.token, embedded=False)
        return OcTuiApp(profile, data_dir=tmp_path, host_cache=True)

    def info(app: OcTuiApp) -> str:
        return str(app.fleet.query_one("#fleet-info").render())

    path = fleet_cache.cache_path(tmp_path, "test", server.base_url, server.token)
    app = app_for(server.base_url)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "cached-1" in rows(app) and path.exists(), "hosts and their cache")
        assert "stale" not in info(app)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    saved = path.read_text()
    assert "cached-1" in saved and server.token not in saved
    assert fleet_cache.cache_path(tmp_path, "test", server.base_url, "another-token") != path

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{sock.getsockname()[1]}"
    (gone_path := fleet_cache.cache_path(tmp_path, "test", gone, server.token)).write_text(saved)
    app = app_for(gone)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "cached-1" in rows(app), "the cached list")
        await wait_until(pilot, lambda: "unreachable" in str(app.fleet.banner.render()), "the banner")
        assert "stale" in info(app)  # no answer yet: still the last session's list
    assert gone_path.read_text() == saved

    server.register("cached-2")  # the server now knows more than the cache
    app = app_for(server.base_url)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "cached-1" in rows(app), "a host list")
        await wait_until(pilot, lambda: "cached-2" in rows(app) and "stale" not in info(app), "the answer")
        await wait_until(pilot, lambda: "cached-2" in path.read_text(), "the new list kept")
    assert {"cached-1", "cached-2"} <= {host["name"] for host in json.loads(path.read_text())["hosts"]}
