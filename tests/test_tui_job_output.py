"""The job output widget on its own: how bytes become lines, what is kept, and following the tail."""

from __future__ import annotations

import time
from pathlib import Path

from textual.app import App, ComposeResult

from oc_tui.widgets import job_output
from oc_tui.widgets.command_line import CommandLine
from oc_tui.widgets.job_output import MAX_LINE_CHARS, MAX_LINES, JobOutput


class OutputApp(App[None]):
    CSS_PATH = str(Path(job_output.__file__).parent.parent / "oc_tui.tcss")

    def compose(self) -> ComposeResult:
        yield JobOutput()


async def test_ansi_carriage_returns_split_utf8_and_stderr() -> None:
    app = OutputApp()
    async with app.run_test(size=(60, 10)) as pilot:
        output = app.query_one(JobOutput)
        output.feed(b"\x1b[31mred\x1b[0m plain\n")
        output.feed(b"10%\r20%\rdone\r\n")
        output.feed(b"caf\xc3")  # a character split across two chunks
        output.feed(b"\xa9\tx\x07\n")
        output.feed(b"bad \xff\n", stderr=True)
        output.feed(b"no newline yet")
        await pilot.pause(0.2)
        assert output.plain_lines() == ["red plain", "done", "café    x", "bad \ufffd", "no newline yet"]
        red = output._lines[0]
        assert red.spans and red.spans[0].style.color.number == 1  # ANSI red
        assert output.line_count == 5


async def test_control_strings_are_dropped_whole() -> None:
    """A title (OSC ended by BEL or ST), an OSC 52 clipboard payload, a DCS payload: none shows as text."""
    app = OutputApp()
    async with app.run_test(size=(60, 10)) as pilot:
        output = app.query_one(JobOutput)
        output.feed(b"1X\x1b]0;TITLE\x07Y\n2X\x1b]52;c;aGVsbG8=\x07Y\n3X\x1b]8;;http://x\x1b\\linkY\n")
        output.feed(b"6X\x1bPdcsPayload\x1b\\Y\n")
        await pilot.pause(0.2)
        assert output.plain_lines() == ["1XY", "2XY", "3XlinkY", "6XY"]


async def test_large_output_keeps_the_tail_and_stays_fast() -> None:
    app = OutputApp()
    async with app.run_test(size=(60, 10)) as pilot:
        output = app.query_one(JobOutput)
        started = time.perf_counter()
        for _ in range(50):  # 50 MB of "y\n" (what `yes | head -c 50M` prints)
            output.feed(b"y\n" * 500_000)
        output.flush()
        assert time.perf_counter() - started < 5
        assert output.line_count == MAX_LINES
        assert output.dropped == 25_000_000 - MAX_LINES
        assert "earlier not kept" in str(output.border_subtitle)
        output.feed(b"x" * (MAX_LINE_CHARS * 2 + 5))  # one endless line is broken, not kept whole
        output.flush()
        assert [len(line) for line in output.plain_lines()[-3:]] == [MAX_LINE_CHARS, MAX_LINE_CHARS, 5]
        await pilot.pause()


async def test_follows_the_tail_until_scrolled_up(monkeypatch) -> None:
    monkeypatch.setattr(job_output, "FLUSH_INTERVAL", 0.01)
    app = OutputApp()
    async with app.run_test(size=(60, 10)) as pilot:
        output = app.query_one(JobOutput)
        output.feed(b"".join(b"line %d\n" % n for n in range(100)))
        await pilot.pause(0.1)
        assert output.following and output.scroll_y == output.max_scroll_y > 0

        output.scroll_to(y=10, animate=False)
        await pilot.pause()
        assert not output.following
        output.feed(b"more\n")
        await pilot.pause(0.1)
        assert output.scroll_y == 10  # stays where the operator is reading
        assert "G follows" in str(output.border_subtitle)

        output.focus()
        await pilot.press("G")
        await pilot.pause()
        assert output.following and output.scroll_y == output.max_scroll_y
        output.feed(b"even more\n")
        await pilot.pause(0.1)
        assert output.scroll_y == output.max_scroll_y


class HistoryApp(App[None]):
    def __init__(self, history: list[str]) -> None:
        super().__init__()
        self.history = history

    def compose(self) -> ComposeResult:
        yield CommandLine(self.history)


async def test_history_skips_repeats_and_restores_the_draft() -> None:
    history: list[str] = []
    app = HistoryApp(history)
    async with app.run_test() as pilot:
        line = app.query_one(CommandLine)
        for command in ("ls", "ls", "pwd"):
            line.remember(command)
        assert history == ["ls", "pwd"]
        await pilot.press("up", "up", "down")
        assert line.value == "pwd"
        await pilot.press("down")
        assert line.value == ""
        await pilot.press("down")
        assert line.value == ""


async def test_clear_follows_again(monkeypatch) -> None:
    """A new job's output follows its tail even when the previous one was scrolled far down."""
    monkeypatch.setattr(job_output, "FLUSH_INTERVAL", 0.01)
    app = OutputApp()
    async with app.run_test(size=(60, 10)) as pilot:
        output = app.query_one(JobOutput)
        output.feed(b"old\n" * 100)
        await pilot.pause(0.1)
        output.clear()
        assert output.following and output.plain_lines() == []
        output.feed(b"new\n" * 100)
        await pilot.pause(0.1)
        output.add_note("-- end --")
        await pilot.pause(0.1)
        assert output.following and output.scroll_y == output.max_scroll_y
        assert output.plain_lines()[-1] == "-- end --"


async def test_notes_and_colour_carried_across_lines_are_drawn() -> None:
    app = OutputApp()
    async with app.run_test(size=(60, 10)) as pilot:
        output = app.query_one(JobOutput)
        output.feed(b"\x1b[32mgreen\nstill green\x1b[0m\n")
        output.flush()
        output.add_note("-- note --")
        await pilot.pause()
        still = next(iter(output.render_line(1)))
        assert still.text == "still green" and still.style.color.number == 2
        note = next(iter(output.render_line(2)))
        assert note.text == "-- note --" and note.style.italic
