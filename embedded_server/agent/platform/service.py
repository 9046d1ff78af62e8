"""Running the agent as a service: the systemd unit (Linux), the launchd property list (macOS) and the
Task Scheduler task (Windows) that start it at boot or log-in, and how each is installed and removed.

The definitions are plain text made from a :class:`ServiceSpec` on any machine (``oc-agent install
--dry-run`` prints all three; tests/test_platform.py checks each against its format: the plist with
``plistlib``, the unit with ``systemd-analyze verify`` where it exists, the task's XML against the Task
Scheduler schema's required elements). Installing runs the machine's own tool (``systemctl``,
``launchctl``, ``schtasks``). On Windows a Task Scheduler task is used rather than a Windows service: a
service must be a program that answers the Service Control Manager, which a Python script is not
without pywin32's service host; a task at log-on (or at boot as SYSTEM) runs the agent as it is.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

NAME = "oc-agent"
LABEL = "org.oc-tui.agent"  # launchd's label
TASK_NAMESPACE = "http://schemas.microsoft.com/windows/2004/02/mit/task"
REFUSED_EXIT = 2  # the agent's exit status when the server refuses its key: restarting cannot help


@dataclass(frozen=True)
class ServiceSpec:
    """What the service runs.

    Attributes:
        argv: the agent's command line (the Python interpreter, ``-m embedded_server.agent``, options).
        state_dir: the agent's state dir (the key file, the log on macOS, the task file on Windows).
        system: a machine-wide service (root / SYSTEM, at boot) instead of the user's (at log-in).
        home: the user's home directory (where per-user definitions go).
        uid: the user's ID on POSIX (launchd's ``gui/<uid>`` domain).
    """

    argv: list[str]
    state_dir: str
    system: bool = False
    home: str = "~"
    uid: int = 0


# --- systemd -------------------------------------------------------------------------------------------


def _systemd_quote(arg: str) -> str:
    """One ExecStart argument: specifiers (``%``) and variables (``$``) escaped, quoted if needed."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and not any(c in arg for c in " \t\"'\\;"):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_unit(spec: ServiceSpec) -> str:
    """The unit file: restarted on failure, except after a refusal (exit 2)."""
    exec_start = " ".join(_systemd_quote(arg) for arg in spec.argv)
    wanted_by = "multi-user.target" if spec.system else "default.target"
    return (
        "[Unit]\n"
        "Description=oc-tui host agent (connects this machine to its oc-server)\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStart={exec_start}\n"
        f"Environment={_systemd_quote('OC_AGENT_STATE_DIR=' + spec.state_dir)}\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        f"RestartPreventExitStatus={REFUSED_EXIT}\n"
        "KillMode=mixed\n"
        "\n"
        "[Install]\n"
        f"WantedBy={wanted_by}\n"
    )


def systemd_path(spec: ServiceSpec) -> str:
    """Where the unit goes: ``/etc/systemd/system`` or the user's ``~/.config/systemd/user``."""
    if spec.system:
        return f"/etc/systemd/system/{NAME}.service"
    return os.path.join(spec.home, ".config", "systemd", "user", f"{NAME}.service")


# --- launchd -------------------------------------------------------------------------------------------


def launchd_plist(spec: ServiceSpec) -> str:
    """The property list: started at load (boot for a daemon, log-in for an agent), restarted when it
    exits with a failure, its output in the state dir."""
    log = os.path.join(spec.state_dir, "agent.log")
    data = {
        "Label": LABEL,
        "ProgramArguments": list(spec.argv),
        "EnvironmentVariables": {"OC_AGENT_STATE_DIR": spec.state_dir},
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 10,
        "ProcessType": "Background",
        "StandardOutPath": log,
        "StandardErrorPath": log,
    }
    return plistlib.dumps(data, sort_keys=False).decode("utf-8")


def launchd_path(spec: ServiceSpec) -> str:
    """``/Library/LaunchDaemons`` (root, at boot) or the user's ``~/Library/LaunchAgents`` (at log-in)."""
    if spec.system:
        return f"/Library/LaunchDaemons/{LABEL}.plist"
    return os.path.join(spec.home, "Library", "LaunchAgents", f"{LABEL}.plist")


def launchd_domain(spec: ServiceSpec) -> str:
    """launchctl's domain: ``system`` or the user's ``gui/<uid>``."""
    return "system" if spec.system else f"gui/{spec.uid}"


# --- Task Scheduler ------------------------------------------------------------------------------------


