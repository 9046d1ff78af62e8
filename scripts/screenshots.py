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
from typing import TypeVar

from textual.pilot import Pilot
from textual.widgets import Collapsible, Input

from oc_tui.api.models import (
    AgentEvent,
    AgentInfo,
    AgentSession,
    Cluster,
    DetectedEngine,
    FsEntry,
    FsList,
    FsStat,
    Host,
    HostEvent,
    HostRegistration,
    HostSysInfo,
    Job,
    Secret,
    Tunnel,
    TunnelRequest,
)
from oc_tui.app import OcTuiApp
from oc_tui.config import Profile
from oc_tui.screens.agent_session import AgentSessionScreen
from oc_tui.screens.agents import DispatchForm
from oc_tui.screens.agents_tab import AgentsTab
from oc_tui.screens.cluster_topology import ClusterScreen
from oc_tui.screens.clusters import ClusterForm
from oc_tui.screens.fanout import FanoutScreen
from oc_tui.screens.files_tab import FilesTab
from oc_tui.screens.fleet import FleetScreen
from oc_tui.screens.host import HostScreen
from oc_tui.screens.host_key import HostKeyScreen
from oc_tui.screens.host_tab import HostTab
from oc_tui.screens.jobs_tab import JobsTab
from oc_tui.screens.resource import ResourceScreen
from oc_tui.screens.secrets import HOST, SHADOWED, SecretForm
from oc_tui.screens.secrets import TENANT as TENANT_SCOPE
from oc_tui.screens.secrets_tab import SecretsTab
from oc_tui.screens.tunnel_inspector import TunnelInspectorScreen
from oc_tui.screens.tunnels import TunnelForm
from oc_tui.screens.tunnels_tab import TunnelsTab
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


DEMO_FANOUT_HOSTS = ("host_demo0001", "host_demo0002", "host_demo0003", "host_demo0004", "host_demo0008")
"""The five hosts the fan-out, push and broadcast scenes act on."""


def demo_fanout_runs(screen: FanoutScreen) -> None:
    """Five hosts: three finished (one failed), one still running, one offline (not run)."""
    results = {
        "host_demo0001": ("completed", 0, 0.2, b"6.8.0-45-generic\n"),
        "host_demo0002": ("completed", 0, 0.3, b"6.8.0-45-generic\n"),
        "host_demo0004": ("failed", 127, 0.1, b"sh: 1: uname: not found\n"),
        "host_demo0008": ("running", None, 0, b""),
    }
    for host_id, (status, exit_code, ran_s, output) in results.items():
        job = _job(10, "uname -r", status, exit_code, 4, ran_s).model_copy(update={"host_id": host_id})
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
    screen.table.set_marked(set(DEMO_FANOUT_HOSTS))
    await pilot.press("x")
    await pilot.pause()
    await pilot.press(*"uname -r", "enter")
    await pilot.pause()
    results = pilot.app.screen
    assert isinstance(results, FanoutScreen)
    demo_fanout_runs(results)
    await pilot.pause()
    results.table.move_cursor(row=2, animate=False)
    await pilot.pause()
    results.output.flush()
    await _settle(pilot)


async def fanout_grouped(pilot: Pilot) -> None:
    """The same results grouped (``g``): hosts with identical output and exit together, dshbak-style."""
    await fanout(pilot)
    await pilot.press("g")
    await pilot.pause(0.4)  # the grouped table refreshes every 0.25 s
    pilot.app.screen.query_one(JobOutput).flush()
    await _settle(pilot)


async def push(pilot: Pilot) -> None:
    """``P``: a file pushed to five hosts, each host's upload in its row, the outcome grouped below."""
    from oc_tui.screens.push import PushScreen, PushSpec

    await fleet(pilot)
    hosts = [host for host in demo_hosts() if host.id in DEMO_FANOUT_HOSTS]
    screen = PushScreen(hosts, PushSpec(Path("deploy/app.conf"), "~/etc/app.conf"))
    await pilot.app.push_screen(screen)
    await pilot.pause()
    for host_id, state, finished in (
        ("host_demo0001", "done (11.7 KiB)", True),
        ("host_demo0002", "done (11.7 KiB)", True),
        ("host_demo0004", "permission denied: /root/etc/app.conf", True),
        ("host_demo0008", "uploading 40%", False),
    ):
        screen.post_message(PushScreen.Progress(host_id, state, finished))
    await _settle(pilot)


