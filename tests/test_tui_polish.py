"""First-day polish (issue 19): keys typed in a burst, honest words, the keys a footer offers, and the
screens at 80x24. Driven on the demo fleet of scripts/screenshots.py (no server: fast); the parts that
need the real control plane are in the modules of their section.
"""

from __future__ import annotations

import io

import pytest
from conftest import wait_until
from test_tui_snapshots import screenshots
from textual import events
from textual.keys import _character_to_key
from textual.widgets import Footer, Label, Static, TextArea

from oc_tui.app import OcTuiApp
from oc_tui.screens.fleet import FleetScreen
from oc_tui.screens.run_command import RunCommandScreen


def burst(app: OcTuiApp, text: str) -> None:
    """Deliver ``text`` as one burst of keys (a paste, a fast typist, tmux send-keys): nothing waits
    for the app between them."""
    for character in text:
        app.post_message(events.Key(_character_to_key(character), character))


def plain(renderable: object) -> str:
    """What a Rich renderable (a Static's content) reads as, as plain text."""
    from rich.console import Console

    console = Console(width=100, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


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

        # the same for a text area (the AI agent dispatch form): typed as the form opens, nothing lost
        from oc_tui.screens.agents import DispatchForm

        app.push_screen(DispatchForm(None, "host_demo0004"))
        burst(app, "Rotate logs")
        await wait_until(pilot, lambda: isinstance(app.screen, DispatchForm), "the dispatch form")

        def task() -> list[str]:
            return [area.text for area in app.screen.query("#task").results(TextArea)]

        await wait_until(pilot, lambda: task() == ["Rotate logs"], "the whole task")


async def test_slash_then_a_filter_in_one_burst_filters_and_runs_no_key() -> None:
    """``/`` then ``onl`` typed at once: all of it is the filter, none of it a fleet key (``n`` would
    open the register dialog, ``l`` the labels); a ``/`` typed in the filter is text."""
    app = screenshots.demo_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await screenshots.fleet(pilot)
        burst(app, "/onl")
        box = app.screen.query_one("#filter")
        await wait_until(pilot, lambda: getattr(box, "value", "") == "onl", "the whole filter")
        assert isinstance(app.screen, FleetScreen)
        burst(app, "/x")
        await wait_until(pilot, lambda: getattr(box, "value", "") == "onl/x", "a slash in the filter")
        assert {"enter", "escape"} <= footer_keys(app)  # the footer says how to leave the filter
        await pilot.press("escape")
        await wait_until(pilot, lambda: getattr(box, "value", None) == "", "the filter cleared")
        assert app.screen.focused is app.fleet.table


def test_job_options_say_what_is_wrong_in_the_dialog_s_words() -> None:
    from oc_tui.jobs_model import JobOptions

    for timeout in ("1.5", "0", "86401", ""):  # 1.5 was taken as 15
        with pytest.raises(ValueError, match=r"^time limit: whole seconds from 1 to 86400"):
            JobOptions.parse("~", "", timeout)
    with pytest.raises(ValueError, match=r"^environment: '1A' in '1A=b' is not a variable name"):
        JobOptions.parse("~", "1A=b", "60")
    with pytest.raises(ValueError, match=r"a value holds no space or quote"):
        JobOptions.parse("~", 'BAZ="two words"', "60")
    assert JobOptions.parse("/srv", "A=1", "90") == JobOptions("/srv", ("A=1",), 90)


def test_a_job_s_closing_line_says_each_thing_once() -> None:
    from oc_tui.jobs_model import exit_note

    assert exit_note("cancelled", None, "cancelled", "28s") == "── cancelled · 28s ──"
    assert (
        exit_note("failed", None, "timed out after 3 s", "3.1s")
        == "── failed · timed out after 3 s · 3.1s ──"
    )


async def test_words_that_say_what_is_true() -> None:
    from datetime import timedelta

    from oc_tui.api.models import HostEvent
    from oc_tui.screens.help import HelpScreen
    from oc_tui.screens.host import HOST_TABS
    from oc_tui.screens.host_key import HostKeyScreen
    from oc_tui.widgets.event_feed import EventFeed
    from oc_tui.widgets.host_detail import HostDetail

    app = screenshots.demo_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await screenshots.fleet(pilot)
        fleet = app.fleet
        # an online host was heard from now, whatever its record's last_seen_at (written every 30 s)
        db = next(host for host in screenshots.demo_hosts() if host.id == "host_demo0004")
        old = db.model_copy(update={"last_seen_at": screenshots.NOW - timedelta(minutes=5)})
        fleet.post_message(FleetScreen.HostFetched(old))
        await pilot.pause()
        body = plain(fleet.query_one(HostDetail).query_one("#detail-body", Static).content)
        assert "now (connected)" in body and "5m ago" not in body

        # an event about a host the listing has not brought yet waits for its name (not its id)
        stranger = db.model_copy(update={"id": "host_demo0099", "name": "late-box"})
        event = HostEvent(
            type="status_change", host_id=stranger.id, data={"status": "online"}, timestamp=screenshots.NOW
        )
        feed = fleet.query_one(EventFeed)
        lines = len(feed.lines)
        fleet.post_message(FleetScreen.HostEventArrived(event))
        await pilot.pause()
        assert len(feed.lines) == lines
        fleet.post_message(FleetScreen.HostFetched(stranger))
        await pilot.pause()
        written = "".join(segment.text for segment in feed.lines[-1])
        assert "late-box" in written and stranger.id not in written

        # a filter that matches nothing says so
        await pilot.press("slash", *"nosuchhost", "enter")
        assert fleet.table.row_count == 0
        assert "no hosts match 'nosuchhost'" in str(fleet.table.border_subtitle)
        await pilot.press("escape")
        assert not fleet.table.border_subtitle

        # ? names every tab enter opens
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        enter_row = dict(app._key_sections()[1][1])["enter"]
        assert all(tab.TITLE.lower() in enter_row for tab in HOST_TABS), enter_row

        # the clipboard: what was done (sent, OSC 52), and the text itself to select
        await app.push_screen(HostKeyScreen(screenshots.demo_registration(), screenshots.BASE_URL))
        await pilot.press("c")
        note = list(app._notifications)[-1]
        assert "OSC 52" in note.message and "copied" not in note.message.lower()
        assert "oc-agent --server" in note.message


async def test_rename_job_options_save_output_and_purge(server, start_agent, tmp_path) -> None:
    """End to end on one real host: rename it (e), run a job in a directory with environment and a
    time limit (ctrl+o), save its whole output — more than the pane keeps — to a file (ctrl+s), then
    revoke it and delete it from the list (ctrl+d twice), its job output files on the server with it."""
    from conftest import make_app, online_host, rows

    from oc_tui.screens.confirm import ConfirmScreen
    from oc_tui.screens.host import HostScreen
    from oc_tui.screens.job_dialogs import JobOptionsDialog, SaveOutputDialog
    from oc_tui.screens.jobs_tab import JobsTab
    from oc_tui.screens.labels import RenameHostScreen
    from oc_tui.screens.register import RegisterHostScreen

    registration = await online_host(server, start_agent, "before")
    host_id = registration["id"]
    app = make_app(server)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: rows(app).get("before") == "online", "the host online")
        # the register dialog says where a new agent will connect: the control plane's public URL
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, RegisterHostScreen), "the register dialog")
        where = app.screen.query_one("#agent-url", Label)
        await wait_until(pilot, lambda: "Only this machine reaches" in str(where.content), "the URL")
        assert f"connect to {server.base_url}" in str(where.content)
        await pilot.press("escape")
        app.fleet.table.focus()
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, RenameHostScreen), "the rename dialog")
        await pilot.press("ctrl+u", *"after", "enter")
        await wait_until(pilot, lambda: rows(app).get("after") == "online", "the new name in the table")
        assert server.get_host(host_id)["name"] == "after"

        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, HostScreen), "the host screen")
        await pilot.press("j")
        tab = app.screen.query_one(JobsTab)
        await wait_until(pilot, lambda: tab.command_line.has_focus, "the command line")
        assert "in ~ · 60 s" in str(tab.query_one("#job-options", Label).content)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, JobOptionsDialog), "the options dialog")
        dialog = app.screen
        dialog.query_one("#cwd").value = str(tmp_path)
        dialog.query_one("#env").value = "GREETING=hi"
        dialog.query_one("#timeout").value = "0"
        await pilot.press("enter")  # 0 s is refused in the dialog, which stays
        await wait_until(pilot, lambda: "time limit" in str(dialog.query_one("#error", Label).content), "why")
        dialog.query_one("#timeout").value = "30"
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, JobOptionsDialog), "the options taken")
        assert "30 s · 1 env" in str(tab.query_one("#job-options", Label).content)

        await pilot.press(*'echo "$GREETING from $(pwd)"; seq 1 12000', "enter")
        await wait_until(
            pilot, lambda: [job.status for job in tab.job_list.jobs] == ["completed"], "the job done", 20
        )
        job = tab.job_list.jobs[0]
        assert job.cwd == str(tmp_path) and job.timeout == 30 and job.env == ["GREETING=hi"]

        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, SaveOutputDialog), "the save dialog")
        target = tmp_path / "out" / "job.log"
        app.screen.query_one("#path").value = str(target)
        await pilot.press("enter")  # no such directory: said, the dialog stays
        await wait_until(
            pilot, lambda: "no such directory" in str(app.screen.query_one("#error", Label).content), "why"
        )
        target.parent.mkdir()
        await pilot.press("enter")
        await wait_until(pilot, lambda: target.exists(), "the output saved")
        lines = target.read_text().splitlines()
        assert lines[0] == f"hi from {tmp_path}" and lines[-1] == "12000" and len(lines) == 12001
        assert not list(tmp_path.glob("out/*.part"))
        outputs = list((server.data_dir / "jobs").glob(f"{job.id}.*"))
        assert outputs

        # the same file again: not replaced until asked twice
        target.write_text("mine")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, SaveOutputDialog), "the save dialog again")
        app.screen.query_one("#path").value = str(target)
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: "exists" in str(app.screen.query_one("#error", Label).content), "asked"
        )
        assert target.read_text() == "mine"
        await pilot.press("enter")
        await wait_until(pilot, lambda: target.read_text() != "mine", "replaced when asked twice")

        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.fleet, "back to the fleet")
        for gone in (lambda: rows(app).get("after") == "revoked", lambda: "after" not in rows(app)):
            await pilot.press("ctrl+d")  # revoke; then, revoked, delete it from the list: each asks first
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "asked first")
            await pilot.press("y")
            await wait_until(pilot, gone, "revoked, then gone from the list")
        assert not [path for path in outputs if path.exists()]


def test_the_embedded_profile_shows_its_kept_port_from_the_start(tmp_path) -> None:
    """Before the local control plane answers, the info line names the port this data dir's server is
    given (8787 may belong to another data dir's), not the profile's default."""
    from oc_tui.config import Profile

    (tmp_path / "port").write_text("34567\n")
    profile = Profile(name="local", base_url="http://127.0.0.1:8787", token=None, embedded=True)
    app = OcTuiApp(profile, data_dir=tmp_path, live=False)
    assert app.fleet._base_url == "http://127.0.0.1:34567"
    assert OcTuiApp(profile, data_dir=tmp_path / "new", live=False).fleet._base_url == profile.base_url
