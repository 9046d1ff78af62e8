"""Bytes to screen calls, several times faster than pyte's character-at-a-time parser.

pyte's ``ByteStream`` sends every character of an escape sequence through a Python generator, which
caps it near 1 MB/s. Here one regular expression splits each decoded chunk (in C) into runs of text
and complete control/escape sequences. Text runs go straight to :meth:`TerminalScreen.draw`; each
distinct sequence string is compiled once into a bound call (``"\\x1b[01;34m"`` →
``screen.sgr("01;34")``) and looked up in a dict afterwards, so colourful output such as ``ls --color``
costs one dict lookup per sequence.

What the expression does not recognise starting at an ESC goes to pyte's own parser, character by
character, exactly as stock pyte would handle it. A sequence cut by the end of a chunk is held back
and completed by the next one; UTF-8 is decoded incrementally, so a character split across chunks is
fine too.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from functools import partial

import pyte

from oc_tui.widgets.terminal.screen import Line, TerminalScreen

_TOKEN = re.compile(
    r"(\r\n"
    r"|\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: parameters, intermediates, final byte
    r"|\x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"  # OSC, terminated by BEL or ST
    r"|\x1b[P_^X][^\x1b\x9c]*(?:\x1b\\|\x9c)"  # DCS, APC, PM, SOS strings (ignored)
    r"|\x1b[()*+#%][ -~]"  # charset designation, DEC line attributes
    r"|\x1b[0-OQ-WYZ\\`-~]"  # ESC and one final byte: ESC 7, ESC M, ESC c, ESC =, ...
    r"|[\x00-\x1a\x1c-\x1f\x7f-\x9f]"  # one C0/C1 control other than ESC
    r"|\x1b)"  # an ESC none of the above completes: cut by the chunk's end, or unknown
)
_PARTIAL = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b\x9c]*\x1b?|[P_^X][^\x1b\x9c]*\x1b?|[()*+#%])?\Z")
_CSI = re.compile(r"\x1b\[([<=>?]?)([0-9;:]*)([ -/]*)([@-~])\Z")
MAX_HELD = 1 << 16
"""A sequence still open after this many characters is given up on (handed to pyte's parser)."""
_CACHE_LIMIT = 4096


class _Stream(pyte.Stream):
    """pyte's parser (for what the expression hands it) with HPA under its own final byte: pyte files
    ``CSI Pn ` `` under ``'``, so ``name ESC[10` size`` lost its column."""

    csi = {key: name for key, name in pyte.Stream.csi.items() if key != "'"} | {"`": "cursor_to_column"}


# CSI final byte -> screen method, for sequences without a private prefix or intermediates.
_CSI_METHODS = dict(_Stream.csi) | {
    "S": "scroll_up",
    "T": "scroll_down",
    "b": "repeat_last",
    "I": "tab_forward",
    "Z": "tab_back",
    "s": "save_cursor",
    "u": "restore_cursor",
    "E": "cursor_down1",
    "F": "cursor_up1",
}
_ESC_METHODS = {
    "7": "save_cursor",
    "8": "restore_cursor",
    "D": "index",
    "E": "crlf",
    "M": "reverse_index",
    "H": "set_tab_stop",
    "c": "reset",
}
_CONTROLS = {
    "\x07": "bell",
    "\x08": "backspace",
    "\x09": "tab",
    "\x0a": "linefeed",
    "\x0b": "linefeed",
    "\x0c": "linefeed",
    "\x0d": "carriage_return",
    "\x0e": "shift_out",
    "\x0f": "shift_in",
}


def _noop() -> None:
    pass


class FastStream:
    """Feeds bytes to a :class:`TerminalScreen`; :meth:`feed` keeps state between chunks."""

    def __init__(self, screen: TerminalScreen) -> None:
        self.screen = screen
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pyte = _Stream(screen)
        self._in_pyte = False
        """True while pyte's parser is inside a sequence it was handed."""
        self._held = ""
        self._handlers: dict[str, Callable[[], None]] = {}
        self._sgr_tokens: set[str] = set()
        """Cached tokens that only change attributes (the bulk path may apply them mid-line)."""

    def reset(self) -> None:
        self._decoder.reset()
        self._pyte = _Stream(self.screen)
        self._in_pyte = False
        self._held = ""

    def feed(self, data: bytes) -> None:
        self.feed_text(self._decoder.decode(data))

    def feed_text(self, text: str) -> None:
        if self._held:
            text, self._held = self._held + text, ""
        if self._in_pyte:
            text = text[self._to_pyte(text) :]
        while text:
            text = self._run(text)

    def _run(self, text: str) -> str:
        """Parse ``text``; returns what is left to parse after pyte's parser handled something."""
        parts = _TOKEN.split(text)
        draw = self.screen.draw
        handlers = self._handlers
        last = len(parts) - 1
        i = 0
        while True:
            run = parts[i]
            if run:
                draw(run)
            if i == last:
                return ""
            token = parts[i + 1]
            if token == "\r\n" and self.screen.can_append_lines:
                i = self._append_lines(parts, i + 1)
                continue
            handler = handlers.get(token)
            if handler is None:
                handler = self._compile(token)
                if handler is None:  # an ESC that starts nothing recognisable (yet)
                    rest = "".join(parts[i + 1 :])
                    if len(rest) > 1 and rest[1] < " ":
                        return rest[1:]  # ESC then a control (ESC ESC [ A ...): the first ESC is void
                    if len(rest) < MAX_HELD and _PARTIAL.match(rest):
                        self._held = rest
                        return ""
                    return rest[self._to_pyte(rest) :]
                if len(token) <= 32 and token[1:2] != "]":
                    if len(handlers) >= _CACHE_LIMIT:
                        handlers.clear()
                    handlers[token] = handler
            try:
                handler()
            except Exception:  # a sequence with parameters no screen method expects: ignore it
                pass
            i += 2

    def _append_lines(self, parts: list[str], start: int) -> int:
        """The bulk-output fast path, from the CR LF at ``parts[start]``: while the output is lines of
        ASCII text and colour changes that fit the width, build the new lines directly and scroll
        once at the end (:meth:`TerminalScreen.append_lines`). Returns the index of the next text
        part for the general loop (consumed parts are blanked)."""
        screen = self.screen
        columns = screen.columns
        sgr = self._sgr_tokens
        handlers = self._handlers
        default = screen.default_char
        cells_for = screen.cells_for
        lines: list[Line] = []
        append = lines.append
        line: Line = Line(default)  # replaced by the CR LF at parts[start] before anything is written
        x = 0
        last_char = ""
        last = len(parts) - 1
        k = start
        attrs = screen.attrs
        cell_of = cells_for(attrs).__getitem__  # the cursor's cells; looked up again after an SGR
        while True:
            token = parts[k]
            if token == "\r\n":
                line = Line(default)
                append(line)
                x = 0
            elif token in sgr and token in handlers:
                handlers[token]()
                if screen.attrs is not attrs:
                    attrs = screen.attrs
                    cell_of = cells_for(attrs).__getitem__
            elif token == "\x1b[K" and attrs == default:
                pass  # erasing to the end of a new line with default colours changes nothing
            else:
                parts[k - 1] = ""
                k -= 1
                break
            run = parts[k + 1]
            if run:
                end = x + len(run)
                if end > columns or not run.isascii():
                    k += 1
                    break
                line.update(zip(range(x, end), map(cell_of, run), strict=False))
                x = end
                last_char = run[-1]
                parts[k + 1] = ""
            k += 2
            if k > last:
                k = last
                break
        screen.append_lines(lines, x, last_char)
        return k

    def _to_pyte(self, text: str) -> int:
        """Give characters to pyte's parser until it is back to plain text; returns how many it took."""
        send = self._pyte._send_to_parser
        for index, char in enumerate(text):
            try:
                ready = send(char)
            except Exception:  # pyte re-initialises its parser after an error: plain text again
                ready = True
            if ready:
                self._in_pyte = False
                return index + 1
        self._in_pyte = True
        return len(text)

    def _compile(self, token: str) -> Callable[[], None] | None:
        """A zero-argument call that applies ``token`` to the screen (None: hand it to pyte)."""
        screen = self.screen
        if token == "\r\n":
            return screen.crlf
        if len(token) == 1:
            if token == "\x1b":
                return None
            name = _CONTROLS.get(token)
            return getattr(screen, name) if name else _noop
        kind = token[1]
        if kind == "[":
            return self._compile_csi(token)
        if kind == "]":
            return self._compile_osc(token)
        if kind in "()":
            if token[2] in pyte.charsets.MAPS:
                return partial(screen.define_charset, token[2], kind)
            return _noop
        if token == "\x1b#8":
            return screen.alignment_display
        name = _ESC_METHODS.get(kind)
        return getattr(screen, name) if name else _noop

    def _compile_csi(self, token: str) -> Callable[[], None]:
        screen = self.screen
        match = _CSI.match(token)
        if match is None:
            return _noop
        prefix, params, intermediates, final = match.groups()
        if intermediates:
            return screen.soft_reset if intermediates == "!" and final == "p" else _noop
        if prefix not in ("", "?"):
            return _noop  # secondary DA, xterm key modifier options, ...: nothing to do
        if final == "m" and not prefix:
            if len(self._sgr_tokens) < _CACHE_LIMIT:
                self._sgr_tokens.add(token)
            return screen.sgr_reset if params in ("", "0") else partial(screen.sgr, params)
        if ":" in params:
            return _noop
        args = [min(int(p or 0), 9999) for p in params.split(";")]
        if prefix == "?":
            if final == "h":
                return partial(screen.set_mode, *args, private=True)
            if final == "l":
                return partial(screen.reset_mode, *args, private=True)
            return _noop
        if final == "h":
            return partial(screen.set_mode, *args)
        if final == "l":
            return partial(screen.reset_mode, *args)
        if final in "su" and params:
            return _noop  # CSI Ps;Ps s is DECSLRM (left/right margins), not a cursor save
        name = _CSI_METHODS.get(final)
        if name is None:
            return _noop
        method = getattr(screen, name)
        if name in ("save_cursor", "restore_cursor"):
            return method
        return partial(method, *args)

    def _compile_osc(self, token: str) -> Callable[[], None]:
        body = token[2:].rstrip("\x07\x9c").removesuffix("\x1b\\")
        code, _, param = body.partition(";")
        screen = self.screen
        calls: list[Callable[[], None]] = []
        if code in ("0", "1"):
            calls.append(partial(screen.set_icon_name, param))
        if code in ("0", "2"):
            calls.append(partial(screen.set_title, param))
        if not calls:
            return _noop

        def apply() -> None:
            for call in calls:
                call()

        return apply
