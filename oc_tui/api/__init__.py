"""The OpenComputers API client: usable from scripts as an SDK (it never imports Textual).

from oc_tui.api import OpenComputersClient, errors, models

async with OpenComputersClient("https://api.miosa.ai", token) as client:
    async for host in client.iter_hosts():
        print(host.name, host.status)
"""

import logging

from . import errors, models
from .client import OpenComputersClient
from .streams import EventStream, StreamState, job_output_bytes

# A library logs; the application decides where to (a TUI must not get warnings on its screen).
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["EventStream", "OpenComputersClient", "StreamState", "errors", "job_output_bytes", "models"]
