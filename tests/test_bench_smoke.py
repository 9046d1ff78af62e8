"""The benchmark harness must not rot: run it on the smallest sizes (this checks it works, not speed)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.long  # about 2 minutes: the parallel suite starts it first

ROOT = Path(__file__).resolve().parent.parent


def test_bench_run_smoke(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run"), "--quick", "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OpenSSH median" in proc.stdout
    rows = json.loads(out.read_text())["rows"]
    names = " ".join(row["name"] for row in rows)
    for expected in ("exec", "job output", "control round trip", "idle agents", "first frame"):
        assert expected in names
    assert all(row["ours"]["values"] for row in rows), rows
