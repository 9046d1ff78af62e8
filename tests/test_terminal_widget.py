"""The terminal widget (oc_tui.widgets.terminal) against recorded byte streams, its key translation,
Pilot tests of focus/keys/escape/resize, snapshots, and a guard that bulk output leaves the UI live.

The streams in tests/terminal_streams/*.bin were recorded once from real programs in an 80x24 PTY
(``python tests/terminal_streams/record.py``). Snapshots: ``pytest tests/test_terminal_widget.py
--snapshot-update`` after an intended change.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
import unicodedata
from pathlib import Path

import pyte
import pytest
from textual.app import App, ComposeResult

from oc_tui.widgets.terminal import TerminalView
from oc_tui.widgets.terminal.fastparse import FastStream
from oc_tui.widgets.terminal.keys import key_to_bytes, paste_to_bytes
from oc_tui.widgets.terminal.render import LineRenderer
from oc_tui.widgets.terminal.screen import TerminalScreen

STREAMS = Path(__file__).resolve().parent / "terminal_streams"


def stream(name: str) -> bytes:
    return (STREAMS / f"{name}.bin").read_bytes()


def term(cols: int = 80, rows: int = 24, scrollback: int = 5000) -> tuple[TerminalScreen, FastStream]:
    screen = TerminalScreen(cols, rows, scrollback)
    return screen, FastStream(screen)


def text(screen: TerminalScreen) -> list[str]:
    return [line.rstrip() for line in screen.display]


def grid(screen: TerminalScreen) -> dict[int, dict]:
    """The screen's non-empty lines (how lines are stored, present-but-empty or absent, may differ)."""
    return {y: dict(line) for y, line in screen.buffer.items() if line and y < screen.lines}


def find(screen: TerminalScreen, needle: str) -> tuple[int, int]:
    for y, line in enumerate(screen.display):
        if needle in line:
            return y, line.index(needle)
    raise AssertionError(f"{needle!r} not on screen: {text(screen)}")


def cell(screen: TerminalScreen, needle: str, offset: int = 0):
    y, x = find(screen, needle)
    return screen.buffer[y][x + offset]


# --- recorded streams: colours -------------------------------------------------------------------


def test_sixteen_colours_and_attributes() -> None:
    screen, parser = term()
    parser.feed(stream("colours16"))
    assert cell(screen, " 31 ", 1).fg == "red"
    assert cell(screen, " 33 ", 1).fg == "yellow"
    assert cell(screen, " 91 ", 1).fg == "bright_red"
    assert cell(screen, " 44 ", 1).bg == "blue"
    assert cell(screen, "103", 0).bg == "bright_yellow"
    assert cell(screen, "bold ").bold and not cell(screen, "bold ").dim
    assert cell(screen, "dim").dim and not cell(screen, "dim").bold
    assert cell(screen, "italic").italics
    assert cell(screen, "underline").underscore
    assert cell(screen, "reverse").reverse
    assert cell(screen, "strike").strikethrough
    combo = cell(screen, "bold-underline-red")
    assert (combo.bold, combo.underscore, combo.fg) == (True, True, "red")
    assert cell(screen, "bold-underline-red", -1).fg == "default"  # the reset before it


def test_256_colours() -> None:
    screen, parser = term()
    parser.feed(stream("colours256"))
    y, _ = find(screen, "256 colours")
    palette = screen.buffer[y + 1]
    assert [palette[2 * i].bg for i in (0, 1, 9, 15)] == ["black", "red", "bright_red", "bright_white"]
    cube = screen.buffer[y + 2]
    assert [cube[0].bg, cube[2].bg] == ["color(16)", "color(17)"]
    greys = screen.buffer[y + 14]
    assert greys[0].bg == "color(232)" and greys[46].bg == "color(255)"
    assert cell(screen, "orange-fg").fg == "color(208)"
    both = cell(screen, "blue-on-yellow")
    assert (both.fg, both.bg) == ("color(27)", "color(226)")


