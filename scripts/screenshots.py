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

from oc_tui.api.models import AgentInfo, Host, HostEvent, HostRegistration, HostSysInfo, Job
from oc_tui.app import OcTuiApp
from oc_tui.config import Profile
from oc_tui.screens.fanout import FanoutScreen
from oc_tui.screens.fleet import FleetScreen
from oc_tui.screens.host import HostScreen
from oc_tui.screens.host_key import HostKeyScreen
from oc_tui.screens.jobs_tab import JobsTab
from oc_tui.widgets.job_output import JobOutput

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


def _job(number: int, command: str, status: str, exit_code: int | None, ago_s: int, ran_s: float) -> Job:
    created = NOW - timedelta(seconds=ago_s)
    done = created + timedelta(seconds=ran_s) if status not in ("queued", "running") else None
    return Job(
        id=f"job_demo{number:04d}",
        host_id="host_demo0004",
        status=status,
        command=command,
        exit_code=exit_code,
        created_at=created,
        updated_at=done or created,
        completed_at=done,
        started_at=created,
    )


def demo_jobs() -> list[Job]:
    """Newest last here; the list shows them newest first."""
    return [
        _job(1, "uptime", "completed", 0, 3600, 0.1),
        _job(2, "make -C /srv/app build", "failed", 2, 1500, 48.2),
        _job(3, "sleep 300", "cancelled", None, 900, 61),
        _job(4, "journalctl -u postgresql --since today", "running", None, 75, 0),
        _job(5, "pytest -q --color=yes tests/", "completed", 0, 20, 6.4),
    ]


DEMO_OUTPUT = (
    b"\x1b[1m============================= test session starts ==============================\x1b[0m\n"
    b"platform linux -- Python 3.12.3, pytest-8.3.4\n"
    b"rootdir: /srv/app\n"
    b"collected 48 items\n\n"
    b"tests/test_api.py \x1b[32m.................\x1b[0m\x1b[32m                               [ 35%]\x1b[0m\n"
    b"tests/test_db.py \x1b[32m..........\x1b[0m\x1b[33ms\x1b[0m\x1b[32m                                    [ 58%]\x1b[0m\n"
    b"tests/test_jobs.py \x1b[32m....................\x1b[0m\x1b[32m                         [100%]\x1b[0m\n\n"
    b"\x1b[32m======================== \x1b[32m\x1b[1m47 passed\x1b[0m, \x1b[33m1 skipped\x1b[0m\x1b[32m in 6.21s\x1b[0m"
    b"\x1b[32m ========================\x1b[0m\n"
)
DEMO_STDERR = b"warning: 1 test skipped (needs a GPU)\n"


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


async def host_jobs(pilot: Pilot) -> None:
    """db-primary's Jobs tab: its jobs, and the selected one's coloured output with its exit line."""
    await fleet(pilot)
    await pilot.press("enter")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, HostScreen)
    tab = screen.query_one(JobsTab)
    screen.query_one("TabbedContent").active = "jobs"
    tab.command_line.history.extend(["uptime", "pytest -q --color=yes tests/"])
    tab.post_message(JobsTab.JobsLoaded(demo_jobs()))
    await pilot.pause()
    tab.post_message(JobsTab.OutputArrived("job_demo0005", DEMO_OUTPUT))
    tab.post_message(JobsTab.OutputArrived("job_demo0005", DEMO_STDERR, stderr=True))
    tab.post_message(JobsTab.OutputEnded("job_demo0005", {"status": "completed", "exit_code": 0}))
    await pilot.pause()
    tab.query_one(JobOutput).flush()
    await pilot.press(*"df -h /srv")
    await _settle(pilot)


def demo_fanout_runs(screen: FanoutScreen) -> None:
    """Five hosts: three finished (one failed), one still running, one offline (not run)."""
    results = {
        "host_demo0001": ("completed", 0, 0.2, b"Linux workstation 6.8.0-45-generic x86_64 GNU/Linux\n"),
        "host_demo0002": ("completed", 0, 0.3, b"Linux web-1 6.8.0-45-generic x86_64 GNU/Linux\n"),
        "host_demo0004": ("failed", 127, 0.1, b"sh: 1: uname: not found\n"),
        "host_demo0008": ("running", None, 0, b""),
    }
    for host_id, (status, exit_code, ran_s, output) in results.items():
        job = _job(10, "uname -a", status, exit_code, 4, ran_s).model_copy(update={"host_id": host_id})
        screen.post_message(FanoutScreen.JobChanged(host_id, job))
        if output:
            screen.post_message(FanoutScreen.OutputArrived(host_id, output, stderr=status == "failed"))
        if status != "running":
            screen.post_message(FanoutScreen.OutputEnded(host_id, {"status": status, "exit_code": exit_code}))


async def fanout(pilot: Pilot) -> None:
    """``x`` on five marked hosts (web-2 is offline), results as they came in."""
    await fleet(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, FleetScreen)
    screen.table.set_marked(
        {"host_demo0001", "host_demo0002", "host_demo0003", "host_demo0004", "host_demo0008"}
    )
    await pilot.press("x")
    await pilot.pause()
    await pilot.press(*"uname -a", "enter")
    await pilot.pause()
    results = pilot.app.screen
    assert isinstance(results, FanoutScreen)
    demo_fanout_runs(results)
    await pilot.pause()
    results.table.move_cursor(row=2, animate=False)
    await pilot.pause()
    results.output.flush()
    await _settle(pilot)


async def fanout_ask(pilot: Pilot) -> None:
    await fleet(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, FleetScreen)
    screen.table.set_marked({"host_demo0001", "host_demo0002", "host_demo0003"})
    await pilot.press("x")
    await pilot.pause()
    await pilot.press(*"uname -a")
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
    "host-jobs": ((120, 40), host_jobs),
    "host-jobs-80x24": ((80, 24), host_jobs),
    "fanout-ask": ((120, 40), fanout_ask),
    "fanout": ((120, 40), fanout),
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