async def broadcast(pilot: Pilot) -> None:
    """``T``: a terminal on each of four hosts, input broadcast on (the banner says so)."""
    from oc_tui.screens.broadcast import BroadcastScreen

    await fleet(pilot)
    hosts = [host for host in demo_hosts() if host.id in DEMO_FANOUT_HOSTS][:4]
    screen = BroadcastScreen(hosts, live=False)
    await pilot.app.push_screen(screen)
    await pilot.pause()
    for pane in screen.panes:
        pane.view.feed(b"$ echo hi\r\nhi\r\n$ ")
    screen.set_focus(None)
    await pilot.press("b")
    await _settle(pilot)


async def groups_view(pilot: Pilot) -> None:
    """``:groups``: the host groups (saved views), explicit and by tag query."""
    from oc_tui.api.models import Group

    await fleet(pilot)
    await pilot.press("colon", *"groups", "enter")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ResourceScreen)
    groups = [
        Group(id="grp_demo1", name="web", kind="tag_query", tag_query={"and": ["role=web"]}, member_count=41),
        Group(
            id="grp_demo2",
            name="prod-db",
            kind="tag_query",
            tag_query={"and": ["env=prod", {"or": ["role=db", "role=cache"]}]},
            member_count=6,
        ),
        Group(id="grp_demo3", name="canary", member_count=3),
    ]
    screen.post_message(ResourceScreen.Loaded([g.model_copy(update={"status": ""}) for g in groups]))
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


async def rename(pilot: Pilot) -> None:
    """``e`` on db-primary: its new name typed."""
    await fleet(pilot)
    await pilot.press("e", "ctrl+u", *"db-primary-eu")
    await _settle(pilot)


async def purge(pilot: Pilot) -> None:
    """``ctrl+d`` on a revoked host: delete it from the list (asks first, saying what goes)."""
    await fleet(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, FleetScreen)
    screen.table.select_host("host_demo0006")
    await pilot.pause()
    await pilot.press("ctrl+d")
    await _settle(pilot)


async def job_options(pilot: Pilot) -> None:
    """``ctrl+o`` in the Jobs tab: the next jobs' directory, environment and time limit."""
    await host_jobs(pilot)
    await pilot.press("ctrl+o")
    await pilot.pause()
    dialog = pilot.app.screen
    dialog.query_one("#cwd", Input).value = "/srv/app"
    dialog.query_one("#env", Input).value = "PYTHONWARNINGS=error CI=1"
    dialog.query_one("#timeout", Input).value = "900"
    await _settle(pilot)


async def save_output(pilot: Pilot) -> None:
    """``ctrl+s`` in the Jobs tab: where to save the selected job's whole output."""
    await host_jobs(pilot)
    from oc_tui.screens.job_dialogs import SaveOutputDialog

    await pilot.app.push_screen(
        SaveOutputDialog(None, "host_demo0004", "job_demo0005", Path("/home/me/Downloads/job_demo0005.log"))
    )
    await _settle(pilot)


async def host_jobs_long(pilot: Pilot) -> None:
    """The Jobs tab in a wide terminal: a long command uses the width there is."""
    await host_jobs(pilot)
    tab = pilot.app.screen.query_one(JobsTab)
    command = (
        "rsync -avz --delete --exclude '*.pyc' /srv/app/ backup@storage.example.com:/backups/app/$(date +%F)/"
        " && echo backed up"
    )
    tab.post_message(JobsTab.JobsLoaded([_job(6, command, "running", None, 5, 0)]))
    await _settle(pilot)


async def help_keys(pilot: Pilot) -> None:
    await fleet(pilot)
    await pilot.press("question_mark")
    await pilot.pause()


def demo_files() -> FsList:
    """/srv/app on db-primary: directories first, a symlink, files of all sizes."""

    def entry(
        name: str, size: int, minutes_ago: int, mode: str, is_dir: bool = False, link: bool = False
    ) -> FsEntry:
        return FsEntry(
            name=name,
            path=f"/srv/app/{name}",
            size=size,
            is_dir=is_dir,
            is_symlink=link,
            mode_string=mode,
            modified_at=NOW - timedelta(minutes=minutes_ago),
        )

    return FsList(
        path="/srv/app",
        entries=[
            entry(".git", 4096, 12, "drwxr-xr-x", is_dir=True),
            entry("migrations", 4096, 2900, "drwxr-xr-x", is_dir=True),
            entry("static", 4096, 45000, "drwxr-xr-x", is_dir=True),
            entry("current", 11, 600, "lrwxrwxrwx", is_dir=True, link=True),
            entry("README.md", 2_318, 4000, "-rw-r--r--"),
            entry("app.py", 1_466, 8, "-rw-r--r--"),
            entry("backup-2026-03-01.tar.gz", 1_782_579_200, 19000, "-rw-------"),
            entry("config.toml", 512, 200, "-rw-r-----"),
            entry("deploy.sh", 903, 90000, "-rwxr-xr-x"),
            entry("logo.png", 48_213, 30000, "-rw-r--r--"),
            entry("requirements.txt", 162, 12000, "-rw-r--r--"),
        ],
    )