def test_truecolour_both_syntaxes() -> None:
    screen, parser = term()
    parser.feed(stream("truecolour"))
    y, _ = find(screen, "truecolour")
    gradient = screen.buffer[y + 1]
    assert gradient[0].bg == "#ff0080" and gradient[79].bg == "#12ed80"
    assert cell(screen, "true-orange").fg == "#ff8800"
    assert cell(screen, "colon-cyan").fg == "#00c8ff"  # 38:2::r:g:b, which stock pyte draws as text


def test_ls_color_matches_stock_pyte_text() -> None:
    """The fast parser changes speed, not meaning: the text on screen is what stock pyte shows."""
    data = stream("ls_color")
    screen, parser = term()
    parser.feed(data)
    stock = pyte.Screen(80, 24)
    pyte.ByteStream(stock).feed(data)
    assert screen.display == stock.display
    assert cell(screen, "docs").fg == "blue" and cell(screen, "docs").bold
    assert cell(screen, "run.sh").fg == "green"
    assert cell(screen, "notes.txt").fg == "default"


def test_byte_at_a_time_equals_whole_stream() -> None:
    """Escape sequences and UTF-8 characters split across feeds come out the same."""
    for name in ("colours16", "colours256", "truecolour", "wide", "ls_color", "vim"):
        data = stream(name)
        whole, parser = term()
        parser.feed(data)
        split, split_parser = term()
        for i in range(len(data)):
            split_parser.feed(data[i : i + 1])
        assert grid(split) == grid(whole), name
        assert (split.cursor.x, split.cursor.y) == (whole.cursor.x, whole.cursor.y), name


def bulk_stream(lines: int = 600) -> bytes:
    """Output like ``ls -lR --color``: plain, coloured, wide and over-long lines, and erase-to-end."""
    out = []
    for i in range(lines):
        kind = i % 6
        if kind == 0:
            out.append(f"-rw-r--r-- 1 root root {i:6d} Jan  1 00:00 file{i}.txt")
        elif kind == 1:
            out.append(f"drwxr-xr-x 2 root root 4096 Jan  1 00:00 \x1b[0m\x1b[01;34mdir{i}\x1b[0m\x1b[K")
        elif kind == 2:
            out.append(f"\x1b[38;5;{i % 256}mcolour {i}\x1b[0m and \x1b[48;2;10;{i % 256};30mtrue\x1b[0m")
        elif kind == 3:
            out.append(f"wide 日本語 {i} 😀")
        elif kind == 4:
            out.append(("long-" * 30) + str(i))  # wraps
        else:
            out.append("")
    return ("\r\n".join(out) + "\r\n").encode()


def test_bulk_path_equals_the_general_path_and_stock_pyte() -> None:
    """Whole chunks take the append-lines fast path; one byte at a time never does (no CR LF token):
    both must leave the same cells, cursor and scrollback, and the same text as stock pyte."""
    data = bulk_stream()
    fast, fast_parser = term(scrollback=10_000)
    for i in range(0, len(data), 4096):
        fast_parser.feed(data[i : i + 4096])
    slow, slow_parser = term(scrollback=10_000)
    for i in range(len(data)):
        slow_parser.feed(data[i : i + 1])
    assert grid(fast) == grid(slow)
    assert (fast.cursor.x, fast.cursor.y, fast.cursor.attrs) == (
        slow.cursor.x,
        slow.cursor.y,
        slow.cursor.attrs,
    )
    assert [dict(line) for line in fast.history] == [dict(line) for line in slow.history]
    assert fast.pushed == slow.pushed == len(fast.history) > 600
    stock = pyte.Screen(80, 24)
    pyte.ByteStream(stock).feed(data)
    assert fast.display == stock.display


def test_utf8_split_across_feeds() -> None:
    screen, parser = term()
    data = "日本😀é".encode()
    for i in range(len(data)):
        parser.feed(data[i : i + 1])
    assert screen.display[0].startswith("日本😀é")
    assert screen.cursor.x == 7


# --- wide characters -----------------------------------------------------------------------------


