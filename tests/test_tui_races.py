"""Screens under bursts: keys arriving faster than the app handles them (key repeat), and host updates
arriving while a screen opens or closes. Nothing raises, and the app settles where the keys say.

Keys are posted to the app in one burst (as a terminal delivers a held key), not pressed one by one
and awaited as ``pilot.press`` does; that is what queues tab activations behind each other.
"""

from __future__ import annotations

import asyncio

import pytest
from test_tui_snapshots import screenshots
from textual import events
from textual.widgets import TabbedContent, Tabs
from textual.widgets._tabbed_content import ContentTab, ContentTabs

from oc_tui.app import OcTuiApp
from oc_tui.screens.files_tab import FilesTab
from oc_tui.screens.fleet import FleetScreen
from oc_tui.screens.host import HOST_TABS, HostScreen
from oc_tui.screens.jobs_tab import JobsTab
from oc_tui.screens.overview_tab import OverviewTab

TAB_IDS = [tab.TAB_ID for tab in HOST_TABS]
SETTLE = 0.6
"""Seconds the app must stay unchanged after a burst to count as settled."""


def burst(app: OcTuiApp, keys: list[str]) -> None:
    """Post ``keys`` all at once, as a terminal delivers a held key."""
    for key in keys:
        character = key if len(key) == 1 else None
        app.post_message(events.Key(key, character))


async def settled(pilot, read, what: str) -> object:
    """Wait until ``read()`` stays the same for :data:`SETTLE` seconds (at most 10 s); returns it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    value, since = read(), loop.time()
    while loop.time() - since < SETTLE:
        assert loop.time() < deadline, f"{what} never settled (last: {value!r})"
        await pilot.pause(0.05)
        now = read()
        if now != value:
            value, since = now, loop.time()
    return value


async def open_host(pilot) -> HostScreen:
    await screenshots.fleet(pilot)
    await pilot.press("enter")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, HostScreen)
    return screen


def host_state(screen: HostScreen) -> tuple[str, str, str]:
    """The active pane, the tab strip's active tab and what has the focus."""
    focused = screen.app.focused
    return (
        screen.query_one(TabbedContent).active,
        screen.query_one(ContentTabs).active,
        f"{type(focused).__name__}#{focused.id}" if focused else "",
    )


@pytest.mark.parametrize(
    ("key", "count"), [("right", 10), ("right", 7), ("left", 6), ("tab", 8), ("shift+tab", 8)]
)
async def test_a_held_key_on_the_host_tab_strip_settles(key: str, count: int) -> None:
    app = screenshots.demo_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_host(pilot)
        strip = screen.query_one(ContentTabs)
        strip.focus()
        await pilot.pause()
        changes: list[str] = []
        tabbed = screen.query_one(TabbedContent)
        tabbed.watch(tabbed, "active", lambda value: changes.append(value), init=False)
        burst(app, [key] * count)
        active, strip_active, _focus = await settled(pilot, lambda: host_state(screen), "the host screen")
        assert strip_active == ContentTab.add_prefix(active)
        if key in ("right", "left"):  # every press reached the strip: the tab is the count-th one
            step = 1 if key == "right" else -1
            assert active == TAB_IDS[(step * count) % len(TAB_IDS)]
        flips = len(changes)
        await pilot.pause(SETTLE)
        assert len(changes) == flips, "tab changes after the burst"
        assert flips <= count + 2


@pytest.mark.parametrize("keys", [list("ojftd"), list("dtfjo"), list("jfjfjf"), ["t", "o", "d", "f"]])
async def test_bursts_of_tab_keys_settle_on_a_shown_tab(keys: list[str]) -> None:
    app = screenshots.demo_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_host(pilot)
        screen.query_one(ContentTabs).focus()
        await pilot.pause()
        burst(app, keys)
        active, strip_active, focus = await settled(pilot, lambda: host_state(screen), "the host screen")
        assert strip_active == ContentTab.add_prefix(active)
        focused = app.focused
        # the focus is in the active tab, or on the strip
        assert focused is not None
        assert isinstance(focused, Tabs) or any(node.id == active for node in focused.ancestors_with_self), (
            focus
        )


async def test_navigation_bursts_on_the_fleet_settle() -> None:
    app = screenshots.demo_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await screenshots.fleet(pilot)
        for keys in (
            ["down"] * 12,
            ["up"] * 12,
            ["tab"] * 7,
            ["shift+tab"] * 7,
            ["pagedown", "end", "home"] * 3,
        ):
            burst(app, keys)
            await settled(pilot, lambda: (app.focused, app.fleet.table.selected_host_id), "the fleet")
        assert isinstance(app.screen, FleetScreen)


async def test_host_updates_while_host_screens_open_and_close() -> None:
    """Host events, listings and live facts land while the host screen is being mounted and removed
    (enter and esc in one burst), in a tight loop: nothing raises (the app would fail the test)."""
    app = screenshots.demo_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await screenshots.fleet(pilot)
        fleet = app.fleet
        host = fleet._hosts.get(fleet.table.selected_host_id)
        assert host is not None
        for i in range(40):
            app.post_message(events.Key("enter", "\r"))
            for _ in range(i % 7):
                await asyncio.sleep(0)  # the screen a little further into its mounting each time
            screen = app.screen
            if isinstance(screen, HostScreen):
                for jobs in screen.query(JobsTab):
                    jobs.post_message(JobsTab.JobsLoaded(screenshots.demo_jobs()))
                    jobs.post_message(JobsTab.OutputArrived("job_demo0005", b"out\n"))
                for files in screen.query(FilesTab):
                    files.post_message(FilesTab.Listed(screenshots.demo_files()))
                for overview in screen.query(OverviewTab):
                    overview.post_message(OverviewTab.SysInfoLoaded(screenshots.demo_sysinfo()))
                screen.post_message(events.Key("jf"[i % 2], "jf"[i % 2]))
            for status in ("online", "offline", "online"):
                fleet.host_updated.publish(host.model_copy(update={"status": status}))
            for event in screenshots.demo_events()[:2]:
                fleet.post_message(FleetScreen.HostEventArrived(event))
            app.post_message(events.Key("escape", None))
            for _ in range(i % 5):
                await asyncio.sleep(0)
            for status in ("offline", "online"):
                fleet.host_updated.publish(host.model_copy(update={"status": status}))
        await pilot.pause(0.3)
        # esc may have landed in a dialog or the command line: back to the fleet
        while not isinstance(app.screen, FleetScreen):
            await pilot.press("escape")
            await pilot.pause(0.05)
        # the fleet is still alive and answers
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, HostScreen)
