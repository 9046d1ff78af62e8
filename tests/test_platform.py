"""The agent's platform layer (embedded_server/agent/platform/).

What runs here is Linux. The Windows and macOS rules that need no Windows or Mac (command lines for
CreateProcess, PowerShell's encoded commands, mode bits from file attributes, drive paths, the Job
Object structures, Screen Sharing's stored password, the three service definitions) are tested as pure
functions; the job ``shell`` and paths with drive letters and backslashes go end to end through a real
server and agent. ConPTY terminals, Job Objects, launchd and Task Scheduler themselves run only on
their own systems (README, "Platforms").
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ntpath
import plistlib
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import api, online_host_id

from embedded_server.agent import doctor, fs, install, platform, vnc
from embedded_server.agent.platform import commands, macos, service, windows_rules
from embedded_server.fs.routes import listing
from embedded_server.protocol import AgentError


def argv_from_windows(line: str) -> list[str]:
    """How the Microsoft C runtime (and CommandLineToArgvW) splits a command line: backslashes are
    literal unless they precede a quote; 2n of them then give n and the quote delimits; 2n+1 give n
    and a literal quote. Written from Microsoft's documented rules, to check list2cmdline against."""
    args: list[str] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            break
        arg: list[str] = []
        quoted = False
        while i < n:
            c = line[i]
            if c == "\\":
                j = i
                while j < n and line[j] == "\\":
                    j += 1
                count = j - i
                if j < n and line[j] == '"':
                    arg.append("\\" * (count // 2))
                    if count % 2:
                        arg.append('"')
                        j += 1
                    i = j
                else:
                    arg.append("\\" * count)
                    i = j
            elif c == '"':
                quoted = not quoted
                i += 1
            elif c in " \t" and not quoted:
                break
            else:
                arg.append(c)
                i += 1
        args.append("".join(arg))
    return args


# --- jobs: shells and command lines ------------------------------------------------------------------


def which(found: dict[str, str]) -> Any:
    return lambda name: found.get(name)


def test_job_launch_posix_keeps_sh_and_runs_args_without_a_shell() -> None:
    none = which({})
    assert commands.job_launch("echo hi", [], None, windows=False, which=none).args == [
        "/bin/sh",
        "-c",
        "echo hi",
    ]
    assert commands.job_launch("ls", ["-l", "a b"], "bash", windows=False, which=none).args == [
        "ls",
        "-l",
        "a b",
    ]
    bash = commands.job_launch("echo $0", [], "bash", windows=False, which=which({"bash": "/usr/bin/bash"}))
    assert bash.args == ["/usr/bin/bash", "-c", "echo $0"] and not bash.shell
    with pytest.raises(commands.NoSuchShell, match="Windows shell"):
        commands.job_launch("dir", [], "cmd", windows=False, which=none)
    with pytest.raises(commands.NoSuchShell, match="zsh is not installed"):
        commands.job_launch("true", [], "zsh", windows=False, which=none)
    with pytest.raises(commands.NoSuchShell, match="unknown shell"):
        commands.job_launch("true", [], "fish", windows=False, which=none)


def test_windows_cmd_gets_the_command_verbatim() -> None:
    text = 'dir "C:\\Program Files" & echo "done" > C:\\out.txt'
    launch = commands.job_launch(text, [], None, windows=True, which=which({}))  # cmd.exe is the default
    assert launch.shell and launch.args == text
    line = commands.windows_command_line(launch, "C:\\Windows\\System32\\cmd.exe")
    assert line == f'C:\\Windows\\System32\\cmd.exe /c "{text}"'  # cmd.exe strips the outer quotes only


def test_windows_powershell_gets_an_encoded_command() -> None:
    ps = "C:\\Program Files\\PowerShell\\7\\pwsh.exe"
    text = "Get-ChildItem 'C:\\Users' | Where-Object { $_.Name -like \"a*\" }"
    launch = commands.job_launch(text, [], "powershell", windows=True, which=which({"pwsh": ps}))
    assert isinstance(launch.args, list) and launch.args[0] == ps  # Windows PowerShell absent: pwsh
    encoded = launch.args[launch.args.index("-EncodedCommand") + 1]
    import base64

    assert base64.b64decode(encoded).decode("utf-16-le") == text
    assert argv_from_windows(commands.windows_command_line(launch))[1:] == launch.args[1:]


@pytest.mark.parametrize(
    "args",
    [
        ["a b", 'say "hi"', "C:\\dir with space\\", "trailing\\\\", "", "plain", 'x\\"y', "tab\there"],
        ["C:\\Users\\me\\file.txt", "%PATH%", "^&|<>", "ünïcödé"],
    ],
)
def test_args_round_trip_through_createprocess_quoting(args: list[str]) -> None:
    """The reference's args run without a shell: list2cmdline's line splits back into the same list."""
    launch = commands.job_launch("C:\\Tools\\prog.exe", args, "cmd", windows=True, which=which({}))
    assert not launch.shell  # args: no shell, whatever the job's shell says
    line = commands.windows_command_line(launch)
    assert argv_from_windows(line) == ["C:\\Tools\\prog.exe", *args]


# --- files: modes, drive paths, listings -------------------------------------------------------------


def test_windows_mode_from_attributes() -> None:
    mode = windows_rules.windows_mode
    assert stat.filemode(mode(windows_rules.FILE_ATTRIBUTE_DIRECTORY, 0, "Users")) == "drwxr-xr-x"
    assert stat.filemode(mode(windows_rules.FILE_ATTRIBUTE_ARCHIVE, 0, "notes.txt")) == "-rw-r--r--"
    assert stat.filemode(mode(windows_rules.FILE_ATTRIBUTE_READONLY, 0, "ro.txt")) == "-r--r--r--"
    assert stat.filemode(mode(0, 0, "setup.EXE")) == "-rwxr-xr-x"
    assert stat.filemode(mode(0, 0, "run.ps1", ".EXE;.PS1")) == "-rwxr-xr-x"
    assert stat.filemode(mode(0, 0, "run.ps1", ".EXE")) == "-rw-r--r--"
    ro_dir = windows_rules.FILE_ATTRIBUTE_DIRECTORY | windows_rules.FILE_ATTRIBUTE_READONLY
    assert stat.filemode(mode(ro_dir, 0, "sys")) == "dr-xr-xr-x"
    link = windows_rules.FILE_ATTRIBUTE_REPARSE_POINT | windows_rules.FILE_ATTRIBUTE_DIRECTORY
    assert stat.filemode(mode(link, windows_rules.IO_REPARSE_TAG_MOUNT_POINT, "junction")) == "lrwxrwxrwx"
    assert stat.filemode(mode(link, windows_rules.IO_REPARSE_TAG_SYMLINK, "link")) == "lrwxrwxrwx"
    assert stat.filemode(mode(link, 0x80000023, "dedup")) == "drwxr-xr-x"  # another reparse point: a dir
    attributes = windows_rules.FILE_ATTRIBUTE_HIDDEN | windows_rules.FILE_ATTRIBUTE_READONLY
    assert windows_rules.windows_flags(attributes) == ["hidden", "readonly"]


def test_windows_paths_resolve_with_drive_letters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USERPROFILE", "C:\\Users\\me")
    monkeypatch.setenv("HOME", "C:\\Users\\me")
    resolve = lambda raw, **kw: fs.resolve(raw, paths=ntpath, **kw)  # noqa: E731
    assert resolve("C:\\Users\\me\\Documents\\..\\report.txt") == "C:\\Users\\me\\report.txt"
    assert resolve("C:/Users/me/notes.txt") == "C:\\Users\\me\\notes.txt"
    assert resolve("d:\\") == "d:\\" and resolve("D:") == "D:\\"
    assert resolve("\\\\nas\\share\\dir\\.\\f") == "\\\\nas\\share\\dir\\f"
    assert resolve("Desktop\\a.txt") == "C:\\Users\\me\\Desktop\\a.txt"  # relative: the home's
    assert resolve("\\Windows") == "C:\\Windows"  # rooted without a drive: the home's drive
    assert resolve("~\\x") == "C:\\Users\\me\\x"
    assert resolve(None, default_home=True) == "C:\\Users\\me"
    with pytest.raises(AgentError, match="relative to a drive"):
        resolve("C:temp\\x")
    assert windows_rules.is_drive_root("C:\\") and windows_rules.is_drive_root("\\\\nas\\share\\")
    assert not windows_rules.is_drive_root("C:\\Users")
    assert fs.resolve("a/../b", paths=sys.modules["posixpath"]).endswith("/b")  # POSIX as it was


def test_windows_listing_joins_names_with_backslashes() -> None:
    rows = [["a.txt", 3, False, 0.0, False, 0o100644], ["Docs", 0, True, 0.0, False, 0o40755]]
    import json

    body = json.loads(listing({"path": "C:\\Users\\me", "entries": rows, "truncated": False, "sep": "\\"}))
    assert [e["path"] for e in body["entries"]] == ["C:\\Users\\me\\a.txt", "C:\\Users\\me\\Docs"]
    root = json.loads(listing({"path": "C:\\", "entries": rows[:1], "truncated": False, "sep": "\\"}))
    assert root["entries"][0]["path"] == "C:\\a.txt"
    posix = json.loads(listing({"path": "/home/me", "entries": rows[:1], "truncated": False}))
    assert posix["entries"][0]["path"] == "/home/me/a.txt"


def test_environment_block_and_job_object_structures() -> None:
    block = windows_rules.environment_block({"Path": "C:\\bin", "A": "1"})
    assert block == "A=1\0Path=C:\\bin\0\0"
    info = windows_rules.kill_on_close_limits()
    assert info.BasicLimitInformation.LimitFlags == windows_rules.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    if ctypes.sizeof(ctypes.c_void_p) == 8:  # the SDK's sizes on 64-bit Windows
        assert ctypes.sizeof(windows_rules.JobObjectBasicLimitInformation) == 64
        assert ctypes.sizeof(windows_rules.IoCounters) == 48
        assert ctypes.sizeof(windows_rules.JobObjectExtendedLimitInformation) == 144


# --- macOS -------------------------------------------------------------------------------------------


def test_screen_sharing_password_round_trip() -> None:
    stored = macos.encode_vnc_settings("s3cret!")
    assert len(stored) == 32 and stored == stored.upper()
    assert macos.decode_vnc_settings(stored + "\n") == "s3cret!"
    assert macos.decode_vnc_settings(macos.encode_vnc_settings("longer-than-8")) == "longer-t"
    with pytest.raises(ValueError):
        macos.decode_vnc_settings("not hex")


# --- services and the CLI ----------------------------------------------------------------------------

ARGV = ["/opt/oc agent/bin/python", "-m", "embedded_server.agent", "--server", "https://oc.example:8443"]
ARGV += [
    "--host-key-file",
    "/var/lib/oc-agent/host-key",
    "--state-dir",
    "/var/lib/oc-agent",
    "--vnc",
    ":5901",
]


@pytest.mark.parametrize("system", [False, True])
def test_service_definitions_parse(system: bool, tmp_path: Path) -> None:
    spec = service.ServiceSpec(ARGV, "/var/lib/oc-agent", system=system, home="/home/me", uid=501)
    plist = plistlib.loads(service.launchd_plist(spec).encode())
    assert plist["ProgramArguments"] == ARGV and plist["Label"] == service.LABEL and plist["RunAtLoad"]
    assert service.launchd_path(spec).endswith(f"{service.LABEL}.plist")

    root = ET.fromstring(service.task_xml(spec).encode("utf-16"))
    ns = {"t": service.TASK_NAMESPACE}
    assert root.tag == f"{{{service.TASK_NAMESPACE}}}Task" and root.get("version") == "1.2"
    for required in ("t:Triggers", "t:Principals/t:Principal", "t:Settings", "t:Actions/t:Exec/t:Command"):
        assert root.find(required, ns) is not None, required
    assert root.find("t:Triggers/t:BootTrigger" if system else "t:Triggers/t:LogonTrigger", ns) is not None
    arguments = root.findtext("t:Actions/t:Exec/t:Arguments", namespaces=ns) or ""
    assert argv_from_windows(arguments) == ARGV[1:]

    unit = service.systemd_unit(spec)
    assert "RestartPreventExitStatus=2" in unit
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_start.startswith('ExecStart="/opt/oc agent/bin/python" -m embedded_server.agent')


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """``systemd-analyze verify`` where it exists (its absence skips only this check)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the unit's syntax is checked by the test above only")
    python = tmp_path / "python"  # verify wants ExecStart's program to exist and be executable
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    spec = service.ServiceSpec([str(python), "-m", "embedded_server.agent"], str(tmp_path), system=True)
    unit = tmp_path / f"{service.NAME}.service"
    unit.write_text(service.systemd_unit(spec))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in done.stderr.splitlines() if unit.name in line or "oc-agent" in line]
    assert done.returncode == 0 and not problems, done.stderr


def test_install_dry_run_prints_three_definitions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "key"
    key.write_text("hk_dry\n")
    state = tmp_path / "state"
    argv = ["install", "--dry-run", "--server", "http://127.0.0.1:1", "--host-key-file", str(key)]
    from embedded_server.agent.cli import main

    assert main([*argv, "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    blocks = {block.split("\n", 1)[0]: block.split("\n", 1)[1] for block in out.split("==> ")[1:]}
    titles = list(blocks)
    assert titles[0].startswith("systemd unit") and titles[1].startswith("launchd plist")
    assert titles[2].startswith("Task Scheduler task") and titles[4] == "and to remove it:"
    plist = plistlib.loads(blocks[titles[1]].strip().encode())
    assert plist["ProgramArguments"][-4:] == [
        "--host-key-file",
        str(state / "host-key"),
        "--state-dir",
        str(state),
    ]
    ET.fromstring(blocks[titles[2]].strip().encode("utf-16"))
    assert "systemctl --user enable --now oc-agent.service" in blocks[titles[3]]
    assert "systemctl --user disable --now oc-agent.service" in blocks[titles[4]]
    assert not state.exists()  # a dry run changes nothing
    key.write_text("not a key")
    assert main([*argv, "--state-dir", str(state)]) == 2


def test_doctor_says_what_this_machine_offers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert install.doctor_main(["--vnc", "127.0.0.1:1", "--state-dir", str(tmp_path)]) == 0
    lines = {line.split()[1]: line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["terminal"] == "yes" and lines["desktop"] == "no" and lines["state"] == "yes"
    shells = {
        offer.name: offer for offer in __import__("embedded_server.agent.doctor").agent.doctor.shell_offers()
    }
    assert shells["shell sh"].ok and not shells["shell cmd"].ok
    assert platform.current_user().shell_args == ("-l",)


def test_doctor_offers_a_service_only_where_systemd_runs(tmp_path: Path, monkeypatch) -> None:
    """``systemctl`` installed in a container where systemd is not the init is no service manager."""
    monkeypatch.setattr(doctor.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(doctor.sys, "platform", "linux")
    absent = doctor.service_offer(tmp_path / "no-systemd")
    assert not absent.ok and "systemd is not running" in absent.detail
    (tmp_path / "systemd").mkdir()
    running = doctor.service_offer(tmp_path / "systemd")
    assert running.ok and "enable-linger" in running.detail


# --- end to end: the job's shell, and paths that look like Windows paths ------------------------------


async def test_job_shell_and_backslash_paths_end_to_end(
    server: Any, start_agent: Any, tmp_path: Path
) -> None:
    """A job's ``shell`` reaches the agent (bash runs it; cmd is refused off Windows); and a path with a
    drive letter and backslashes (on Linux: one file name) round-trips unchanged through upload, list,
    stat and download: the API's paths are strings, never reinterpreted by the server."""
    host_id = await online_host_id(server, start_agent, "platform-box")
    async with api(server) as client:
        url = f"/hosts/{host_id}/exec"
        ran = await client.post(
            url, params={"wait": 20}, json={"command": "echo $BASH_VERSION", "shell": "bash"}
        )
        assert ran.status_code == 201 and ran.json()["status"] == "completed" and ran.json()["stdout"].strip()
        cmd = await client.post(url, params={"wait": 20}, json={"command": "dir", "shell": "cmd"})
        assert cmd.json()["status"] == "failed", cmd.text
        assert "Windows shell" in (cmd.json().get("error") or cmd.json().get("stderr") or ""), cmd.text

        name = "C:\\Users\\me\\ré port.txt"
        files = tmp_path / "files"
        files.mkdir()
        path = str(files / name)
        up = await client.post(
            f"/hosts/{host_id}/fs/upload", params={"path": path}, files={"file": ("x", b"hi")}
        )
        assert up.status_code == 201, up.text
        assert up.json()["path"] == path and up.json()["name"] == name
        listed = (await client.get(f"/hosts/{host_id}/fs/list", params={"path": str(files)})).json()
        assert [(e["name"], e["path"]) for e in listed["entries"]] == [(name, path)]
        assert (await client.get(f"/hosts/{host_id}/fs/stat", params={"path": path})).json()["size"] == 2
        down = await client.get(f"/hosts/{host_id}/fs/download", params={"path": path})
        assert down.status_code == 200 and down.content == b"hi"


async def fake_screen_sharing(offered: bytes) -> tuple[asyncio.Server, int]:
    """A VNC server that greets as macOS Screen Sharing does (RFB 003.889) and offers ``offered``."""

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"RFB 003.889\n")
        await reader.readexactly(12)
        writer.write(bytes([len(offered)]) + offered)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            if (await reader.readexactly(1)) == b"\x01":
                writer.write((0).to_bytes(4, "big"))  # SecurityResult OK
                await writer.drain()
            await reader.read()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_screen_sharing_without_vnc_password_says_what_to_turn_on(tmp_path: Path) -> None:
    server, port = await fake_screen_sharing(bytes([30, 35]))  # Apple's authentication only
    async with server:
        with pytest.raises(AgentError, match="VNC viewers may control screen with password"):
            await vnc.connect(vnc.VncTarget("127.0.0.1", port))
        offer = await doctor.desktop_offer(vnc.VncTarget("127.0.0.1", port))
        assert not offer.ok and "Screen Sharing" in offer.detail
    server, port = await fake_screen_sharing(bytes([30, 1]))
    async with server:
        offer = await doctor.desktop_offer(vnc.VncTarget("127.0.0.1", port))
        assert offer.ok and f"127.0.0.1:{port}" in offer.detail


async def test_jobs_without_a_supervisor_as_on_windows(server: Any, start_agent: Any, tmp_path: Path) -> None:
    """The agent's own job runner (Windows has no supervisor yet; OC_AGENT_SUPERVISOR=0 elsewhere) runs
    a job as a tree of the platform layer's: output, exit code, the job's shell, and a timeout and a
    cancel that end the whole tree (a process group here; a Job Object on Windows)."""
    from test_jobs_api import gone, pids_in, run

    host_id = await online_host_id(server, start_agent, "direct-box", OC_AGENT_SUPERVISOR="0")
    pids = tmp_path / "pids"
    async with api(server) as client:
        job = await run(client, host_id, command="echo out; echo err >&2; exit 3")
        assert (job["status"], job["exit_code"], job["stdout"], job["stderr"]) == (
            "failed",
            3,
            "out\n",
            "err\n",
        )
        bash = await run(client, host_id, command="echo ${BASH_VERSION:+bash}", shell="bash")
        assert bash["stdout"] == "bash\n"
        timed = await run(client, host_id, command=f"sleep 300 & echo $! $$ > {pids}; wait", timeout=1)
        assert timed["status"] == "failed" and timed["error"] == "timed out after 1 s"
        for pid in await pids_in(pids, 2):
            assert await gone(pid), f"pid {pid} survived the timeout"
        pids.unlink()
        running = await run(client, host_id, wait=None, command=f"sleep 300 & echo $! $$ > {pids}; wait")
        first, shell = await pids_in(pids, 2)
        assert (await client.delete(f"/hosts/{host_id}/exec/{running['id']}")).status_code == 204
        assert await gone(first) and await gone(shell)


def test_install_writes_the_key_and_unit_then_says_what_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real install on this machine, without a service manager to call (PATH has none): the key is
    copied (0600), the unit written, and the failure says how to remove both."""
    key = tmp_path / "key"
    key.write_text("hk_real\n")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    state = tmp_path / "state"
    argv = ["--server", "http://127.0.0.1:1", "--host-key-file", str(key), "--state-dir", str(state)]
    assert install.install_main(argv) == 1
    copied = state / install.KEY_FILE
    assert copied.read_text() == "hk_real\n" and stat.S_IMODE(copied.stat().st_mode) == 0o600
    unit = tmp_path / "home" / ".config" / "systemd" / "user" / "oc-agent.service"
    assert f"--host-key-file {copied}" in unit.read_text()
    err = capsys.readouterr().err
    assert "systemctl not found" in err and f"rm {copied} {unit}" in err