def test_wide_characters_take_two_cells() -> None:
    screen, parser = term()
    parser.feed(stream("wide"))
    y, x = find(screen, "日本語")
    line = screen.buffer[y]
    assert [line[x].data, line[x + 1].data, line[x + 2].data] == ["日", "", "本"]
    y, x = find(screen, "😀")
    assert screen.buffer[y][x + 1].data == ""
    assert "é" in screen.display[find(screen, "combining")[0]]
    # 78 digits then a wide character fits exactly; the X after it wraps to the next line.
    y, _ = find(screen, "0" * 78)
    assert screen.buffer[y][78].data == "日" and screen.buffer[y + 1][0].data == "X"
    renderer = LineRenderer()
    for row in range(screen.lines):
        assert renderer.strip(screen.buffer[row], 80).cell_length == 80


def test_wide_character_that_does_not_fit_wraps_whole() -> None:
    screen, parser = term(cols=10)
    parser.feed(("x" * 9 + "日").encode())
    assert screen.buffer[1][0].data == "日" and screen.buffer[1][1].data == ""
    assert screen.display[0] == "x" * 9 + " "


def test_overwritten_half_of_wide_character_renders_blank() -> None:
    screen, parser = term(cols=10)
    parser.feed("日本\x1b[1;2HX".encode())  # X lands on the second half of 日
    strip = LineRenderer().strip(screen.buffer[0], 10)
    assert strip.text.startswith(" X本")
    assert strip.cell_length == 10


ZERO_WIDTH_CASES = [
    ("thai", "สวัสดี"),  # vowel and tone marks of combining class 0
    ("hindi", "नमस्ते"),  # virama and vowel signs
    ("hindi spacing mark", "कि"),
    ("korean jamo", "\u1100\u1161\u11a8\u1100\u1175"),  # conjoining jamo (composed: NFC)
    ("enclosing", "a\u20dd"),
    ("variation selectors", "\u2603\ufe0e \u2764\ufe0f"),
    ("keycap", "1\ufe0f\u20e3"),
    ("zwj family", "\U0001f468\u200d\U0001f469\u200d\U0001f467"),
    ("combining acute", "e\u0301"),
]


@pytest.mark.parametrize(("name", "sample"), ZERO_WIDTH_CASES, ids=[c[0] for c in ZERO_WIDTH_CASES])
def test_zero_width_code_points_are_kept_on_screen_in_strips_and_in_scrollback(
    name: str, sample: str
) -> None:
    screen, parser = term(cols=20, rows=3)
    parser.feed(f"<{sample}>\r\n".encode())
    sample = unicodedata.normalize("NFC", sample)
    assert screen.display[0].rstrip() == f"<{sample}>"
    strip = LineRenderer().strip(screen.buffer[0], 20)
    assert strip.text.rstrip() == f"<{sample}>"
    # The same bytes arriving one at a time (a split UTF-8 sequence, a mark in the next chunk).
    other, byte_parser = term(cols=20, rows=3)
    for byte in f"<{sample}>".encode():
        byte_parser.feed(bytes([byte]))
    assert other.display[0].rstrip() == f"<{sample}>"
    parser.feed(b"\r\n" * 5)  # scrolled off: the line in history still holds every code point
    line = screen.history[-4]
    assert "".join(line[x].data for x in range(20)).rstrip() == f"<{sample}>"


def test_zero_width_cells_keep_the_column_count_tmux_shows() -> None:
    """Widths as tmux (over the host's wcwidth) lays them out; the ``|`` lands where tmux puts it."""
    screen, parser = term(cols=30, rows=6)
    parser.feed(
        "สวัสดี|\r\nकि|\r\n\U0001f468\u200d\U0001f469\u200d\U0001f467|\r\n\U0001f44d\U0001f3fd|".encode()
    )
    columns = [next(x for x in range(30) if screen.buffer[y][x].data == "|") for y in range(4)]
    assert columns == [4, 2, 2, 4]
    renderer = LineRenderer()
    assert all(renderer.strip(screen.buffer[y], 30).cell_length == 30 for y in range(4))


# --- alternate screen ----------------------------------------------------------------------------


