"""Our terminal against a reference terminal: the same bytes fed to tmux and to ``TerminalScreen``.

The control sequences ``TERM=xterm-256color`` programs send (cursor positioning in every form, erase
and insert/delete, scroll regions, tabs and tab stops, character sets, DEC private modes, OSC and other
strings) and text in scripts whose marks have width 0 (Thai, Devanagari, Hangul jamo, emoji sequences)
are each written, after a screen full of text, into a tmux pane running ``cat`` (the tty in raw mode so
the bytes arrive unchanged). The visible screens (``capture-pane``) and cursor positions must be equal.
Every case gets its own pane in one tmux server, so the whole table costs a couple of seconds.

Where tmux itself does not follow xterm (tmux 3.3 has no HPR, VPR, CHT or DECSTR, keeps the column after
IL/DL, and puts BS from the pending-wrap column elsewhere), the case is checked against xterm's
documented behaviour (ctlseqs, and the DEC manuals it cites) instead: :data:`XTERM_CASES`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pyte
import pytest

from oc_tui.widgets.terminal.fastparse import FastStream
from oc_tui.widgets.terminal.screen import TerminalScreen

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is the reference terminal")

COLS, ROWS = 30, 10
E = "\x1b"
ROW = "abcdefghijklmnopqrstuvwxyz0123456789"
FILL = E + "[H" + "\r\n".join(f"{y}{ROW}"[:COLS] for y in range(ROWS)) + E + "[H"
"""A full screen: row y is ``y`` then the alphabet, so any move, erase or shift shows."""


def case(name: str, text: str, *, fill: bool = True) -> tuple[str, bytes]:
    return name, ((FILL if fill else "") + text).encode()


CASES = [
    # cursor positioning
    case("CUP", E + "[5;10HX"),
    case("CUP home", E + "[HX"),
    case("CUP row only", E + "[4HX"),
    case("CUP column only", E + "[;5HX"),
    case("CUP clamped", E + "[99;99HX"),
    case("CUP zeros", E + "[0;0HX"),
    case("HVP", E + "[3;7fX"),
    case("CUU", E + "[5;5H" + E + "[2AX"),
    case("CUU clamped", E + "[5;5H" + E + "[99AX"),
    case("CUU zero is one", E + "[5;5H" + E + "[0AX"),
    case("CUD", E + "[5;5H" + E + "[3BX"),
    case("CUD clamped", E + "[5;5H" + E + "[99BX"),
    case("CUF", E + "[5;5H" + E + "[4CX"),
    case("CUF clamped", E + "[5;5H" + E + "[99CX"),
    case("CUB", E + "[5;5H" + E + "[2DX"),
    case("CUB clamped", E + "[5;5H" + E + "[99DX"),
    case("CNL", E + "[5;5H" + E + "[2EX"),
    case("CPL", E + "[5;5H" + E + "[2FX"),
    case("CHA", E + "[5;5H" + E + "[12GX"),
    case("CHA clamped", E + "[5;5H" + E + "[99GX"),
    case("HPA", "name" + E + "[10`size"),
    case("HPA clamped", E + "[5;5H" + E + "[99`X"),
    case("VPA", E + "[5;5H" + E + "[8dX"),
    case("VPA clamped", E + "[5;5H" + E + "[99dX"),
    case("BS", E + "[5;5Hab\bX"),
    case("BS at the left edge", E + "[5;1H\b\bX"),
    case("CR", E + "[5;5Habc\rX"),
    case("LF VT FF", E + "[2;5Ha\nb\x0bc\x0cd"),
    case("NUL and DEL ignored", E + "[2;5Ha\x00b\x7fc"),
    case("DECSC DECRC", E + "[3;4H" + E + "7" + E + "[8;20H" + E + "8X"),
    case("SCOSC SCORC", E + "[3;4H" + E + "[s" + E + "[8;20H" + E + "[uX"),
    case("DECRC restores the charset", E + "(0" + E + "7" + E + "(B" + E + "8qq" + E + "(B", fill=False),
    # wrapping
    case("autowrap", "\r\n" * 3 + "w" * 35, fill=False),
    case("pending wrap then CR", "p" * 30 + "\rX", fill=False),
    case("pending wrap then CUP", "p" * 30 + E + "[2;1HX", fill=False),
    case("DECAWM off", E + "[?7l" + "n" * 35 + "X", fill=False),
    case("DECAWM back on", E + "[?7l" + E + "[?7h" + "m" * 35, fill=False),
    case("wrap at the bottom scrolls", E + "[10;1H" + "q" * 40),
    # erase, insert, delete
    case("ED 0", E + "[5;10H" + E + "[J"),
    case("ED 1", E + "[5;10H" + E + "[1J"),
    case("ED 2", E + "[5;10H" + E + "[2JX"),
    case("EL 0", E + "[5;10H" + E + "[K"),
    case("EL 1", E + "[5;10H" + E + "[1K"),
    case("EL 2", E + "[5;10H" + E + "[2KX"),
    case("ECH", E + "[5;10H" + E + "[5X"),
    case("ECH default", E + "[5;10H" + E + "[X"),
    case("ECH past the end", E + "[5;25H" + E + "[99X"),
    case("ICH", E + "[5;10H" + E + "[3@"),
    case("DCH", E + "[5;10H" + E + "[3P"),
    case("DCH past the end", E + "[5;10H" + E + "[99P"),
    case("IRM", E + "[5;10H" + E + "[4hINS" + E + "[4lrep"),
    case("REP", E + "[5;10Ha" + E + "[3b"),
    case("DECALN", E + "#8"),
    # scroll regions
    case("DECSTBM and LF", E + "[3;7r" + E + "[7;1H\n\nX"),
    case("DECSTBM homes the cursor", E + "[3;7rX"),
    case("DECSTBM invalid", E + "[7;3rX"),
    case("SU", E + "[2S"),
    case("SD", E + "[2T"),
    case("SU in a region", E + "[3;7r" + E + "[2S"),
    case("SD in a region", E + "[3;7r" + E + "[2T"),
    case("IND at the bottom", E + "[10;3H" + E + "DX"),
    case("RI at the top", E + "[1;3H" + E + "MX"),
    case("NEL", E + "[4;6H" + E + "EX"),
    case("RI at the region top", E + "[3;7r" + E + "[3;3H" + E + "MX"),
    case("IND at the region bottom", E + "[3;7r" + E + "[7;3H" + E + "DX"),
    case("LF below the region", E + "[3;7r" + E + "[10;1H\nX"),
    case("CUU stops at the top margin", E + "[3;7r" + E + "[5;2H" + E + "[9AX"),
    case("CUD stops at the bottom margin", E + "[3;7r" + E + "[5;2H" + E + "[9BX"),
    case("IL in a region", E + "[3;7r" + E + "[5;1H" + E + "[2L"),
    case("DL in a region", E + "[3;7r" + E + "[5;1H" + E + "[2M"),
    case("IL outside the region", E + "[3;7r" + E + "[9;1H" + E + "[2LX"),
    case("DECOM", E + "[3;7r" + E + "[?6h" + E + "[1;1HX" + E + "[99;1HY"),
    case("DECOM reset", E + "[3;7r" + E + "[?6h" + E + "[?6l" + E + "[1;1HX"),
    # tabs and tab stops
    case("HT", "a\tb\tc\tdefghijkl\tm\tn", fill=False),
    case("HT at the end", E + "[1;28H\t\tX"),
    case("HTS", E + "[1;5H" + E + "H\r\tX", fill=False),
    case("TBC 0", E + "[1;9H" + E + "[g\r\tX", fill=False),
    case("TBC 3", E + "[3g\r\tX", fill=False),
    case("CBT", E + "[1;20H" + E + "[ZX", fill=False),
    case("CBT 2", E + "[1;20H" + E + "[2ZX", fill=False),
    case("CBT at column 1", E + "[ZX", fill=False),
    case("CBT to a set stop", E + "[3g" + E + "[1;5H" + E + "H" + E + "[1;20H" + E + "[ZX", fill=False),
    # character sets
    case("DEC line drawing", E + "(0lqqk\r\nx  x\r\nmqqj" + E + "(Bok", fill=False),
    case("DEC graphics, every character", E + "(0`abcdefghijklmnopqrstuvwxyz{|}~" + E + "(B", fill=False),
    case("SO and SI", E + ")0a\x0eqqq\x0fb", fill=False),
    case("UK set", E + "(A#" + E + "(B#", fill=False),
    # DEC private modes
    case("alternate screen 1049", "main" + E + "[?1049h" + E + "[Halt" + E + "[?1049lX", fill=False),
    case("alternate screen 1047", "main" + E + "[?1047halt" + E + "[?1047lX", fill=False),
    case("alternate screen 47", "main" + E + "[?47halt" + E + "[?47lX", fill=False),
    case("DECTCEM", E + "[?25lhidden" + E + "[?25h", fill=False),
    case(
        "modes without text",
        E + "[?1h" + E + "[?2004h" + E + "[?1000h" + E + "[?12hok" + E + "[2 q",
        fill=False,
    ),
    case("RIS", E + "cX"),
    # OSC and other strings: never shown
    case("OSC title, BEL", E + "]0;title\x07text", fill=False),
    case("OSC title, ST", E + "]2;title" + E + "\\text", fill=False),
    case("OSC 8 hyperlink", E + "]8;;http://x" + E + "\\link" + E + "]8;;" + E + "\\!", fill=False),
    case("DCS", E + "P1$r" + E + "\\ok", fill=False),
    case("APC", E + "_x" + E + "\\ok", fill=False),
    case("SGR leaves the text", E + "[1;31;48;5;200;38;2;1;2;3mcolour" + E + "[0m", fill=False),
    # scripts whose marks have width 0, and emoji sequences
    case("Thai", "สวัสดีครับ ภาษาไทย|", fill=False),
    case("Hindi", "नमस्ते दुनिया हिन्दी|", fill=False),
    case("Korean", "안녕하세요 한국어|", fill=False),
    case("Hangul jamo", "\u1100\u1161\u11a8\u1112\u1161\u11ab|", fill=False),
    case("emoji", "😀 👍🏽 👨\u200d👩\u200d👧 1\ufe0f\u20e3 ❤\ufe0f|", fill=False),
    case("combining marks", "e\u0301 a\u0308\u0323 a\u20dd|", fill=False),
    case("marks across a wrap", "x" * 29 + "ส\u0e31\u0e48y|", fill=False),
]

XTERM_CASES: list[tuple[str, bytes, int, str, tuple[int, int]]] = [
    # name, bytes, row to check, that row's text, cursor (x, y) — per xterm's ctlseqs
    (*case("HPR moves right", E + "[5;5H" + E + "[3aX"), 4, "4abcdefXhijklmnopqrstuvwxyz012", (8, 4)),
    (*case("VPR moves down", E + "[5;5H" + E + "[2eX"), 6, "6abcXefghijklmnopqrstuvwxyz012", (5, 6)),
    (*case("CHT moves to the 2nd tab stop", "ab" + E + "[2IX", fill=False), 0, "ab" + " " * 14 + "X", (17, 0)),
    (*case("DECSTR resets the region and DECOM", E + "[3;7r" + E + "[?6h" + E + "[!p" + E + "[1;1HX"), 0,
     "Xabcdefghijklmnopqrstuvwxyz012", (1, 0)),
    (*case("IL moves to the left margin", E + "[5;10H" + E + "[2LX"), 4, "X", (1, 4)),
    (*case("DL moves to the left margin", E + "[5;10H" + E + "[2MX"), 4, "Xabcdefghijklmnopqrstuvwxyz012", (1, 4)),
    (*case("IL many", E + "[5;10H" + E + "[99L"), 4, "", (0, 4)),
    (*case("ICH past the end clears to it", E + "[5;10H" + E + "[99@"), 4, "4abcdefgh", (9, 4)),
    (*case("BS from the pending wrap", "p" * 30 + "\bX", fill=False), 0, "p" * 28 + "Xp", (29, 0)),
]  # fmt: skip

_SGR = re.compile(r"\x1b\[[0-9;:]*m")


def _visible(lines: list[str]) -> list[str]:
    """``capture-pane -e`` lines as they look: SGR dropped, DEC graphics (between SO and SI) drawn."""
    shown, graphics = [], False
    for line in lines:
        out = []
        for char in _SGR.sub("", line):
            if char == "\x0e":
                graphics = True
            elif char == "\x0f":
                graphics = False
            else:
                out.append(pyte.charsets.VT100_MAP[ord(char)] if graphics and ord(char) < 256 else char)
        shown.append("".join(out).rstrip())
    return shown


def tmux_screens(cases: list[tuple[str, bytes]], workdir: Path) -> list[tuple[list[str], tuple[int, int]]]:
    """Each case's bytes through its own tmux pane: the visible lines and the cursor, per case."""
    conf = workdir / "tmux.conf"
    conf.write_text("set -g status off\nset -g history-limit 0\n")
    tmux = ["tmux", "-L", f"oc-reference-{os.getpid()}", "-f", str(conf)]
    start: list[str] = []
    for i, (_, data) in enumerate(cases):
        (workdir / f"{i}.bin").write_bytes(data)
        shell = f"stty raw -echo; cat {workdir / f'{i}.bin'}; tmux wait-for -S done{i}; exec sleep 600"
        start += ["new-session", "-d", "-s", f"c{i}", "-x", str(COLS), "-y", str(ROWS), shell, ";"]
    subprocess.run(tmux + start[:-1], check=True, timeout=30)
    try:
        waits = [arg for i in range(len(cases)) for arg in ("wait-for", f"done{i}", ";")]
        subprocess.run(tmux + waits[:-1], check=True, timeout=30)

        def capture() -> list[tuple[list[str], tuple[int, int]]]:
            args = []
            for i in range(len(cases)):
                args += ["capture-pane", "-p", "-e", "-t", f"c{i}", ";"]
                args += ["display", "-p", "-t", f"c{i}", "@@#{cursor_x},#{cursor_y}", ";"]
            out = subprocess.run(tmux + args[:-1], check=True, capture_output=True, timeout=30).stdout
            screens, lines = [], []
            for line in out.decode().split("\n"):
                if line.startswith("@@"):
                    x, y = map(int, line[2:].split(","))
                    screens.append((_visible(lines), (x, y)))
                    lines = []
                else:
                    lines.append(line)
            return screens

        screens = capture()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until tmux has drawn everything cat wrote
            time.sleep(0.1)
            again = capture()
            if again == screens:
                break
            screens = again
        return screens
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)


