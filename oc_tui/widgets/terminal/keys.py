"""Textual key names → the bytes xterm sends for them.

The encoding follows xterm (TERM=xterm-256color): cursor keys are ``CSI A``..``CSI D`` or, when the
program set application cursor mode (DECCKM), ``SS3 A``..``SS3 D``; modified keys use the
``CSI 1;<m>X`` / ``CSI <n>;<m>~`` form with m = 1 + shift + 2·alt + 4·ctrl; ctrl+letter is the C0
control; alt (and meta) prefix ESC; backspace sends DEL (``^?``). A paste becomes one write, wrapped in
``CSI 200~``/``CSI 201~`` when the program enabled bracketed paste (mode 2004), with newlines sent as
carriage returns as real terminals do.
"""

from __future__ import annotations

import re

_MODIFIERS = {"shift": 1, "alt": 2, "meta": 2, "ctrl": 4}
_CURSOR = {"up": "A", "down": "B", "right": "C", "left": "D", "home": "H", "end": "F"}
_TILDE = {
    "insert": 2,
    "delete": 3,
    "pageup": 5,
    "pagedown": 6,
    "f5": 15,
    "f6": 17,
    "f7": 18,
    "f8": 19,
    "f9": 20,
    "f10": 21,
    "f11": 23,
    "f12": 24,
}
_SS3 = {"f1": "P", "f2": "Q", "f3": "R", "f4": "S"}
# Textual reports shift+F1..F12 as F13..F24 (that is what xterm sends for them).
_SHIFTED_F = {f"f{n + 12}": f"f{n}" for n in range(1, 13)}
# ctrl with a non-letter: the C0 control xterm sends.
_CTRL_SYMBOLS = {
    "@": "\x00",
    "at": "\x00",
    "space": "\x00",
    "2": "\x00",
    "left_square_bracket": "\x1b",
    "3": "\x1b",
    "backslash": "\x1c",
    "4": "\x1c",
    "right_square_bracket": "\x1d",
    "5": "\x1d",
    "circumflex_accent": "\x1e",
    "6": "\x1e",
    "underscore": "\x1f",
    "minus": "\x1f",
    "7": "\x1f",
    "question_mark": "\x7f",
    "8": "\x7f",
    "slash": "\x1f",
}
_PLAIN = {
    "enter": "\r",
    "tab": "\t",
    "backspace": "\x7f",
    "escape": "\x1b",
    "space": " ",
    "newline": "\n",
}


def _split(key: str) -> tuple[set[str], str]:
    if key == "+" or key.endswith("++"):
        return set(key[:-2].split("+")) - {""}, "+"
    *mods, base = key.split("+")
    return set(mods), base


def key_to_bytes(key: str, character: str | None, *, app_cursor: bool = False) -> bytes | None:
    """The bytes to send to the program for a Textual key event, or None if the key sends nothing."""
    mods, base = _split(key)
    if base in _SHIFTED_F and not mods:
        mods, base = {"shift"}, _SHIFTED_F[base]
    code = 1 + sum(_MODIFIERS.get(m, 0) for m in mods)
    text = _encode(mods, base, character, code, app_cursor)
    return text.encode("utf-8") if text is not None else None


def _encode(mods: set[str], base: str, character: str | None, code: int, app_cursor: bool) -> str | None:
    if base in _CURSOR:
        final = _CURSOR[base]
        if code > 1:
            return f"\x1b[1;{code}{final}"
        return f"\x1bO{final}" if app_cursor else f"\x1b[{final}"
    if base in _TILDE:
        number = _TILDE[base]
        return f"\x1b[{number};{code}~" if code > 1 else f"\x1b[{number}~"
    if base in _SS3:
        return f"\x1b[1;{code}{_SS3[base]}" if code > 1 else f"\x1bO{_SS3[base]}"
    alt = "alt" in mods or "meta" in mods
    prefix = "\x1b" if alt else ""
    if base == "tab" and "shift" in mods:
        return prefix + "\x1b[Z"
    if "ctrl" in mods:
        if len(base) == 1 and base.isascii() and base.isalpha():
            return prefix + chr(ord(base.lower()) & 0x1F)
        if base in _CTRL_SYMBOLS:
            return prefix + _CTRL_SYMBOLS[base]
        if base == "backspace":
            return prefix + "\x08"
        if base in _PLAIN:
            return prefix + _PLAIN[base]
        return None
    if base in _PLAIN:
        return prefix + _PLAIN[base]
    if character is not None and character.isprintable() and character:
        return prefix + character
    if len(base) == 1:
        return prefix + (base.upper() if "shift" in mods else base)
    if character and len(character) == 1:
        return prefix + character
    return None


_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI (the paste markers ESC[200~ / ESC[201~ among them)
    r"|\x1b[\]P_^X][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS, APC, PM, SOS strings
    r"|\x1b[ -/]*[0-~]"  # other escape sequences (ESC c, ESC ( 0, ...)
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f]")
"""C0 controls other than tab, LF and CR, DEL, and every C1 control (0x9b is a one-byte CSI)."""


def sanitize_paste(text: str) -> str:
    """Pasted text with no control sequence left in it: complete sequences are removed until none is
    left (removing one can join its neighbours into another, ``ESC[20`` ``ESC[201~`` ``1~``), then every
    ESC and C1 control left over and the C0 controls other than tab, CR and LF are dropped, as xterm
    and kitty do. What remains cannot end a bracketed paste or be read as a key or command sequence.

    Args:
        text: what the clipboard held.
    Returns:
        The text to send (newlines unchanged).
    """
    while True:
        cleaned = _SEQUENCE.sub("", text)
        if cleaned == text:
            break
        text = cleaned
    return _CONTROLS.sub("", text.replace("\x1b", ""))


def paste_to_bytes(text: str, *, bracketed: bool = False) -> bytes:
    """A paste as one write: control sequences and controls removed (:func:`sanitize_paste`), newlines
    sent as CR; wrapped in ``CSI 200~``/``CSI 201~`` for programs that asked for bracketed paste."""
    body = sanitize_paste(text).replace("\r\n", "\r").replace("\n", "\r")
    if bracketed:
        body = "\x1b[200~" + body + "\x1b[201~"
    return body.encode("utf-8")