def test_leaving_vim_restores_the_shell_screen_exactly() -> None:
    data = stream("vim")
    enter, leave = data.index(b"\x1b[?1049h"), data.index(b"\x1b[?1049l")
    screen, parser = term()
    parser.feed(data[:enter])
    before = dict((y, dict(line)) for y, line in screen.buffer.items())
    cursor = (screen.cursor.x, screen.cursor.y)
    parser.feed(data[enter:leave])
    assert screen.in_alternate
    assert text(screen)[0] == "roses are red" and text(screen)[1] == "~"  # vim's picture (after dd)
    parser.feed(data[leave : leave + len(b"\x1b[?1049l")])
    assert not screen.in_alternate
    assert grid(screen) == {y: line for y, line in before.items() if line}
    assert (screen.cursor.x, screen.cursor.y) == cursor
    parser.feed(data[leave:])
    assert [line for line in text(screen) if line] == [
        "shell line 1",
        "shell line 2",
        "$ vim poem.txt",
        "after vim",
    ]
    assert not screen.history  # nothing vim drew leaked into scrollback


@pytest.mark.parametrize("mode", [47, 1047, 1049])
def test_alternate_screen_modes(mode: int) -> None:
    screen, parser = term(cols=20, rows=5)
    parser.feed(b"main text\r\n")
    parser.feed(f"\x1b[?{mode}h\x1b[2J\x1b[Halt text".encode())
    assert text(screen)[0] == "alt text"
    parser.feed(f"\x1b[?{mode}l".encode())
    assert text(screen)[0] == "main text" and "alt text" not in "".join(text(screen))


# --- scrollback ----------------------------------------------------------------------------------


def test_scrollback_keeps_lines_scrolled_off() -> None:
    screen, parser = term(cols=20, rows=5, scrollback=50)
    parser.feed(b"".join(f"line {i}\r\n".encode() for i in range(100)))
    assert len(screen.history) == 50
    assert "".join(c.data for c in screen.history[-1].values()).strip() == "line 95"
    assert text(screen)[:4] == ["line 96", "line 97", "line 98", "line 99"]
    parser.feed(b"\x1b[?1049h" + b"x\r\n" * 20 + b"\x1b[?1049l")
    assert len(screen.history) == 50 and screen.pushed == 96  # the alternate screen adds nothing
    parser.feed(b"\x1b[3J")
    assert not screen.history


def test_shrinking_keeps_the_cursor_line_and_saves_the_top() -> None:
    screen, parser = term(cols=20, rows=10)
    parser.feed(b"".join(f"l{i}\r\n".encode() for i in range(8)) + b"$ ")
    screen.resize(5, 20)
    assert text(screen) == ["l4", "l5", "l6", "l7", "$"]
    assert ["".join(c.data for c in line.values()).strip() for line in screen.history] == [
        "l0",
        "l1",
        "l2",
        "l3",
    ]


# --- other sequences -----------------------------------------------------------------------------


def test_replies_to_cursor_position_and_device_attribute_queries() -> None:
    screen, parser = term()
    parser.feed(b"abc\x1b[6n\x1b[c\x1b[>c")
    assert screen.replies == ["\x1b[1;4R", "\x1b[?6c"]


def test_ncurses_extras_rep_scroll_and_charsets() -> None:
    screen, parser = term(cols=20, rows=4)
    parser.feed(b"-\x1b[9b\r\n")  # REP: ten dashes
    assert text(screen)[0] == "-" * 10
    parser.feed(b"a\r\nb\r\nc\x1b[S")  # SU: scroll up one, cursor stays
    assert text(screen)[:3] == ["a", "b", "c"]
    parser.feed(b"\x1b[T")
    assert text(screen)[1:4] == ["a", "b", "c"]
    parser.feed(b"\x1b[H\x1b(0lqqk\x1b(B")  # DEC line drawing, as ncurses draws boxes
    assert text(screen)[0].startswith("┌──┐")