DEMO_SOURCE = """\"\"\"The web app: routes and startup.\"\"\"

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException

from .db import Database

log = logging.getLogger(__name__)
app = FastAPI(title="shop")
db = Database.from_env()


@app.get("/items/{item_id}")
async def get_item(item_id: int) -> dict[str, object]:
    \"\"\"One item, or 404.\"\"\"
    item = await db.fetch_item(item_id)
    if item is None:
        raise HTTPException(404, f"no item {item_id}")
    return {"id": item.id, "name": item.name, "price": item.price}


@app.on_event("startup")
async def startup() -> None:
    await db.connect()
    log.info("ready on %s", db.url)
"""


async def _files_tab(pilot: Pilot) -> FilesTab:
    """db-primary's Files tab listing /srv/app with app.py highlighted and previewed."""
    await fleet(pilot)
    await pilot.press("enter")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, HostScreen)
    await pilot.press("f")
    await pilot.pause()
    tab = screen.query_one(FilesTab)
    tab.clock = lambda: NOW
    listing = demo_files()
    tab.post_message(FilesTab.Listed(listing, select="app.py"))
    await pilot.pause()
    app_py = next(entry for entry in listing.entries if entry.name == "app.py")
    stat = FsStat(
        path=app_py.path,
        size=app_py.size,
        mode=app_py.mode,
        mode_string=app_py.mode_string,
        is_dir=False,
        modified_at=app_py.modified_at,
    )
    tab.post_message(FilesTab.Previewed(app_py.path, stat, "text", text=DEMO_SOURCE))
    await pilot.pause()
    return tab


async def host_files(pilot: Pilot) -> None:
    await _files_tab(pilot)
    await _settle(pilot)


async def host_files_transfer(pilot: Pilot) -> None:
    """A download half way, with its rate and time left, and an upload waiting behind it."""
    tab = await _files_tab(pilot)
    size = 1_782_579_200
    download = tab.add_transfer(
        "download",
        "/srv/app/backup-2026-03-01.tar.gz",
        "/home/me/Downloads/backup-2026-03-01.tar.gz",
        size=size,
    )
    tab.add_transfer("upload", "/srv/app/static/logo.png", "/home/me/logo.png", size=48_213)
    tab.post_message(FilesTab.TransferProgress(download.id, 700_000_000, size, at=100.0))
    tab.post_message(FilesTab.TransferProgress(download.id, 820_000_000, size, at=101.0))
    await pilot.pause()
    pilot.app.clear_notifications()
    await _settle(pilot)


def demo_terminal(cols: int) -> bytes:
    """A shell on db-primary after ``ls``, a colour test and ``git log``: 16, 256 and truecolour, text
    styles and wide characters, as a PTY would send them."""
    prompt = "\x1b[1;32mops@db-primary\x1b[0m:\x1b[1;34m/srv/app\x1b[0m$ "
    width = max(16, min(cols - 13, 72))
    palette = "".join(f"\x1b[48;5;{16 + i * 216 // width}m " for i in range(width))
    gradient = "".join(
        f"\x1b[48;2;{255 - i * 255 // width};{i * 200 // width};{80 + i * 175 // width}m "
        for i in range(width)
    )
    lines = [
        prompt + "ls --color=auto",
        "\x1b[1;34mmigrations\x1b[0m  \x1b[1;34mstatic\x1b[0m  \x1b[1;36mcurrent\x1b[0m  README.md  app.py  "
        "\x1b[1;31mbackup.tar.gz\x1b[0m  \x1b[1;32mdeploy.sh\x1b[0m  \x1b[1;35mlogo.png\x1b[0m",
        prompt + "./colours",
        "16 colours  "
        + "".join(f"\x1b[4{i}m  " for i in range(8))
        + "".join(f"\x1b[10{i}m  " for i in range(8)),
        "\x1b[0m256 colours " + palette + "\x1b[0m",
        "truecolour  " + gradient + "\x1b[0m",
        "styles      \x1b[1mbold\x1b[0m \x1b[3mitalic\x1b[0m \x1b[4munderline\x1b[0m \x1b[7mreverse\x1b[0m "
        "\x1b[2mdim\x1b[0m \x1b[9mstrike\x1b[0m \x1b[1;4;38;5;208morange\x1b[0m",
        "wide        日本語のテキスト · 한국어 · 中文 ✓",
        prompt + "git log --oneline --graph -4",
        "* \x1b[33m3d3a4b9 (\x1b[1;36mHEAD -> \x1b[1;32mmain\x1b[0;33m, \x1b[1;31morigin/main\x1b[0;33m)\x1b[0m "
        "Session bridge for terminal and desktop",
        "* \x1b[33me6dfd43\x1b[0m Spine for files, terminal and desktop",
        "\x1b[31m|\x1b[0m\\  ",
        "\x1b[31m|\x1b[0m * \x1b[33mfc113ac\x1b[0m One paging query for hosts and jobs",
        prompt,
    ]
    return "\r\n".join(lines).encode()


