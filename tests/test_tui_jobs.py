"""The Jobs tab and the fan-out, driven with Pilot against the REAL embedded server and REAL agents
running real processes (tests/conftest.py)."""

from __future__ import annotations

import asyncio

from conftest import SIZE, make_app, online_host, rows, wait_until
from textual.widgets import Label, TabbedContent

from oc_tui.app import OcTuiApp
from oc_tui.screens.confirm import ConfirmScreen
from oc_tui.screens.fanout import FanoutScreen
from oc_tui.screens.fleet import FleetScreen
from oc_tui.screens.host import HostScreen
from oc_tui.screens.jobs_tab import JobsTab
from oc_tui.screens.run_command import RunCommandScreen
from oc_tui.widgets.fanout_table import GroupTable


async def open_jobs_tab(pilot, app: OcTuiApp, name: str) -> JobsTab:
    await wait_until(pilot, lambda: rows(app).get(name) == "online", f"{name} online in the table")
    app.fleet.table.focus()
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, HostScreen), "the host screen")
    app.screen.query_one(TabbedContent).active = "jobs"
    tab = app.screen.query_one(JobsTab)
    await wait_until(pilot, lambda: tab.command_line.has_focus, "the command line focused")
    return tab


def statuses(tab: JobsTab) -> list[tuple[str, str, int | None]]:
    return [(job.command, job.status, job.exit_code) for job in tab.job_list.jobs]


async def test_run_a_command_and_see_its_output(server, start_agent) -> None:
    await online_host(server, start_agent, "jobs-1")
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        tab = await open_jobs_tab(pilot, app, "jobs-1")
        await pilot.press(*"echo hi; printf '\\033[31mred\\033[0m\\n'", "enter")
        await wait_until(
            pilot, lambda: [s[1:] for s in statuses(tab)] == [("completed", 0)], "the job completed, exit 0"
        )
        await wait_until(pilot, lambda: "red" in tab.output.plain_lines(), "the output")
        lines = tab.output.plain_lines()
        assert lines[:2] == ["hi", "red"]
        assert lines[-1].startswith("── completed · exit 0")
        assert tab.command_line.value == ""

        # the list keeps the newest first, and the new job's output replaces the old one's
        await pilot.press(*"echo second", "enter")
        await wait_until(
            pilot, lambda: len(statuses(tab)) == 2 and "second" in tab.output.plain_lines(), "2nd"
        )
        assert statuses(tab)[0][0] == "echo second"

        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen), "back in the fleet")


async def test_command_history_up_and_down(server, start_agent) -> None:
    host = await online_host(server, start_agent, "jobs-2")
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        tab = await open_jobs_tab(pilot, app, "jobs-2")
        line = tab.command_line
        for command in ("echo one", "echo two"):
            await pilot.press(*command, "enter")
        await wait_until(pilot, lambda: len(statuses(tab)) == 2, "two jobs")
        await pilot.press(*"draft")
        await pilot.press("up")
        assert line.value == "echo two"
        await pilot.press("up")
        assert line.value == "echo one"
        await pilot.press("up")
        assert line.value == "echo one"  # the oldest stays
        await pilot.press("down")
        assert line.value == "echo two"
        await pilot.press("down")
        assert line.value == "draft"  # what was typed before browsing comes back

        # the history is the host's, and outlives the screen
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen), "back in the fleet")
        assert app.histories[host["id"]] == ["echo one", "echo two"]
        tab = await open_jobs_tab(pilot, app, "jobs-2")
        await wait_until(pilot, lambda: len(statuses(tab)) == 2, "the two jobs listed again")
        await pilot.press("up")
        assert tab.command_line.value == "echo two"


async def test_cancel_a_running_job(server, start_agent) -> None:
    await online_host(server, start_agent, "jobs-3")
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        tab = await open_jobs_tab(pilot, app, "jobs-3")
        await pilot.press(*"echo started; sleep 30", "enter")
        await wait_until(pilot, lambda: "started" in tab.output.plain_lines(), "the job running")
        assert statuses(tab)[0][1] == "running"
        started = asyncio.get_running_loop().time()
        await pilot.press("ctrl+k")
        await wait_until(pilot, lambda: statuses(tab)[0][1] == "cancelled", "the job cancelled")
        assert asyncio.get_running_loop().time() - started < 10
        await wait_until(
            pilot, lambda: tab.output.plain_lines()[-1].startswith("── cancelled"), "the closing line"
        )
        await pilot.press("ctrl+k")  # not running any more: a warning, nothing else
        await wait_until(
            pilot, lambda: any("not running" in n.message for n in app._notifications), "a warning"
        )


async def test_offline_host_says_so(server) -> None:
    server.register("jobs-offline")
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: rows(app).get("jobs-offline") == "pending", "the host")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, HostScreen), "the host screen")
        app.screen.query_one(TabbedContent).active = "jobs"
        await pilot.pause()
        await pilot.press(*"true", "enter")
        await wait_until(
            pilot,
            lambda: any(n.severity == "error" and "run 'true'" in n.message for n in app._notifications),
            "an error notification",
        )
        assert isinstance(app.screen, HostScreen)


