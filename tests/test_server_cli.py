"""``oc-server``'s command line: bad arguments are usage errors, never tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_a_port_out_of_range_is_a_usage_error(tmp_path: Path, port: str) -> None:
    cmd = [sys.executable, "-m", "embedded_server", "--data-dir", str(tmp_path), "--port", port]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "is not a port number" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
