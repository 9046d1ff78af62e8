"""The virtual host table inside the real app (``live=False``: hosts arrive through the fleet screen's
messages, as in scripts/screenshots.py): order, filter, cursor, keys, mouse, marks, themes, and that
10,000 hosts cost only the rows on screen.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from textual.pilot import Pilot

from oc_tui.api.models import Host, HostEvent
from oc_tui.app import OcTuiApp
from oc_tui.config import Profile
from oc_tui.screens.fleet import FleetScreen
from oc_tui.widgets.host_table import MARK, HostTable

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
SIZE = (120, 40)


def host(number: int, name: str, status: str = "online", **labels: str) -> Host:
    changed = NOW - timedelta(minutes=number)
    return Host(
        id=f"host_{number:08d}",
        name=name,
        status=status,
        tenant_id="t_test",
        labels=labels,
        created_at=changed,
        updated_at=changed,
        status_changed_at=changed,
    )


def many(n: int) -> list[Host]:
    return [
        host(i, f"h-{i:05d}", "online" if i % 3 else "offline", env="prod" if i % 2 else "dev")
        for i in range(n)
    ]


def make_app() -> OcTuiApp:
    profile = Profile(name="test", base_url="http://127.0.0.1:1", token=None, embedded=False)
    return OcTuiApp(profile, clock=lambda: NOW, live=False)


class Counting:
    """Counts the rows the table turns into cells (it should be only the rows drawn)."""

    def __init__(self, table: HostTable) -> None:
        self.keys: list[str] = []
        original = table.row_cells

        def row_cells(key: str):  # noqa: ANN202 - same as HostTable.row_cells
            self.keys.append(key)
            return original(key)

        table.row_cells = row_cells  # type: ignore[method-assign]


async def load(pilot: Pilot, hosts: list[Host]) -> HostTable:
    screen = pilot.app.screen
    assert isinstance(screen, FleetScreen)
    screen.post_message(FleetScreen.HostsLoaded(hosts))
    await pilot.pause()
    return screen.table


def names(table: HostTable) -> list[str]:
    return [table.get_cell(host_id, "name").plain for host_id in table.shown_ids]


def status_event(host_id: str, status: str) -> FleetScreen.HostEventArrived:
    event = HostEvent(type="status_change", host_id=host_id, data={"status": status}, timestamp=NOW)
    return FleetScreen.HostEventArrived(event)


async def test_sorted_by_name_filtered_and_the_cursor_follows_the_host() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        table = await load(
            pilot, [host(1, "web-2"), host(2, "Db-1", env="prod"), host(3, "web-1", env="prod")]
        )
        assert names(table) == ["Db-1", "web-1", "web-2"]
        table.select_host("host_00000001")  # web-2
        await pilot.pause()
        assert table.cursor_row == 2

        app.fleet.post_message(FleetScreen.HostFetched(host(4, "aaa")))  # a new row above the cursor
        await pilot.pause()
        assert names(table) == ["aaa", "Db-1", "web-1", "web-2"]
        assert table.selected_host_id == "host_00000001" and table.cursor_row == 3

        await pilot.press("slash", *"env=prod", "enter")
        await pilot.pause()
        assert names(table) == ["Db-1", "web-1"]
        table.select_host("host_00000003")  # web-1
        await pilot.pause()
        app.fleet.post_message(status_event("host_00000002", "offline"))  # changes, still matches
        app.fleet.post_message(FleetScreen.HostFetched(host(5, "ccc", env="prod")))  # new and matching
        app.fleet.post_message(FleetScreen.HostFetched(host(6, "bbb", env="dev")))  # new, filtered out
        await pilot.pause()
        assert names(table) == ["ccc", "Db-1", "web-1"]
        assert table.get_cell("host_00000002", "status").plain == "○ offline"
        assert table.selected_host_id == "host_00000003"

        app.fleet.post_message(FleetScreen.HostFetched(host(3, "web-1", env="dev")))  # leaves the filter
        await pilot.pause()
        assert names(table) == ["ccc", "Db-1"]
        await pilot.press("escape")
        await pilot.pause()
        assert names(table) == ["aaa", "bbb", "ccc", "Db-1", "web-1", "web-2"]

        app.fleet.post_message(FleetScreen.HostFetched(host(1, "zzz")))  # a rename moves the row
        app.fleet.post_message(FleetScreen.HostGone("host_00000004"))
        await pilot.pause()
        assert names(table) == ["bbb", "ccc", "Db-1", "web-1", "zzz"]


async def test_keys_mouse_and_messages() -> None:
    app = make_app()
    selected: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        table = await load(pilot, many(100))
        app.fleet.action_open_host = lambda tab="overview": selected.append(table.selected_host_id)  # type: ignore[method-assign]
        assert table.cursor_row == 0
        await pilot.press("j", "down", "j")
        assert table.cursor_row == 3
        await pilot.press("k")
        assert table.cursor_row == 2
        await pilot.press("pagedown")
        page = table.cursor_row - 2
        assert page >= 5 and table.scroll_y > 0
        await pilot.press("pageup")
        assert table.cursor_row == 2
        await pilot.press("G")
        assert table.cursor_row == 99 and table.scroll_y == table.max_scroll_y
        await pilot.press("home")
        assert table.cursor_row == 0 and table.scroll_y == 0
        await pilot.press("end")
        assert table.cursor_row == 99
        await pilot.press("g")
        assert table.cursor_row == 0
        # the detail pane follows the cursor (RowHighlighted reaches the screen)
        await pilot.press("j")
        await pilot.pause()
        assert app.fleet.query_one("HostDetail").host.id == table.selected_host_id

        # a click highlights a row; a click on the highlighted row (or enter) opens it
        region = table.content_region
        await pilot.click(HostTable, offset=(region.x - table.region.x + 3, region.y - table.region.y + 5))
        await pilot.pause()
        assert table.cursor_row == 4 and selected == []
        await pilot.click(HostTable, offset=(region.x - table.region.x + 3, region.y - table.region.y + 5))
        await pilot.pause()
        assert selected == [table.shown_ids[4]]
        await pilot.press("enter")
        await pilot.pause()
        assert selected == [table.shown_ids[4]] * 2


async def test_marks_redraw_only_their_rows() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        table = await load(pilot, many(50))
        await pilot.press("space", "space")  # mark, move on: two hosts marked
        await pilot.pause()
        first, second = table.shown_ids[:2]
        assert table.marked == {first, second}
        assert (
            table.get_cell(first, "mark").plain == MARK
            and table.get_cell(table.shown_ids[2], "mark").plain == " "
        )
        assert "2 marked" in str(app.fleet.query_one("#fleet-info").render())

        counting = Counting(table)
        await pilot.press("space")  # the third: its row, and the rows the cursor left and entered
        await pilot.pause()
        assert set(counting.keys) <= set(table.shown_ids[2:4])
        await pilot.press("a")  # every host shown
        await pilot.pause()
        assert table.marked == set(table.shown_ids)


async def test_ten_thousand_hosts_cost_only_the_rows_on_screen() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        table = app.fleet.table
        counting = Counting(table)
        table_hosts = many(10_000)
        await load(pilot, table_hosts)
        await pilot.pause(0.2)  # column widths of the rows off screen are measured in steps
        assert table.row_count == 10_000
        visible = table.scrollable_content_region.height
        assert 0 < len(counting.keys) <= 2 * visible
        assert table.virtual_size.height == 10_001  # every row is scrollable to

        # a live status change redraws one row, and does not rebuild the row list
        counting.keys.clear()
        rows_before = table.row_keys
        target = table.shown_ids[3]
        app.fleet.post_message(status_event(target, "error"))
        await pilot.pause()
        assert table.row_keys is rows_before
        assert counting.keys == [target]
        assert table.get_cell(target, "status").plain == "! error"

        # a filter over all of them draws only the matching rows on screen
        await pilot.press("G")  # from the bottom: the few rows left must come into view
        assert table.scroll_y > 9000
        await pilot.press("slash", *"h-099")
        await pilot.pause()
        counting.keys.clear()
        await pilot.press("9")
        await pilot.pause()
        drawn = list(counting.keys)
        assert names(table) == [f"h-0999{i}" for i in range(10)]
        assert set(drawn) <= set(table.shown_ids) and len(drawn) <= 2 * 10
        assert table.scroll_y == 0 and "h-09990" in "".join(s.text for s in table.render_line(1))


async def test_a_new_theme_redraws_the_cells_in_its_colours() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        table = await load(pilot, [host(1, "web-1"), host(2, "web-2")])
        app.theme = "oc-dark"
        await pilot.pause()
        dark = table.get_cell("host_00000002", "status").style
        app.theme = "oc-light"
        await pilot.pause()
        light = table.get_cell("host_00000002", "status").style
        assert dark != light
        strip = table.render_line(2)  # web-2's row (not under the cursor), drawn in the new colours
        assert any(segment.style and segment.style.color == light.color for segment in strip)
