"""Text from a host never reaches the operator's terminal raw: control characters, escape sequences
(colours, the window title, OSC 52 clipboard writes), bidi overrides and markup in file names, host
names, labels, agent facts and relayed errors are shown escaped (``formatting.host_text``).

What is checked is what the app would write to the terminal: the strips of the screen's compositor.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import make_app, online_host, wait_until
from test_tui_files import go_to, open_files_tab
from test_tui_snapshots import screenshots

from oc_tui.api import errors
from oc_tui.app import OcTuiApp
from oc_tui.screens.confirm import ConfirmScreen
from oc_tui.screens.fleet import FleetScreen
from oc_tui.screens.host import HostScreen
from oc_tui.widgets.formatting import host_markup, host_text

C0 = "".join(chr(code) for code in range(1, 32) if chr(code) != "/")
C1 = "\x7f" + "".join(chr(code) for code in range(0x80, 0xA0))
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
UNSAFE = {chr(code) for code in (*range(0, 32), *range(0x7F, 0xA0))} | set(BIDI) | {"\ufeff"}
"""What must never be written to the terminal."""

COLOURS = "evil\x1b[41mRED\x1b]2;TITLE\x07.txt"
OSC52 = "clip\x1b]52;c;aGVsbG8=\x07.txt"
NEWLINE = "new\nline.txt"
OVERRIDE = "bidi\u202etxt.exe"
MARKUP = "[red]x[@click=app.quit]q"
HOSTILE_NAMES = [COLOURS, OSC52, NEWLINE, OVERRIDE, "c0" + C0, "c1" + C1, MARKUP]


def screen_text(app: OcTuiApp) -> str:
    """Everything the app draws for the screen on top, as the terminal gets it, and what each
    notification's toast shows (its rendered content)."""
    from textual.content import Content

    strips = app.screen._compositor.render_strips()
    lines = ["".join(segment.text for segment in strip) for strip in strips]
    # as the toast renders it (textual.widgets._toast.Toast.render)
    lines += [note.title + "\n" + Content.from_markup(note.message).plain for note in app._notifications]
    return "\n".join(lines)


def assert_clean(app: OcTuiApp) -> str:
    text = screen_text(app)
    raw = sorted({f"U+{ord(char):04X}" for char in text if char in UNSAFE and char != "\n"})
    assert not raw, f"raw control characters on the screen: {raw}"
    return text


# --- the helper ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (COLOURS, r"evil\e[41mRED\e]2;TITLE\a.txt"),
        (OSC52, r"clip\e]52;c;aGVsbG8=\a.txt"),
        (NEWLINE, r"new\nline.txt"),
        ("tab\there\rcr\x00nul\x7fdel", r"tab\there\rcr\x00nul\x7fdel"),
        ("\x85next\x9bcsi", r"\x85next\x9bcsi"),
        (OVERRIDE, r"bidi\u202etxt.exe"),
        ("\u2066iso\u2069\u200e\u200f\u061c\ufeff\u200b", r"\u2066iso\u2069\u200e\u200f\u061c\ufeff\u200b"),
        ("bad\udcffbyte", r"bad\xffbyte"),
        ("中文 café e\u0301 👨\u200d👩\u200d👧 ✓", "中文 café e\u0301 👨\u200d👩\u200d👧 ✓"),
        (r"C:\Users\x", r"C:\Users\x"),
        (None, ""),
        (42, "42"),
    ],
)
def test_host_text_escapes_as_ls_does(raw: object, shown: str) -> None:
    assert host_text(raw) == shown


def test_host_text_escapes_every_control_and_keeps_what_is_asked() -> None:
    escaped = host_text(C0 + C1 + BIDI)
    assert not set(escaped) & UNSAFE
    assert escaped.count("\\") == len(C0 + C1 + BIDI)
    assert host_text("a\tb\nc\x1b", keep="\t\n") == "a\tb\nc\\e"
    assert host_text(host_text(COLOURS)) == host_text(COLOURS)  # escaping twice changes nothing


@pytest.mark.parametrize("raw", [MARKUP, "[b]x[/b]", "[$accent]q", "[RED]x", "[ red]x", "x\\[red]y", "end\\"])
def test_host_markup_shows_markup_as_written(raw: str) -> None:
    from textual.content import Content

    assert Content.from_markup(host_markup(raw)).plain == raw


# --- in the app --------------------------------------------------------------------------------------