def task_xml(spec: ServiceSpec) -> str:
    """The Task Scheduler task (schema 1.2): at log-on as the user, or at boot as SYSTEM; no time limit,
    restarted every minute after a failure, one instance."""
    command, arguments = spec.argv[0], subprocess.list2cmdline(spec.argv[1:])
    if spec.system:
        trigger = "<BootTrigger><Enabled>true</Enabled></BootTrigger>"
        principal = "<UserId>S-1-5-18</UserId><RunLevel>HighestAvailable</RunLevel>"
    else:
        trigger = "<LogonTrigger><Enabled>true</Enabled></LogonTrigger>"
        principal = "<LogonType>InteractiveToken</LogonType><RunLevel>LeastPrivilege</RunLevel>"
    return (
        '<?xml version="1.0" encoding="UTF-16"?>\n'
        f'<Task version="1.2" xmlns="{TASK_NAMESPACE}">\n'
        "  <RegistrationInfo><Description>oc-tui host agent (connects this machine to its oc-server)"
        "</Description></RegistrationInfo>\n"
        f"  <Triggers>{trigger}</Triggers>\n"
        f'  <Principals><Principal id="Author">{principal}</Principal></Principals>\n'
        "  <Settings>\n"
        "    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>\n"
        "    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>\n"
        "    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>\n"
        "    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>\n"
        "    <RestartOnFailure><Interval>PT1M</Interval><Count>999</Count></RestartOnFailure>\n"
        "    <StartWhenAvailable>true</StartWhenAvailable>\n"
        "    <Hidden>true</Hidden>\n"
        "  </Settings>\n"
        '  <Actions Context="Author">\n'
        f"    <Exec><Command>{escape(command)}</Command><Arguments>{escape(arguments)}</Arguments>"
        f"<WorkingDirectory>{escape(spec.state_dir)}</WorkingDirectory></Exec>\n"
        "  </Actions>\n"
        "</Task>\n"
    )


def task_path(spec: ServiceSpec) -> str:
    """Where the task's definition is kept for ``schtasks /Create /XML``: the state dir."""
    return os.path.join(spec.state_dir, f"{NAME}-task.xml")


# --- this machine ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Installing the service here: the file to write, its text, the commands to run, and how to undo it.

    Attributes:
        kind: "systemd", "launchd" or "Task Scheduler".
        path: the definition's file.
        text: its content.
        encoding: the file's encoding (Task Scheduler reads UTF-16).
        commands: run in order after writing the file.
        remove: the commands that remove the service again (printed for the user).
    """

    kind: str
    path: str
    text: str
    encoding: str
    commands: list[list[str]]
    remove: list[list[str]]


def plan(spec: ServiceSpec, platform: str) -> Plan:
    """How to install ``spec`` on ``platform`` (``sys.platform``'s value).

    Raises:
        ValueError: a platform with none of the three service managers.
    """
    if platform == "win32":
        path = task_path(spec)
        return Plan(
            "Task Scheduler",
            path,
            task_xml(spec),
            "utf-16",
            [["schtasks", "/Create", "/TN", NAME, "/XML", path, "/F"], ["schtasks", "/Run", "/TN", NAME]],
            [["schtasks", "/End", "/TN", NAME], ["schtasks", "/Delete", "/TN", NAME, "/F"], ["del", path]],
        )
    if platform == "darwin":
        path, domain = launchd_path(spec), launchd_domain(spec)
        return Plan(
            "launchd",
            path,
            launchd_plist(spec),
            "utf-8",
            [["launchctl", "bootstrap", domain, path]],
            [["launchctl", "bootout", f"{domain}/{LABEL}"], ["rm", path]],
        )
    if platform.startswith("linux"):
        path = systemd_path(spec)
        ctl = ["systemctl"] if spec.system else ["systemctl", "--user"]
        return Plan(
            "systemd",
            path,
            systemd_unit(spec),
            "utf-8",
            [[*ctl, "daemon-reload"], [*ctl, "enable", "--now", f"{NAME}.service"]],
            [[*ctl, "disable", "--now", f"{NAME}.service"], ["rm", path], [*ctl, "daemon-reload"]],
        )
    raise ValueError(f"no service manager known for {platform}: run oc-agent from your own init system")


def write_definition(install: Plan) -> None:
    """Write the plan's file (its directory created), readable by its owner and root only."""
    path = Path(install.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(install.text, encoding=install.encoding)
    if os.name != "nt":
        path.chmod(0o644 if install.kind != "Task Scheduler" else 0o600)