async def host_terminal(pilot: Pilot) -> None:
    """``t`` on db-primary: its Terminal tab with two terminals, the first showing colourful output
    (fed to the widget: the demo app opens no session)."""
    from oc_tui.screens.terminal_tab import TerminalTab

    await fleet(pilot)
    await pilot.press("t")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, HostScreen)
    tab = screen.query_one(TerminalTab)
    while not tab.panes:
        await pilot.pause()
    await tab.new_terminal()
    first = tab.panes[0]
    tab.bar.active = "tab-terminal-1"
    first.view.focus()
    await pilot.pause()
    first.view.feed(demo_terminal(first.view.size_cells[0]))
    first.view.flush()
    await _settle(pilot)


def demo_desktop_picture():
    """A small made-up desktop (640×400): sky, hills, a window with a title bar, a taskbar."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 400))
    draw = ImageDraw.Draw(image)
    for y in range(400):
        draw.line([(0, y), (639, y)], fill=(40 + y // 5, 90 + y // 4, 170 + y // 6))
    draw.ellipse((500, 40, 580, 120), fill=(255, 214, 90))
    draw.polygon(
        [(0, 330), (160, 230), (330, 320), (470, 250), (640, 330), (640, 400), (0, 400)], fill=(56, 120, 70)
    )
    draw.rectangle((70, 70, 390, 290), fill=(245, 245, 240), outline=(30, 30, 30), width=2)
    draw.rectangle((72, 72, 388, 96), fill=(60, 70, 110))
    for i, colour in enumerate([(230, 80, 70), (240, 190, 60), (90, 190, 90)]):
        draw.ellipse((82 + 22 * i, 78, 96 + 22 * i, 92), fill=colour)
    for i in range(6):
        draw.rectangle((90, 112 + 26 * i, 90 + (260 - 33 * (i % 4)), 124 + 26 * i), fill=(120, 120, 130))
    draw.rectangle((0, 376, 639, 399), fill=(25, 28, 36))
    draw.rectangle((6, 380, 60, 395), fill=(80, 140, 220))
    return image


async def host_desktop(pilot: Pilot) -> None:
    """db-primary's Desktop tab showing a still demo picture (no VNC server needed)."""
    from oc_tui.screens.desktop_tab import DesktopTab

    await fleet(pilot)
    await pilot.press("enter")
    await pilot.pause()
    await pilot.press("d")
    await pilot.pause()
    tab = pilot.app.screen.query_one(DesktopTab)
    tab.show_picture(demo_desktop_picture())
    await pilot.pause()
    tab.view.focus()
    await _settle(pilot)


def demo_tunnels(host_id: str = "host_demo0004", host_name: str | None = None) -> list[Tunnel]:
    """Three tunnels of one host, one in each auth mode, one disabled."""

    def tunnel(number: int, slug: str, port: int, mode: str, enabled: bool, rate: int) -> Tunnel:
        at = NOW - timedelta(days=number)
        fields = {"host_name": host_name} if host_name else {}
        return Tunnel.model_validate(
            {
                "id": f"tun_demo{number:04d}{host_id[-4:]}",
                "host_id": host_id,
                "slug": slug,
                "target_port": port,
                "auth_mode": mode,
                "public_url": f"{BASE_URL}/t/{slug}",
                "enabled": enabled,
                "requests_per_minute": rate,
                "created_at": at,
                "updated_at": at,
                **fields,
            }
        )

    return [
        tunnel(1, "grafana", 3000, "tenant_only", True, 42),
        tunnel(2, "docs-preview", 8000, "public", True, 7),
        tunnel(3, "admin", 9090, "password", False, 0),
    ]


TabType = TypeVar("TabType", bound=HostTab)


async def _host_tab(pilot: Pilot, key: str, kind: type[TabType]) -> TabType:
    """The fleet, then db-primary opened on the tab ``key`` shows (a ``kind``)."""
    await fleet(pilot)
    await pilot.press("enter")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, HostScreen)
    await pilot.press(key)
    return screen.query_one(kind)


