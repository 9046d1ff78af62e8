"""The contract shared by the server and the client imports without the client (issue 11, item 5)."""

from __future__ import annotations

import subprocess
import sys

CLIENT_SIDE = (
    "httpx",
    "httpx_sse",
    "textual",
    "pyte",
    "websockets",
    "oc_tui.api.client",
    "oc_tui.api.streams",
)


def test_models_and_errors_import_without_the_http_client() -> None:
    code = (
        "import sys, oc_tui.api.models, oc_tui.api.errors, oc_tui.api.backoff\n"
        f"print(sorted({{m.split('.')[0] if not m.startswith('oc_tui') else m for m in sys.modules"
        f" if m.startswith({CLIENT_SIDE!r})}}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout


def test_the_client_names_still_load_from_the_package() -> None:
    import oc_tui.api as api
    from oc_tui.api import streams

    assert api.OpenComputersClient.__module__ == "oc_tui.api.client"
    assert api.JobOutputStream is streams.JobOutputStream
    assert api.job_output_bytes is streams.job_output_bytes
