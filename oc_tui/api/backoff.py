"""One retry delay for everything that redials: the host agent, the client's event streams and the local
control-plane supervisor.

Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015): a
crowd of clients that lost the same server spreads its retries over the whole window instead of
stampeding it when it comes back.
"""

from __future__ import annotations

import random

_MAX_DOUBLINGS = 64  # 2**64 · base is past any cap; keeps the power from overflowing a float


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0, floor: float = 0.0) -> float:
    """The wait before retry number ``attempt``.

    Args:
        attempt: failed tries so far, 0 for the first retry (negative counts as 0).
        base: the window of the first retry, in seconds; it doubles with each failure.
        cap: the largest window, in seconds.
        floor: the shortest wait, in seconds (clipped to the window), so that a retry never comes
            back in the same instant as the failure.

    Returns:
        Seconds, uniform in ``[min(floor, window), window]`` where ``window = min(cap, base · 2**attempt)``.
    """
    window = min(cap, base * 2 ** min(max(attempt, 0), _MAX_DOUBLINGS))
    return random.uniform(min(floor, window), window)