async def _tunnels_tab(pilot: Pilot) -> TunnelsTab:
    tab = await _host_tab(pilot, "u", TunnelsTab)
    tab.post_message(TunnelsTab.TunnelsLoaded(demo_tunnels()))
    await pilot.pause()
    return tab


async def host_tunnels(pilot: Pilot) -> None:
    """db-primary's Tunnels tab: one tunnel per auth mode, one of them disabled."""
    await _tunnels_tab(pilot)
    await _settle(pilot)


async def tunnel_form(pilot: Pilot) -> None:
    """The new-tunnel form, filled in."""
    tab = await _tunnels_tab(pilot)
    await pilot.app.push_screen(TunnelForm(None, tab.host_id))
    await pilot.press(*"5173", "tab", *"vite-dev")
    await _settle(pilot)


async def tunnels_view(pilot: Pilot) -> None:
    """``:tunnels``: every tunnel of the fleet, with its host."""
    await fleet(pilot)
    await pilot.press("colon", *"tunnels", "enter")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ResourceScreen)
    fleet_tunnels = (
        demo_tunnels("host_demo0004", "db-primary")[:2] + demo_tunnels("host_demo0001", "web-1")[2:]
    )
    screen.post_message(ResourceScreen.Loaded(fleet_tunnels))
    await _settle(pilot)


def demo_requests() -> list[TunnelRequest]:
    """What grafana's inspector kept: a JSON POST, page loads, an app error, a live stream."""

    def request(
        number: int, method: str, target: str, status: int, took: float, size: int, **more: object
    ) -> TunnelRequest:
        fields: dict[str, object] = {
            "id": number,
            "tunnel_id": "tun_demo00010004",
            "method": method,
            "target": target,
            "client": "192.0.2.44",
            "started_at": NOW - timedelta(seconds=60 - number * 7),
            "status": status,
            "first_byte_ms": took / 2,
            "duration_ms": took,
            "complete": True,
            "response_bytes": size,
            "request_headers": [
                ("host", "127.0.0.1:3000"),
                ("user-agent", "curl/8.5.0"),
                ("authorization", "Bearer ***"),
                ("x-forwarded-for", "192.0.2.44"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-prefix", "/t/grafana"),
            ],
            "response_headers": [("content-type", "application/json"), ("content-length", str(size))],
        }
        fields.update(more)
        return TunnelRequest.model_validate(fields)

    body = '{"dashboard": {"title": "Fleet load", "panels": [{"type": "graph", "target": "load1"}]}, "overwrite": true}'
    return [
        request(1, "GET", "/login", 200, 12, 5120, response_headers=[("content-type", "text/html")]),
        request(2, "GET", "/api/health", 200, 3, 38, response_body='{"database": "ok", "version": "10.4.2"}'),
        request(
            3,
            "GET",
            "/api/search?query=fleet",
            500,
            41,
            64,
            response_body='{"message": "database is locked"}',
        ),
        request(
            4,
            "POST",
            "/api/dashboards/db",
            200,
            23,
            112,
            request_headers=[
                ("host", "127.0.0.1:3000"),
                ("content-type", "application/json"),
                ("authorization", "Bearer ***"),
                ("cookie", "***"),
                ("x-forwarded-for", "192.0.2.44"),
                ("x-forwarded-prefix", "/t/grafana"),
            ],
            request_body=body,
            request_bytes=len(body),
            response_body='{"id": 17, "slug": "fleet-load", "status": "success", "version": 3}',
        ),
        request(5, "GET", "/api/live/ws", 101, 2, 0, complete=False, duration_ms=None),
    ]


async def tunnel_inspector(pilot: Pilot) -> None:
    """grafana's inspector: five requests, the JSON POST selected with its bodies pretty-printed."""
    await _tunnels_tab(pilot)
    await pilot.app.push_screen(TunnelInspectorScreen(demo_tunnels()[0], live=False))
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, TunnelInspectorScreen)
    screen.post_message(TunnelInspectorScreen.RequestsLoaded(demo_requests()))
    await pilot.pause()
    screen.table.move_cursor(row=1)
    await _settle(pilot)