def test_garbage_does_not_break_the_parser() -> None:
    screen, parser = term()
    parser.feed(
        b"\x1b[?1A\x1b[>4;2m\x1b[99999999999999H\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\x1bPq#0\x1b\\ok\x9b\x00\x07"
    )
    assert "linkok" in screen.display[-1] or "linkok" in "".join(screen.display)
    assert not screen.cursor.attrs.underscore  # CSI > 4;2 m is a key-modifier option, not SGR 4
    parser.feed(b"\x1b[H\x1b\x1b[31mred")  # a stray ESC before a sequence does not eat it
    assert cell(screen, "red").fg == "red"


def test_random_bytes_never_raise() -> None:
    import random

    rng = random.Random(5)
    alphabet = b"\x1b[]?;:0123456789mHJKhlABCDrPX()#%\x07\x9b\r\n abc\xe6\x97\xa5\xf0\x9f"
    screen, parser = term(cols=30, rows=8)
    for _ in range(300):
        parser.feed(bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 400))))
        parser.feed(rng.randbytes(50))
    parser.feed(b"\x1b[1;2;3;4H\x1b[5;6;7;8;9r\x1b[1;2;3J\x1b[?2J\x1b[2;3;4@\x18\x1a\x1bc")
    parser.feed(b"ok")
    assert "ok" in screen.display[0]


# --- key translation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "character", "app_cursor", "expected"),
    [
        ("a", "a", False, b"a"),
        ("A", "A", False, b"A"),
        ("é", "é", False, "é".encode()),
        ("enter", "\r", False, b"\r"),
        ("tab", "\t", False, b"\t"),
        ("shift+tab", None, False, b"\x1b[Z"),
        ("backspace", "\x7f", False, b"\x7f"),
        ("escape", "\x1b", False, b"\x1b"),
        ("space", " ", False, b" "),
        ("ctrl+a", "\x01", False, b"\x01"),
        ("ctrl+c", "\x03", False, b"\x03"),
        ("ctrl+z", "\x1a", False, b"\x1a"),
        ("ctrl+@", "\x00", False, b"\x00"),
        ("ctrl+backslash", "\x1c", False, b"\x1c"),
        ("ctrl+underscore", "\x1f", False, b"\x1f"),
        ("up", None, False, b"\x1b[A"),
        ("down", None, False, b"\x1b[B"),
        ("right", None, False, b"\x1b[C"),
        ("left", None, False, b"\x1b[D"),
        ("up", None, True, b"\x1bOA"),
        ("left", None, True, b"\x1bOD"),
        ("home", None, False, b"\x1b[H"),
        ("end", None, True, b"\x1bOF"),
        ("ctrl+right", None, False, b"\x1b[1;5C"),
        ("shift+up", None, True, b"\x1b[1;2A"),
        ("alt+left", None, False, b"\x1b[1;3D"),
        ("pageup", None, False, b"\x1b[5~"),
        ("pagedown", None, False, b"\x1b[6~"),
        ("insert", None, False, b"\x1b[2~"),
        ("delete", None, False, b"\x1b[3~"),
        ("ctrl+delete", None, False, b"\x1b[3;5~"),
        ("f1", None, False, b"\x1bOP"),
        ("f4", None, False, b"\x1bOS"),
        ("f5", None, False, b"\x1b[15~"),
        ("f12", None, False, b"\x1b[24~"),
        ("ctrl+f1", None, False, b"\x1b[1;5P"),
        ("f13", None, False, b"\x1b[1;2P"),  # shift+F1 as Textual reports it
        ("alt+x", "x", False, b"\x1bx"),
        ("alt+shift+a", "A", False, b"\x1bA"),
        ("alt+enter", None, False, b"\x1b\r"),
        ("ctrl+alt+a", None, False, b"\x1b\x01"),
        ("plus", "+", False, b"+"),
        ("shift+f99", None, False, None),
    ],
)
def test_key_to_bytes(key: str, character: str | None, app_cursor: bool, expected: bytes | None) -> None:
    assert key_to_bytes(key, character, app_cursor=app_cursor) == expected


def test_paste_bytes() -> None:
    assert paste_to_bytes("a\nb") == b"a\rb"
    assert paste_to_bytes("x\r\ny", bracketed=True) == b"\x1b[200~x\ry\x1b[201~"
    assert paste_to_bytes("evil\x1b[201~rm", bracketed=True) == b"\x1b[200~evilrm\x1b[201~"


