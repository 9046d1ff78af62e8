"""Snapshots of the fleet view and its dialogs.

The scenes come from scripts/screenshots.py (the same ones that draw screenshots/*.svg): a fixed
demo fleet fed through the fleet screen's messages, with a fixed clock, so pictures are stable.
Regenerate after an intended change: ``pytest tests/test_tui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "screenshots.py"
_spec = importlib.util.spec_from_file_location("oc_tui_screenshots", _SCRIPT)
assert _spec is not None and _spec.loader is not None
screenshots = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = screenshots
_spec.loader.exec_module(screenshots)


@pytest.mark.parametrize(
    "scene",
    [
        "fleet",
        "fleet-80x24",
        "filter",
        "register",
        "host-key",
        "revoke",
        "labels",
        "help",
        "host-jobs",
        "host-jobs-80x24",
        "fanout-ask",
        "fanout",
        "fanout-grouped",
        "fanout-grouped-80x24",
        "push",
        "push-80x24",
        "broadcast",
        "groups-view",
        "host-files",
        "host-files-80x24",
        "host-files-transfer",
        "host-terminal",
        "host-terminal-80x24",
        "host-desktop",
        "host-tunnels",
        "host-tunnels-80x24",
        "tunnel-form",
        "tunnels-view",
        "tunnel-inspector",
        "tunnel-inspector-80x24",
        "host-secrets",
        "host-secrets-80x24",
        "secret-form",
        "secrets-view",
        "host-agents",
        "agent-dispatch",
        "agent-session-80x24",
        "agents-view",
        "clusters-view",
        "cluster-form",
        "cluster-topology",
        "cluster-topology-80x24",
        "fleet-60x14",
        "fanout-80x24",
        "help-80x24",
        "register-80x24",
        "host-desktop-80x24",
        "tunnels-view-80x24",
        "rename-80x24",
        "purge-80x24",
        "job-options-80x24",
        "save-output-80x24",
        "host-jobs-160x45",
    ],
)
def test_snapshot(snap_compare, scene: str) -> None:
    size, run_before = screenshots.SCENES[scene]
    assert snap_compare(screenshots.demo_app(), terminal_size=size, run_before=run_before)