def demo_secrets(host_id: str | None = "host_demo0004") -> list[Secret]:
    """db-primary's own secret and the tenant's (one of them shadowed by the host's); without a host,
    the tenant's alone."""

    def secret(number: int, name: str, description: str | None, owner: str | None, days: int) -> Secret:
        at = NOW - timedelta(days=days, minutes=number * 7)
        return Secret(
            id=f"sec_demo{number:04d}",
            name=name,
            description=description,
            host_id=owner,
            tenant_id=TENANT,
            created_at=at - timedelta(days=30),
            updated_at=at,
        )

    tenant = [
        secret(1, "GITHUB_TOKEN", "CI token (read-only)", None, 2),
        secret(2, "DATABASE_URL", "staging database", None, 9),
        secret(3, "SENTRY_DSN", None, None, 40),
    ]
    if host_id is None:
        return tenant
    own = [secret(4, "DATABASE_URL", "this host's primary", host_id, 0).model_copy(update={"scope": HOST})]
    shadowed = {"DATABASE_URL"}
    return own + [
        s.model_copy(update={"scope": SHADOWED if s.name in shadowed else TENANT_SCOPE}) for s in tenant
    ]


async def _secrets_tab(pilot: Pilot) -> SecretsTab:
    tab = await _host_tab(pilot, "s", SecretsTab)
    tab.post_message(SecretsTab.SecretsLoaded(demo_secrets()))
    await pilot.pause()
    return tab


async def host_secrets(pilot: Pilot) -> None:
    """db-primary's Secrets tab: its own DATABASE_URL shadows the tenant's."""
    await _secrets_tab(pilot)
    await _settle(pilot)


async def secret_form(pilot: Pilot) -> None:
    """The new-secret form, filled in: the value shows as dots only."""
    tab = await _secrets_tab(pilot)
    await pilot.app.push_screen(SecretForm(None, tab.host_id))
    await pilot.press(*"NPM_TOKEN", "tab", *"npm_s3cret", "tab", *"publish token")
    await _settle(pilot)


async def secrets_view(pilot: Pilot) -> None:
    """``:secrets``: the tenant's secrets."""
    await fleet(pilot)
    await pilot.press("colon", *"secrets", "enter")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ResourceScreen)
    screen.post_message(ResourceScreen.Loaded(demo_secrets(None)))
    await _settle(pilot)


def demo_sessions(host_id: str = "host_demo0004", host_name: str | None = None) -> list[AgentSession]:
    """Three AI agent sessions of one host: one waiting for approval, one completed, one failed."""

    def session(
        number: int, task: str, status: str, turns: int, ago_min: int, **more: object
    ) -> AgentSession:
        at = NOW - timedelta(minutes=ago_min)
        fields = {"host_name": host_name} if host_name else {}
        return AgentSession.model_validate(
            {
                "id": f"sess_demo{number:04d}{host_id[-4:]}",
                "host_id": host_id,
                "task": task,
                "status": status,
                "max_turns": 20,
                "turns_used": turns,
                "model_id": "qwen2.5-coder:14b",
                "created_at": at,
                "updated_at": at,
                **fields,
                **more,
            }
        )

    waiting = {
        "call_id": "call_2",
        "name": "run_command",
        "arguments": {"command": "systemctl restart nginx"},
    }
    return [
        session(
            1,
            "Rotate the nginx logs and restart nginx",
            "running",
            2,
            1,
            approval=True,
            pending_approval=waiting,
        ),
        session(2, "Create hello.txt containing hi in /tmp/x", "completed", 2, 14, approval=True),
        session(
            3, "Find why the backup job fails at night", "failed", 20, 95, error="max_turns (20) reached"
        ),
    ]


def demo_session_events(session_id: str = "sess_demo00010004") -> list[AgentEvent]:
    """A session in approval mode: it read the config, and now waits to restart nginx."""
    raw: list[tuple[str, dict[str, object]]] = [
        ("status", {"status": "running"}),
        ("turn_started", {"turn": 1, "max_turns": 20}),
        ("assistant_message", {"content": "I'll check the **logrotate** configuration first."}),
        (
            "tool_call",
            {"call_id": "call_1", "name": "read_file", "arguments": {"path": "/etc/logrotate.d/nginx"}},
        ),
        (
            "tool_result",
            {
                "call_id": "call_1",
                "name": "read_file",
                "output": "/var/log/nginx/*.log {\n\tdaily\n\trotate 14\n\tcompress\n}\n",
            },
        ),
        ("turn_started", {"turn": 2, "max_turns": 20}),
        (
            "assistant_message",
            {
                "content": "Rotation is daily, 14 kept. Now:\n\n1. rotate with `logrotate -f`\n2. restart nginx"
            },
        ),
        (
            "tool_call",
            {"call_id": "call_2", "name": "run_command", "arguments": {"command": "systemctl restart nginx"}},
        ),
        (
            "approval_required",
            {"call_id": "call_2", "name": "run_command", "arguments": {"command": "systemctl restart nginx"}},
        ),
    ]
    return [
        AgentEvent(type=kind, session_id=session_id, data=data, timestamp=NOW - timedelta(seconds=30 - i))
        for i, (kind, data) in enumerate(raw)
    ]