PASTE_ATTACKS = [
    "\x1b[20\x1b[201~1~touch /tmp/x\n",  # the end marker re-formed by a single-pass removal
    "\x1b[2\x1b[20\x1b[201~1~1~rm -rf ~\n",  # nested twice
    "\x1b[201~\x1b[201~echo out\n",
    "a\x9b201~b",  # C1 CSI: one byte, the same as ESC [
    "\x1b\x1b[201~[201~x",
    "\x1b]52;c;aGk=\x07 clipboard write",  # OSC 52
    "\x1bP+q544e\x1b\\ DCS",
    "\x1b[200~\x1b[201~",
    "tail\x1b",
    "\x1b[20\x1b[200~1~",
    "\x03\x04\x1a\x7f controls \x00",
]


def _assert_paste_is_inert(pasted: bytes) -> None:
    assert pasted.startswith(b"\x1b[200~") and pasted.endswith(b"\x1b[201~")
    body = pasted[len(b"\x1b[200~") : -len(b"\x1b[201~")].decode()
    assert not any(ch == "\x1b" or "\x80" <= ch <= "\x9f" for ch in body), repr(body)
    assert not any(ch < " " and ch not in "\t\r" for ch in body), repr(body)


@pytest.mark.parametrize("text", PASTE_ATTACKS)
def test_pasted_text_cannot_end_the_paste_or_carry_sequences(text: str) -> None:
    _assert_paste_is_inert(paste_to_bytes(text, bracketed=True))
    assert b"\x1b" not in paste_to_bytes(text)  # nor when the program did not ask for brackets


def test_random_pastes_are_always_inert() -> None:
    rng = random.Random(21)
    pieces = [
        "\x1b",
        "[",
        "200~",
        "201~",
        "20",
        "1~",
        "0~",
        "\x9b",
        "\x9d",
        "]",
        "\x07",
        "\\",
        "a",
        "\n",
        "~",
    ]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        _assert_paste_is_inert(paste_to_bytes(text, bracketed=True))


def test_paste_keeps_ordinary_text() -> None:
    text = 'for f in *; do\n\techo "$f" | tr a-z A-Z  # ünïcödé 日本 [201~\n'
    assert (
        paste_to_bytes(text, bracketed=True)
        == ("\x1b[200~" + text.replace("\n", "\r") + "\x1b[201~").encode()
    )


# --- the widget in an app ------------------------------------------------------------------------


class TermApp(App[None]):
    """A tiny host for the widget that records what it posts."""

    CSS = "Screen { layout: vertical; }"

    def __init__(self, *, scrollback: int = 5000, other: bool = False) -> None:
        super().__init__()
        self.scrollback = scrollback
        self.other = other
        self.inputs: list[bytes] = []
        self.sizes: list[tuple[int, int]] = []
        self.escapes = 0

    def compose(self) -> ComposeResult:
        from textual.widgets import Button

        if self.other:
            yield Button("other", id="other")
        yield TerminalView(scrollback=self.scrollback, id="term")

    def on_mount(self) -> None:
        self.query_one(TerminalView).focus()

    def on_terminal_view_input(self, message: TerminalView.Input) -> None:
        self.inputs.append(message.data)

    def on_terminal_view_resized(self, message: TerminalView.Resized) -> None:
        self.sizes.append((message.cols, message.rows))

    def on_terminal_view_escaped(self, message: TerminalView.Escaped) -> None:
        self.escapes += 1
        if self.other:
            self.query_one("#other").focus()


async def test_typed_keys_post_input_bytes() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(TerminalView)
        assert view.has_focus
        await pilot.press("l", "s", "enter", "ctrl+c", "tab", "up", "ctrl+d")
        await pilot.pause()
        assert b"".join(app.inputs) == b"ls\r\x03\t\x1b[A\x04"
        view.feed(b"\x1b[?1h")  # the program asks for application cursor keys
        view.flush()
        app.inputs.clear()
        await pilot.press("up", "home")
        await pilot.pause()
        assert app.inputs == [b"\x1bOA", b"\x1bOH"]


