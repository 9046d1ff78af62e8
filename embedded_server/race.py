"""Two-way relays end when either way ends: :func:`until_first_ends` runs the ways and stops the rest."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


async def until_first_ends(
    *ways: Coroutine[Any, Any, None], ignore: tuple[type[BaseException], ...] = ()
) -> None:
    """Run ``ways`` as tasks until the first one ends; then cancel the others and wait for them.

    Args:
        ways: the coroutines (each direction of a relay, say).
        ignore: errors of the ways that only mean "this side closed" (they are swallowed, as is the
            cancellation); any other error propagates once every way has stopped.
    """
    tasks = [asyncio.ensure_future(way) for way in ways]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, *ignore):
                await task