async def _agents_tab(pilot: Pilot) -> AgentsTab:
    tab = await _host_tab(pilot, "a", AgentsTab)
    tab.post_message(AgentsTab.SessionsLoaded(demo_sessions()))
    await pilot.pause()
    return tab


async def host_agents(pilot: Pilot) -> None:
    """db-primary's Agents tab: a session waiting for approval, one completed, one failed."""
    await _agents_tab(pilot)
    await _settle(pilot)


async def agent_dispatch(pilot: Pilot) -> None:
    """The dispatch form, filled in."""
    tab = await _agents_tab(pilot)
    await pilot.app.push_screen(DispatchForm(None, tab.host_id))
    await pilot.pause()
    await pilot.press(*"Rotate the nginx logs and restart nginx")
    await _settle(pilot)


async def agent_session(pilot: Pilot) -> None:
    """A session's live log: Markdown messages, tool calls as blocks (one open), a call waiting."""
    await _agents_tab(pilot)
    await pilot.app.push_screen(AgentSessionScreen(demo_sessions()[0], live=False))
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, AgentSessionScreen)
    for event in demo_session_events():
        screen.post_message(AgentSessionScreen.EventArrived(event))
    await pilot.pause()
    screen.query(Collapsible).first().collapsed = False
    await _settle(pilot)


async def agents_view(pilot: Pilot) -> None:
    """``:agents``: the AI agent sessions of the whole fleet, with their hosts."""
    await fleet(pilot)
    await pilot.press("colon", *"agents", "enter")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ResourceScreen)
    sessions = demo_sessions("host_demo0004", "db-primary")[:2] + demo_sessions("host_demo0001", "web-1")[2:]
    screen.post_message(ResourceScreen.Loaded(sessions))


def demo_clusters() -> list[Cluster]:
    """Two clusters: llama3 over three GPU boxes (one pulling the model, one down), and a stopped one."""

    def history(base: float, n: int) -> list[float]:
        return [round(base + ((i * 7) % 5) - 2, 1) for i in range(n)]

    def host(number: int, name: str, health: str, **more: object) -> dict[str, object]:
        return {
            "host_id": f"host_demo000{number}",
            "name": name,
            "port": 11434,
            "health": health,
            "models": ["llama3:8b"] if health == "ready" else [],
            **more,
        }

    def serving(
        number: int, name: str, busy: int, done: int, errors: int, rate: float, ttft: float
    ) -> dict[str, object]:
        return host(
            number,
            name,
            "ready",
            in_flight=busy,
            completed=done,
            errors=errors,
            tokens_per_s=rate,
            ttft_ms=ttft,
            tokens_per_s_history=history(rate, 30),
            ttft_ms_history=history(ttft, 30),
        )

    hosts = [
        serving(2, "web-1", 3, 1284, 2, 41.7, 182),
        serving(4, "db-primary", 2, 1190, 0, 38.2, 205),
        host(
            7,
            "gpu-rig",
            "pulling",
            detail="pulling llama3:8b",
            pull={
                "status": "pulling sha256:6a0746a1ec1a",
                "completed": 2_950_000_000,
                "total": 4_661_000_000,
            },
        ),
        host(3, "web-2", "offline", detail="the host's agent is not connected", errors=5, completed=310),
    ]

    def cluster(number: int, name: str, status: str, model: str, members: list[dict[str, object]]) -> Cluster:
        at = NOW - timedelta(days=number)
        slug = name
        return Cluster.model_validate(
            {
                "id": f"cl_demo{number:04d}",
                "name": name,
                "model": model,
                "slug": slug,
                "status": status,
                "host_ids": [h["host_id"] for h in members],
                "inference_url": f"{BASE_URL}/inference/{slug}/v1",
                "engine": {"kind": "ollama", "port": 11434},
                "hosts": members,
                "created_at": at,
                "updated_at": at,
            }
        )

    return [
        cluster(1, "llama-pool", "active", "llama3:8b", hosts),
        cluster(2, "embeddings", "stopped", "nomic-embed-text", [host(2, "web-1", "unknown")]),
    ]


async def _clusters_view(pilot: Pilot) -> None:
    await fleet(pilot)
    await pilot.press("colon", *"clusters", "enter")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ResourceScreen)
    screen.post_message(ResourceScreen.Loaded(demo_clusters()))
    await pilot.pause()


