"""Base of the things the harness starts: whatever ``_start`` got going is undone if it fails half-way."""

from __future__ import annotations

from typing import Self


class Service:
    def _start(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        raise NotImplementedError