async def test_fan_out_across_three_hosts_with_one_offline(server, start_agent) -> None:
    await online_host(server, start_agent, "fan-a")
    await online_host(server, start_agent, "fan-b")
    gone = server.register("fan-c")
    agent = await start_agent(gone["host_key"])
    await server.wait_for_status(gone["id"], "online", timeout=15)
    agent.stop(9)
    await server.wait_for_status(gone["id"], "offline", timeout=15)

    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(
            pilot,
            lambda: rows(app) == {"fan-a": "online", "fan-b": "online", "fan-c": "offline"},
            "three hosts",
        )
        app.fleet.table.focus()
        await pilot.press("a")  # mark every host shown
        assert len(app.fleet.table.marked) == 3
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, RunCommandScreen), "the command dialog")
        await pilot.press(*"echo fan-$((40+2)); sleep 2", "enter")  # still running when fan-c is skipped
        await wait_until(pilot, lambda: isinstance(app.screen, FanoutScreen), "the results")
        screen = app.screen
        assert isinstance(screen, FanoutScreen)

        def by_name() -> dict[str, tuple[str, int | None, str]]:
            return {
                run.host.name: (run.status, run.job.exit_code if run.job else None, run.first_line)
                for run in screen.runs.values()
            }

        # the offline host is reported at once, while the others still run
        await wait_until(pilot, lambda: by_name()["fan-c"][0] == "skipped", "fan-c not run")
        assert {by_name()[name][0] for name in ("fan-a", "fan-b")} <= {"starting", "queued", "running"}
        assert screen.runs[gone["id"]].skipped == "offline — not run"

        await wait_until(
            pilot,
            lambda: (
                by_name()
                == {
                    "fan-a": ("completed", 0, "fan-42"),
                    "fan-b": ("completed", 0, "fan-42"),
                    "fan-c": ("skipped", None, ""),
                }
            ),
            "both online hosts completed",
            timeout=15,
        )
        # the highlighted host's whole output shows below
        screen.table.move_cursor(row=1, animate=False)
        await wait_until(pilot, lambda: "fan-b" in str(screen.output.border_title), "fan-b's output")
        assert screen.output.plain_lines()[0] == "fan-42"
        assert screen.output.plain_lines()[-1].startswith("── completed · exit 0")
        await pilot.press("down")  # fan-c: why it did not run
        await wait_until(pilot, lambda: "not run" in str(screen.output.border_title), "fan-c's reason")
        assert screen.output.plain_lines() == []


async def test_marks_follow_the_filter_and_survive_it(server) -> None:
    for name in ("web-1", "web-2", "db-1"):
        server.register(name)
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(rows(app)) == 3, "three hosts")
        table = app.fleet.table
        table.focus()
        await pilot.press("slash", *"web", "enter")
        await pilot.press("a")  # every host shown (the filter's), not the hidden one
        assert {h.name for h in app.fleet.marked_hosts()} == {"web-1", "web-2"}
        assert "2 marked" in str(app.fleet.query_one("#fleet-info").render())
        await pilot.press("a")  # all shown already marked: unmark them
        assert table.marked == set()

        await pilot.press("escape")  # clear the filter; marks made with space stay across filters
        await pilot.pause()
        table.move_cursor(row=0, animate=False)
        await pilot.press("space")  # marks db-1 and moves down
        assert {h.name for h in app.fleet.marked_hosts()} == {"db-1"}
        assert table.cursor_row == 1
        assert table.get_cell(table.marked.copy().pop(), "mark").plain == "✓"
        await pilot.press("slash", *"web", "enter")
        assert {h.name for h in app.fleet.marked_hosts()} == {"db-1"}


async def test_fan_out_results_grouped_diffed_and_failed_rerun(server, start_agent) -> None:
    for name, flavour in (("gr-1", "plain"), ("gr-2", "plain"), ("gr-3", "odd")):
        await online_host(server, start_agent, name, FLAVOUR=flavour)
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(rows(app)) == 3, "three hosts")
        app.fleet.table.focus()
        await pilot.press("a", "x")
        await wait_until(pilot, lambda: isinstance(app.screen, RunCommandScreen), "the command dialog")
        await pilot.press(*'echo "$FLAVOUR"; test "$FLAVOUR" = plain', "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, FanoutScreen), "the results")
        screen = app.screen
        assert isinstance(screen, FanoutScreen)
        await wait_until(
            pilot, lambda: all(run.finished for run in screen.runs.values()), "all ended", timeout=15
        )
        assert screen.fanout_id is not None  # the server's fan-out, one request
        info = str(screen.query_one("#fanout-info").render())
        assert "exit 0 ×2 · exit 1 ×1" in info
        await pilot.press("g")  # grouped, dshbak-style: the identical two together, the outlier apart
        groups = screen.query_one(GroupTable)
        await wait_until(pilot, lambda: len(groups.groups) == 2, "two groups")
        assert [(g.names, len(g.runs), g.result, g.first_line) for g in groups.groups] == [
            ("gr-[1-2]", 2, "exit 0", "plain"),
            ("gr-3", 1, "exit 1", "odd"),
        ]
        assert "gr-[1-2] (2 hosts) · exit 0" in str(screen.output.border_title)
        assert screen.output.plain_lines()[0] == "plain"
        await pilot.press("down", "d")  # the outlier against the majority
        await wait_until(pilot, lambda: "diff gr-1 → gr-3" in str(screen.output.border_title), "the diff")
        assert {"-plain", "+odd"} <= set(screen.output.plain_lines())
        await pilot.press("R")  # re-run on the failed only, after naming them
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        assert "gr-3" in str(app.screen.query_one(".dialog-text", Label).render())
        await pilot.press("y")
        await wait_until(
            pilot, lambda: isinstance(app.screen, FanoutScreen) and app.screen is not screen, "re-run"
        )
        rerun = app.screen
        assert isinstance(rerun, FanoutScreen)
        assert [run.host.name for run in rerun.runs.values()] == ["gr-3"]
        await wait_until(
            pilot, lambda: all(run.finished for run in rerun.runs.values()), "re-run ended", timeout=15
        )