async def clusters_view(pilot: Pilot) -> None:
    """``:clusters``: an active cluster over four hosts and a stopped one."""
    await _clusters_view(pilot)
    await _settle(pilot)


async def cluster_form(pilot: Pilot) -> None:
    """The new-cluster form: hosts from the fleet with the engines found on each, two picked."""
    await _clusters_view(pilot)
    form = ClusterForm(None, live=False)
    await pilot.app.push_screen(form)
    await pilot.pause()
    hosts = demo_hosts()
    found = {
        "web-1": [DetectedEngine(kind="ollama", port=11434, ready=True, models=["llama3:8b", "qwen2:7b"])],
        "db-primary": [
            DetectedEngine(kind="ollama", port=11434, ready=True, models=["llama3:8b"]),
            DetectedEngine(kind="openai", port=8080, ready=False),
        ],
    }
    form.post_message(ClusterForm.HostsFound([(h, found.get(h.name, [])) for h in hosts]))
    await pilot.press(*"llama-pool", "tab", *"llama3:8b")
    await pilot.pause()
    picker = form.query_one("#hosts")
    for host in hosts:
        if host.name in found:
            picker.select(host.id)  # type: ignore[attr-defined]
    await _settle(pilot)


async def cluster_topology(pilot: Pilot) -> None:
    """llama-pool's topology: two hosts serving, one pulling the model, one down; a chat answer."""
    await _clusters_view(pilot)
    screen = ClusterScreen(demo_clusters()[0], live=False)
    await pilot.app.push_screen(screen)
    await pilot.pause()
    screen._asked_at, screen._first_at = 100.0, 100.18
    for piece in ("Tunnels ", "carry ", "HTTP ", "through ", "the ", "agent."):
        screen.post_message(ClusterScreen.Piece(piece))
    await pilot.pause()
    screen._pieces = 6
    stats = screen.chat_stats(100.33, ClusterScreen.Piece("", done=True))
    screen.query_one("#chat-stats").update(stats)  # type: ignore[attr-defined]
    await _settle(pilot)


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
    "fanout-grouped": ((120, 40), fanout_grouped),
    "fanout-grouped-80x24": ((80, 24), fanout_grouped),
    "push": ((120, 40), push),
    "push-80x24": ((80, 24), push),
    "broadcast": ((120, 40), broadcast),
    "groups-view": ((120, 40), groups_view),
    "host-files": ((120, 40), host_files),
    "host-files-80x24": ((80, 24), host_files),
    "host-files-transfer": ((120, 40), host_files_transfer),
    "host-terminal": ((120, 40), host_terminal),
    "host-terminal-80x24": ((80, 24), host_terminal),
    "host-desktop": ((120, 40), host_desktop),
    "host-tunnels": ((120, 40), host_tunnels),
    "host-tunnels-80x24": ((80, 24), host_tunnels),
    "tunnel-form": ((120, 40), tunnel_form),
    "tunnels-view": ((120, 40), tunnels_view),
    "tunnel-inspector": ((120, 40), tunnel_inspector),
    "tunnel-inspector-80x24": ((80, 24), tunnel_inspector),
    "host-secrets": ((120, 40), host_secrets),
    "host-secrets-80x24": ((80, 24), host_secrets),
    "secret-form": ((120, 40), secret_form),
    "secrets-view": ((120, 40), secrets_view),
    "host-agents": ((120, 40), host_agents),
    "host-agents-80x24": ((80, 24), host_agents),
    "agent-dispatch": ((120, 40), agent_dispatch),
    "agent-session": ((120, 40), agent_session),
    "agent-session-80x24": ((80, 24), agent_session),
    "agents-view": ((120, 40), agents_view),
    "clusters-view": ((120, 40), clusters_view),
    "cluster-form": ((120, 40), cluster_form),
    "cluster-topology": ((120, 40), cluster_topology),
    "cluster-topology-80x24": ((80, 24), cluster_topology),
    # 80x24 for every screen that had none, and the dialogs of issue 19
    "fleet-60x14": ((60, 14), fleet),
    "fanout-80x24": ((80, 24), fanout),
    "help-80x24": ((80, 24), help_keys),
    "register-80x24": ((80, 24), register),
    "host-desktop-80x24": ((80, 24), host_desktop),
    "tunnels-view-80x24": ((80, 24), tunnels_view),
    "rename-80x24": ((80, 24), rename),
    "purge-80x24": ((80, 24), purge),
    "job-options-80x24": ((80, 24), job_options),
    "save-output-80x24": ((80, 24), save_output),
    "host-jobs-160x45": ((160, 45), host_jobs_long),
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