class PaletteApp(TermApp):
    """How an app lets the terminal have ctrl+p and ctrl+q, which Textual binds with priority."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("command_palette", "quit") and isinstance(self.focused, TerminalView):
            return False
        return True


async def test_app_can_yield_its_priority_keys_to_the_terminal() -> None:
    app = PaletteApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p", "ctrl+q")
        await pilot.pause()
        assert app.inputs == [b"\x10", b"\x11"]
        assert app.is_running


async def test_escape_key_posts_escaped_and_sends_nothing() -> None:
    app = TermApp(other=True)
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(TerminalView)
        assert view.has_focus
        await pilot.press(TerminalView.ESCAPE_KEY)
        await pilot.pause()
        assert app.escapes == 1 and app.inputs == []
        assert not view.has_focus and app.focused is app.query_one("#other")


async def test_resize_posts_resized_and_resizes_the_grid() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        view = app.query_one(TerminalView)
        assert app.sizes == [(80, 24)] and view.size_cells == (80, 24)
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert app.sizes[-1] == (100, 30) and view.size_cells == (100, 30)


async def test_paste_is_bracketed_when_the_program_asks() -> None:
    from textual import events

    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(TerminalView)
        view.post_message(events.Paste("one\ntwo"))
        await pilot.pause()
        view.feed(b"\x1b[?2004h")
        view.flush()
        view.post_message(events.Paste("x"))
        await pilot.pause()
        assert app.inputs == [b"one\rtwo", b"\x1b[200~x\x1b[201~"]


async def test_query_replies_are_sent_as_input() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(TerminalView)
        view.feed(b"hello\x1b[6n")
        view.flush()
        await pilot.pause()
        assert app.inputs == [b"\x1b[1;6R"]


async def test_scrollback_keys_and_return_to_bottom() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(TerminalView)
        view.feed(b"".join(f"line {i}\r\n".encode() for i in range(100)))
        view.flush()
        await pilot.press("shift+pageup")
        await pilot.pause()
        assert view.scrolled_back == 23 and app.inputs == []
        assert "line 54" in view.render_line(0).text  # rows 0-22 showed lines 77-99
        assert view.render_line(0).text.endswith(" ↑ 23/77 lines ")
        assert view.render_line(1).text.startswith("line 55")
        await pilot.press("shift+pagedown")
        assert view.scrolled_back == 0
        await pilot.press("shift+pageup", "x")
        await pilot.pause()
        assert view.scrolled_back == 0 and app.inputs == [b"x"]
        # In the alternate screen the same keys belong to the program.
        view.feed(b"\x1b[?1049h")
        view.flush()
        await pilot.press("shift+pageup")
        await pilot.pause()
        assert view.scrolled_back == 0 and app.inputs[-1] == b"\x1b[5;2~"


async def wheel(pilot, view: TerminalView, *, up: bool) -> None:
    from textual import events

    event = (events.MouseScrollUp if up else events.MouseScrollDown)(
        view, 5, 5, 0, -1 if up else 1, 0, False, False, False
    )
    view.post_message(event)
    await pilot.pause()


async def test_wheel_scrolls_history_or_sends_arrows_in_full_screen_programs() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(TerminalView)
        view.feed(b"".join(f"line {i}\r\n".encode() for i in range(50)))
        view.flush()
        await wheel(pilot, view, up=True)
        assert view.scrolled_back == 3
        await wheel(pilot, view, up=False)
        assert view.scrolled_back == 0
        view.feed(b"\x1b[?1049h\x1b[?1h")
        view.flush()
        await wheel(pilot, view, up=False)
        assert app.inputs == [b"\x1bOB" * 3]


async def test_synchronized_output_is_drawn_whole() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(TerminalView)
        view.feed(b"\x1b[?2026hhalf a frame")
        view.flush()
        assert "half" not in view.render_line(0).text  # held while the program is mid-frame
        view.feed(b", all of it\x1b[?2026l")
        view.flush()
        assert "half a frame, all of it" in view.render_line(0).text
        view.feed(b"\x1b[?2026hnever ended")
        await asyncio.sleep(0.4)  # a program that never ends its frame is shown anyway
        await pilot.pause()
        assert "never ended" in view.render_line(0).text


async def test_clicks_and_wheel_are_reported_when_the_program_tracks_the_mouse() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(TerminalView)
        await pilot.click(view, offset=(4, 2))
        assert app.inputs == []  # no tracking asked for: a click only focuses
        view.feed(b"\x1b[?1000h\x1b[?1006h")
        view.flush()
        await pilot.click(view, offset=(4, 2))
        await wheel(pilot, view, up=True)
        assert app.inputs == [b"\x1b[<0;5;3M", b"\x1b[<0;5;3m", b"\x1b[<64;6;6M"]


async def test_only_dirty_lines_are_refreshed() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(TerminalView)
        view.feed(b"first\r\n")
        view.flush()
        await pilot.pause()
        refreshed: list[tuple] = []
        original = view.refresh

        def spy(*regions, **kwargs):
            refreshed.append(regions)
            return original(*regions, **kwargs)

        view.refresh = spy  # type: ignore[method-assign]
        view.feed(b"abc")
        view.flush()
        assert refreshed and all(len(regions) == 1 and regions[0].height == 1 for regions in refreshed)
        assert {regions[0].y for regions in refreshed} == {1}


async def test_bulk_output_does_not_block_the_event_loop() -> None:
    """20 MB fed at once: the feed call returns at once and a 10 ms timer keeps ticking while the
    widget parses (observed for 1.5 s, then the rest is dropped to keep the test short). Gaps are
    measured in this thread's CPU time too, so a busy machine descheduling the test is not
    mistaken for the widget blocking the loop; the objects earlier tests of this worker left are frozen
    first, so a full collection of them is not counted as the widget's either."""
    line = b"drwxr-xr-x  2 root root  4096 Jan  1 00:00 \x1b[0m\x1b[01;34mdirectory\x1b[0m\r\n"
    data = line * (20_000_000 // len(line))
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        view = app.query_one(TerminalView)
        ticks: list[tuple[float, float]] = []
        app.set_interval(0.01, lambda: ticks.append((time.perf_counter(), time.thread_time())))
        gc.collect()
        gc.freeze()
        try:
            await asyncio.sleep(0.1)
            started = time.perf_counter()
            view.feed(data)
            feed_call = time.perf_counter() - started
            await asyncio.sleep(1.5)
        finally:
            gc.unfreeze()
        parsed = len(data) - view.pending_bytes
        pairs = [(b, a) for a, b in zip(ticks, ticks[1:], strict=False) if b[0] > started]
        view.reset()
        await pilot.pause()
    wall = max(b[0] - a[0] for b, a in pairs)
    cpu = max(b[1] - a[1] for b, a in pairs)
    assert feed_call < 0.25
    assert parsed > 1_000_000, f"only {parsed} bytes parsed in 1.5 s"
    assert cpu < 0.25, f"longest gap {wall * 1000:.0f} ms ({cpu * 1000:.0f} ms of CPU)"


# --- snapshots -----------------------------------------------------------------------------------


def _snapshot_app(data: bytes) -> tuple[TermApp, object]:
    app = TermApp()

    async def run_before(pilot) -> None:
        await pilot.pause()
        view = app.query_one(TerminalView)
        view.feed(data)
        view.flush()
        await pilot.pause()

    return app, run_before


def test_snapshot_ls_16_colours_and_wide(snap_compare) -> None:
    app, run_before = _snapshot_app(stream("ls_color") + stream("colours16") + stream("wide"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_snapshot_256_and_truecolour(snap_compare) -> None:
    app, run_before = _snapshot_app(stream("colours256") + stream("truecolour"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_snapshot_vim_full_screen(snap_compare) -> None:
    data = stream("vim")
    ready = data.index(b"\x1b[?25h", data.index(b"\x1b[?1049h"))  # vim's first full picture, cursor on
    app, run_before = _snapshot_app(data[: ready + len(b"\x1b[?25h")])
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
