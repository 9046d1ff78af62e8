#!/usr/bin/env python3
"""Write screenshots/*.svg of the fleet view and its dialogs.

The scenes here are the very ones the snapshot tests (tests/test_tui_snapshots.py) compare: a demo
fleet of fixed ``Host`` models fed to the app through the messages its workers post, with a fixed
clock, so every run draws the same pictures. Usage: ``python scripts/screenshots.py [OUT_DIR]``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from textual.pilot import Pilot

from oc_tui.api.models import AgentInfo, Host, HostEvent, HostRegistration, HostSysInfo
from oc_tui.app import OcTuiApp
from oc_tui.config import Profile
from oc_tui.screens.fleet import FleetScreen
from oc_tui.screens.host_key import HostKeyScreen

NOW = datetime(2026, 3, 14, 9, 30, 0, tzinfo=UTC)
BASE_URL = "http://127.0.0.1:8787"
TENANT = "t_demo0001"


def _host(
    number: int, name: str, status: str, region: str | None, labels: dict[str, str], changed_min: int
) -> Host:
    created = NOW - timedelta(days=30 - number)
    changed = NOW - timedelta(minutes=changed_min)
    agent = None
    if status in ("online", "offline"):
        agent = AgentInfo(hostname=name, os="linux", os_release="6.8.0", arch="x86_64", agent_version="0.1.0")
    return Host(
        id=f"host_demo{number:04d}",
        name=name,
        region=region,
        status=status,
        tenant_id=TENANT,
        labels=labels,
        created_at=created,
        updated_at=changed,
        status_changed_at=changed,
        last_seen_at=NOW - timedelta(seconds=4) if status == "online" else changed,
        agent=agent,
    )


def demo_hosts() -> list[Host]:
    return [
        _host(1, "workstation", "online", None, {"os": "linux"}, 190),
        _host(2, "web-1", "online", "eu-west", {"env": "prod", "team": "web"}, 42),
        _host(3, "web-2", "offline", "eu-west", {"env": "prod", "team": "web"}, 3),
        _host(4, "db-primary", "online", "us-east", {"env": "prod", "role": "db"}, 2880),
        _host(5, "build-box", "pending", None, {"env": "ci"}, 1),
        _host(6, "old-laptop", "revoked", None, {}, 12000),
        _host(7, "gpu-rig", "error", "us-east", {"gpu": "a100"}, 15),
        _host(8, "staging-1", "online", "eu-west", {"env": "staging"}, 600),
    ]


def demo_events() -> list[HostEvent]:
    def status(host_id: str, new: str, old: str, minutes_ago: int) -> HostEvent:
        return HostEvent(
            type="status_change",
            host_id=host_id,
            data={"status": new, "previous": old},
            timestamp=NOW - timedelta(minutes=minutes_ago),
        )

    return [
        status("host_demo0007", "error", "online", 15),
        status("host_demo0003", "offline", "online", 3),
        HostEvent(
            type="host_registered",
            host_id="host_demo0005",
            data={"host": demo_hosts()[4].model_dump(mode="json")},
            timestamp=NOW - timedelta(minutes=1),
        ),
    ]


def demo_registration() -> HostRegistration:
    return HostRegistration(
        id="host_demo0009",
        name="new-server",
        region="eu-west",
        status="pending",
        tenant_id=TENANT,
        labels={"env": "prod"},
        created_at=NOW,
        updated_at=NOW,
        host_key="hk_3kQ9vTx7LmP2wRz8YbN4cD6fGh1jKs5u",
    )


def demo_sysinfo() -> HostSysInfo:
    return HostSysInfo(
        hostname="db-primary",
        os="linux",
        arch="x86_64",
        cpu_count=16,
        load_avg=[0.42, 0.38, 0.30],
        mem_total=64 * 1024**3,
        mem_available=41 * 1024**3,
        uptime_s=12 * 86400 + 5 * 3600,
    )


def demo_app() -> OcTuiApp:
    """The app as the operator sees it, minus the network: fixed clock, no workers."""
    profile = Profile(name="local", base_url=BASE_URL, token=None, embedded=True)
    return OcTuiApp(profile, clock=lambda: NOW, live=False)


# --- scenes: each drives a fresh demo_app() to one picture -------------------------------------


async def _settle(pilot: Pilot) -> None:
    """Let messages land and stop cursors blinking, so a picture never catches half a blink."""
    await pilot.pause()
    for widget in pilot.app.screen.query("Input, TextArea"):
        widget.cursor_blink = False
    await pilot.pause()


async def fleet(pilot: Pilot) -> None:
    """Hosts, events and live facts arrive the way the workers deliver them."""
    screen = pilot.app.screen
    assert isinstance(screen, FleetScreen)
    screen.post_message(FleetScreen.HostsLoaded(demo_hosts()))
    for event in demo_events():
        screen.post_message(FleetScreen.HostEventArrived(event))
    await pilot.pause()
    screen.table.select_host("host_demo0004")
    await pilot.pause()
    screen.post_message(FleetScreen.SysInfoLoaded("host_demo0004", demo_sysinfo()))
    await pilot.pause()


async def filtered(pilot: Pilot) -> None:
    await fleet(pilot)
    await pilot.press("slash", *"env=prod", "enter")
    await _settle(pilot)


async def register(pilot: Pilot) -> None:
    await fleet(pilot)
    await pilot.press("n", *"new-server", "tab", *"eu-west", "tab", *"env=prod")
    await _settle(pilot)


async def host_key(pilot: Pilot) -> None:
    await fleet(pilot)
    await pilot.app.push_screen(HostKeyScreen(demo_registration(), BASE_URL))
    await _settle(pilot)


async def revoke(pilot: Pilot) -> None:
    await fleet(pilot)
    await pilot.press("ctrl+d")
    await pilot.pause()


async def labels(pilot: Pilot) -> None:
    await fleet(pilot)
    await pilot.press("l")
    await _settle(pilot)


async def help_keys(pilot: Pilot) -> None:
    await fleet(pilot)
    await pilot.press("question_mark")
    await pilot.pause()


Scene = Callable[[Pilot], Awaitable[None]]
SCENES: dict[str, tuple[tuple[int, int], Scene]] = {
    "fleet": ((120, 40), fleet),
    "fleet-80x24": ((80, 24), fleet),
    "fleet-200x50": ((200, 50), fleet),
    "filter": ((120, 40), filtered),
    "register": ((120, 40), register),
    "host-key": ((120, 40), host_key),
    "revoke": ((120, 40), revoke),
    "labels": ((120, 40), labels),
    "help": ((120, 40), help_keys),
}


async def write_screenshots(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (size, scene) in SCENES.items():
        app = demo_app()
        async with app.run_test(size=size) as pilot:
            await scene(pilot)
            written.append(Path(app.save_screenshot(filename=f"{name}.svg", path=str(out_dir))))
    return written


def main() -> None:
    out_dir = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "screenshots"
    )
    for path in asyncio.run(write_screenshots(out_dir)):
        print(path)


if __name__ == "__main__":
    main()