def ours(data: bytes) -> tuple[list[str], tuple[int, int]]:
    screen = TerminalScreen(COLS, ROWS)
    FastStream(screen).feed(data)
    return [line.rstrip() for line in screen.display], (screen.cursor.x, screen.cursor.y)


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[list[str], tuple[int, int]]]]:
    screens = tmux_screens(CASES, tmp_path_factory.mktemp("tmux"))
    yield {name: screen for (name, _), screen in zip(CASES, screens, strict=True)}


def _clamped(cursor: tuple[int, int]) -> tuple[int, int]:
    """The cursor with a pending wrap shown on the last column (tmux says column 30, pyte 30 too, or 29)."""
    return min(cursor[0], COLS - 1), cursor[1]


@pytest.mark.parametrize(("name", "data"), CASES, ids=[name for name, _ in CASES])
def test_screen_matches_tmux(reference: dict, name: str, data: bytes) -> None:
    lines, cursor = ours(data)
    expected_lines, expected_cursor = reference[name]
    # Canonically equal text is the same picture: cells hold NFC (jamo composed, marks in order).
    assert lines == [unicodedata.normalize("NFC", line) for line in expected_lines]
    assert _clamped(cursor) == _clamped(expected_cursor)


@pytest.mark.parametrize(
    ("name", "data", "row", "text", "cursor"), XTERM_CASES, ids=[c[0] for c in XTERM_CASES]
)
def test_screen_matches_xterm_where_tmux_differs(
    name: str, data: bytes, row: int, text: str, cursor: tuple[int, int]
) -> None:
    lines, at = ours(data)
    assert lines[row] == text
    assert _clamped(at) == cursor
