"""The registry of ``:`` views and the generic resource screen: what a new section plugs into."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from oc_tui.app import OcTuiApp
from oc_tui.config import Profile
from oc_tui.screens import views
from oc_tui.screens.resource import ResourceScreen
from oc_tui.widgets.resource_table import Column, ResourceTable
from oc_tui.widgets.statuses import STATUSES, status_label

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@dataclass
class Tunnel:
    id: str
    slug: str
    status: str


COLUMNS = (
    Column("status", "STATUS", lambda tunnel, now: tunnel.status),
    Column("slug", "SLUG", lambda tunnel, now: tunnel.slug),
)


def make_app() -> OcTuiApp:
    profile = Profile(name="test", base_url="http://127.0.0.1:9", token="t", embedded=False)
    return OcTuiApp(profile, clock=lambda: NOW, live=False)


def test_commands_and_help_come_from_the_registry() -> None:
    assert views.command_names() == [
        "hosts",
        "tunnels",
        "agents",
        "clusters",
        "secrets",
        "groups",
        "quit",
        "q",
    ]
    assert views.help_rows() == [
        (":hosts", "The fleet view"),
        (":tunnels", "Every tunnel of the fleet"),
        (":agents", "AI agent sessions of the fleet"),
        (":clusters", "Inference clusters: list, create, topology, chat"),
        (":secrets", "The tenant's secrets (encrypted; for jobs)"),
        (":groups", "Host groups (saved views); :hosts group=NAME shows one"),
        (":q  :quit", "Quit oc-tui"),
    ]
    hosts = views.find_view("Fleet")
    assert hosts is not None and hosts.name == "hosts" and hosts.available
    assert views.find_view("nope") is None


def test_every_resource_kind_has_a_status_vocabulary() -> None:
    assert set(STATUSES) == {"hosts", "jobs", "tunnels", "agents", "clusters", "secrets"}
    assert set(STATUSES["clusters"]) == {"provisioning", "active", "stopped", "error", "destroyed"}
    assert set(STATUSES["agents"]) == {"pending", "running", "completed", "failed", "cancelled"}
    assert status_label("tunnels", "enabled") == "● enabled"
    assert status_label("tunnels", "weird") == "? weird"


async def test_resource_view_shows_its_resources() -> None:
    async def never(client: object) -> list[Tunnel]:
        raise AssertionError("not live: nothing is listed")

    view = views.ResourceView("tunnels", "Tunnels", kind="tunnels", columns=COLUMNS, load=never)
    assert view.available
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        assert view.open is not None
        view.open(app)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ResourceScreen)
        screen.post_message(
            ResourceScreen.Loaded([Tunnel("tun_1", "web", "enabled"), Tunnel("tun_2", "db", "disabled")])
        )
        await pilot.pause()
        table = screen.query_one(ResourceTable)
        assert [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)] == [
            ["● enabled", "web"],
            ["○ disabled", "db"],
        ]
        assert table.selected_id == "tun_1"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.fleet


async def test_coming_view_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """A view listed before it is built (none is today: a made-up one) says so when asked for."""
    monkeypatch.setattr(views, "VIEWS", (*views.VIEWS, views.View("someday", "Not built yet")))
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("colon", *"someday", "enter")
        await pilot.pause()
        assert any("not yet available" in n.message for n in app._notifications)
        await pilot.press("colon", *"hosts", "enter")
        await pilot.pause()
        assert app.screen is app.fleet


async def test_open_host_screen_follows_the_fleet() -> None:
    """A fresh record reaches an open host screen as a message (also under a dialog)."""
    from datetime import timedelta

    from oc_tui.api.models import Host, HostEvent
    from oc_tui.screens.fleet import FleetScreen
    from oc_tui.screens.help import HelpScreen
    from oc_tui.screens.host import HostScreen
    from oc_tui.widgets.host_detail import HostDetail

    before = NOW - timedelta(minutes=5)
    box = Host(
        id="host_00000001",
        name="box",
        status="online",
        tenant_id="t_test",
        labels={},
        created_at=before,
        updated_at=before,
        status_changed_at=before,
    )
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        app.fleet.post_message(FleetScreen.HostsLoaded([box]))
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, HostScreen)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        event = HostEvent(type="status_change", host_id=box.id, data={"status": "offline"}, timestamp=NOW)
        app.fleet.post_message(FleetScreen.HostEventArrived(event))
        await pilot.pause()
        await pilot.pause()
        assert screen.host.status == "offline"
        detail = screen.query_one(HostDetail)
        assert detail.host is not None and detail.host.status == "offline"
        assert screen.query_one("#host-info").has_class("-offline")
