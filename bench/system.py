"""What the benchmarks need from the machine: Debian packages installed when missing, free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess


def which(tool: str) -> str | None:
    """``shutil.which``, also looking in /usr/sbin (sshd is there, often outside root's PATH)."""
    return shutil.which(tool) or next((p for p in (f"/usr/sbin/{tool}",) if os.path.exists(p)), None)


def install_missing(packages: dict[str, str]) -> None:
    """``{tool: Debian package}``: install with apt-get the packages whose tool is missing (the harness
    runs as root on CI machines); elsewhere, stop and say what to install."""
    missing = sorted({pkg for tool, pkg in packages.items() if not which(tool)})
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit(f"bench: please install {' '.join(missing)}")
    print(f"bench: installing {' '.join(missing)} …", flush=True)
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, stdout=subprocess.DEVNULL
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