async def test_hostile_host_record_and_errors_are_shown_escaped() -> None:
    """A host whose name, region, labels and agent facts hold escape sequences, in the fleet table,
    its detail, the event feed, the host screen; and an error message holding them, in a toast."""
    demo = screenshots.demo_hosts()
    hostile = demo[3].model_copy(
        update={
            "name": "db\x1b]2;TITLE\x07" + OVERRIDE,
            "region": "eu\x1b[41m",
            "labels": {"env": "prod\x9b31m", "[red]k": "v\u202e"},
            "agent": demo[3].agent.model_copy(  # type: ignore[union-attr]
                update={
                    "hostname": "box\x1b]52;c;aGVsbG8=\x07",
                    "os": "linux\r\n",
                    "remote_addr": "1.2.3.4\x07",
                }
            ),
        }
    )
    app = screenshots.demo_app()
    async with app.run_test(size=(160, 45)) as pilot:
        fleet = app.screen
        assert isinstance(fleet, FleetScreen)
        fleet.post_message(FleetScreen.HostsLoaded([*demo[:3], hostile, *demo[4:]]))
        for event in screenshots.demo_events():
            fleet.post_message(FleetScreen.HostEventArrived(event.model_copy(update={"host_id": hostile.id})))
        await pilot.pause()
        fleet.table.select_host(hostile.id)
        error = errors.ApiError(502, "AGENT_ERROR", "agent said: " + COLOURS + OSC52)
        fleet.post_message(FleetScreen.RequestFailed("list " + NEWLINE, error))
        await pilot.pause()
        text = assert_clean(app)
        assert r"db\e]2;TITLE\abidi\u202etxt.exe" in text  # table, detail and feed
        assert r"eu\e[41m" in text
        assert r"env=prod\x9b31m" in text
        assert r"[red]k=v\u202e" in text
        assert r"box\e]52;c;aGVsbG8=\a" in text  # the agent's hostname in the detail
        await wait_until(pilot, lambda: "agent said" in screen_text(app), "the toast")
        text = assert_clean(app)
        assert r"agent said: evil\e[41mRED" in text  # the toast
        assert r"list new\nline.txt" in text

        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, HostScreen), "the host screen")
        await pilot.pause()
        text = assert_clean(app)
        assert r"db\e]2;TITLE\abidi\u202etxt.exe" in text
        assert r"linux\r\n" in text


async def test_hostile_file_names_listed_and_deleted(server, start_agent, tmp_path: Path) -> None:
    """Files whose names hold every C0/C1 control, escape sequences, OSC 52, a newline, a bidi override
    and markup: listed, previewed, asked about and deleted, all shown escaped."""
    await online_host(server, start_agent, "files-evil")
    root = tmp_path / "evil"
    root.mkdir()
    for name in HOSTILE_NAMES:
        (root / name).write_text("hello \x1b]2;PWNED\x07 world\r\n")
    os.symlink(COLOURS, root / ("link" + OVERRIDE))
    app = make_app(server)
    async with app.run_test(size=(200, 50)) as pilot:
        tab = await open_files_tab(pilot, app, "files-evil")
        await go_to(pilot, tab, root)
        await wait_until(pilot, lambda: len(tab.file_list.row_keys) == len(HOSTILE_NAMES) + 2, "the listing")
        for name in HOSTILE_NAMES:
            cell = tab.file_list.row_cells(name)[0].plain
            assert cell == host_text(name) and not set(cell) & UNSAFE
        text = assert_clean(app)
        assert r"evil\e[41mRED\e]2;TITLE\a.txt" in text
        assert r"new\nline.txt" in text
        assert MARKUP in text

        # the preview of a file holding an escape sequence, and its details
        tab.file_list.move_cursor(row=tab.file_list.row_index(COLOURS))
        await wait_until(pilot, lambda: "PWNED" in screen_text(app), "the preview")
        text = assert_clean(app)
        assert r"hello \e]2;PWNED\a world" in text

        # delete it: the confirmation and the toast say its name escaped
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.pause()
        assert r"Delete evil\e[41mRED\e]2;TITLE\a.txt?" in assert_clean(app)
        await pilot.press("y")
        await wait_until(pilot, lambda: not (root / COLOURS).exists(), "the file deleted")
        await wait_until(pilot, lambda: "deleted" in screen_text(app), "the toast")
        text = assert_clean(app)
        assert f"deleted {root}/" + r"evil\e[41mRED\e]2;TITLE\a.txt" in text.replace("\n", "")
