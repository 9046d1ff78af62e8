"""The OpenComputers API client: usable from scripts as an SDK (it never imports Textual).

from oc_tui.api import OpenComputersClient, errors, models

async with OpenComputersClient("https://api.miosa.ai", token) as client:
    async for host in client.iter_hosts():
        print(host.name, host.status)

The contract (``models``, ``errors``, ``backoff``) imports without the HTTP client: the embedded server
uses it, and loading ``OpenComputersClient``, the SSE streams, terminal or transfer modules is left to
the first use of those names (PEP 562 module ``__getattr__``).
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from . import errors, models

if TYPE_CHECKING:
    from .client import OpenComputersClient
    from .streams import (
        EventStream,
        JobExit,
        JobOutputItem,
        JobOutputStream,
        OutputChunk,
        OutputTruncated,
        StreamState,
        job_output_bytes,
    )

# A library logs; the application decides where to (a TUI must not get warnings on its screen).
logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY = {
    "OpenComputersClient": ".client",
    "EventStream": ".streams",
    "StreamState": ".streams",
    "job_output_bytes": ".streams",
    "JobExit": ".streams",
    "JobOutputItem": ".streams",
    "JobOutputStream": ".streams",
    "OutputChunk": ".streams",
    "OutputTruncated": ".streams",
}


def __getattr__(name: str) -> Any:
    """Load the client-side names on first use, so importing the contract stays cheap."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "EventStream",
    "JobExit",
    "JobOutputItem",
    "JobOutputStream",
    "OpenComputersClient",
    "OutputChunk",
    "OutputTruncated",
    "StreamState",
    "errors",
    "job_output_bytes",
    "models",
]
