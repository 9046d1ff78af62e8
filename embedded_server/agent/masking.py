"""Masking of secret values in output, before it is spooled (docs/api.md, "Masking").

A :class:`Masker` replaces every occurrence of a delivered secret's value by ``***`` in one stream of
bytes, also when a value is split across chunks: the end of a chunk that could be the start of a value
is held back until the next chunk (or :meth:`Masker.flush` at the end) tells. Values are matched as
their exact UTF-8 bytes; a value of several lines is also matched line by line; values (and lines)
shorter than :data:`MIN_MASKED` bytes are not masked (they would mask ordinary output).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = b"***"
MIN_MASKED = 4  # bytes: shorter values (and lines of values) are not masked


def mask_patterns(values: Iterable[str]) -> list[bytes]:
    """The byte strings to mask for ``values``: each value, and each line of a value of several lines,
    at least :data:`MIN_MASKED` bytes long; longest first (so the longest match wins)."""
    found: set[bytes] = set()
    for value in values:
        raw = value.encode("utf-8", "surrogatepass")
        found.add(raw)
        if b"\n" in raw:
            found.update(line.rstrip(b"\r") for line in raw.split(b"\n"))
    return sorted((p for p in found if len(p) >= MIN_MASKED), key=len, reverse=True)


class Masker:
    """Masks ``values`` in one stream (a job's stdout, or its stderr), chunk by chunk.

    Args:
        values: the secret values delivered to the job.
    """

    def __init__(self, values: Iterable[str]) -> None:
        self.patterns = mask_patterns(values)
        self._regex = re.compile(b"|".join(re.escape(p) for p in self.patterns)) if self.patterns else None
        self._firsts = {p[0] for p in self.patterns}
        self._longest = max((len(p) for p in self.patterns), default=0)
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        """The masked bytes of ``data`` that can be released now (a possible start of a value at the
        end is held back for the next call)."""
        if self._regex is None:
            return data
        buf = self._pending + data
        out = bytearray()
        pos = 0
        hold = self._hold_from(buf, 0)
        for match in self._regex.finditer(buf):
            if match.start() >= hold:
                break
            out += buf[pos : match.start()]
            out += MASK
            pos = match.end()
            if pos > hold:
                hold = self._hold_from(buf, pos)
        out += buf[pos:hold]
        self._pending = buf[hold:]
        return bytes(out)

    def flush(self) -> bytes:
        """Everything held back, masked (the stream has ended)."""
        rest, self._pending = self._pending, b""
        return self._regex.sub(MASK, rest) if self._regex is not None else rest

    def _hold_from(self, buf: bytes, start: int) -> int:
        """The first index ``i >= start`` from which ``buf`` could still grow into a value (``buf[i:]`` is
        a proper prefix of a pattern); ``len(buf)`` when there is none."""
        end = len(buf)
        for i in range(max(start, end - self._longest + 1), end):
            if buf[i] not in self._firsts:
                continue
            tail = buf[i:]
            if any(len(p) > len(tail) and p.startswith(tail) for p in self.patterns):
                return i
        return end
