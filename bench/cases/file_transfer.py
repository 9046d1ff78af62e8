"""File transfer: upload and download of one file (1 GiB; 64 MiB with --quick, 8 MiB with --smoke) through
the real client path (``OpenComputersClient.upload`` from a local file, ``download_to`` a local file), the
server and a real agent on this machine, against ``scp`` and ``ssh cat`` to the private sshd in the same
run. Both sides read and write the same kind of storage: a directory under /dev/shm when it has room
(so the figures compare the transports, not this machine's disk), else a temporary directory; the
agent's fsync before its rename is included in our upload time.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.harness import Context, CpuMeter, Row, Samples, cpu_note
from bench.sshd import BENCH_USER
from oc_tui.api import OpenComputersClient


def size(ctx: Context) -> int:
    return (8 << 20) if ctx.smoke else (64 << 20) if ctx.quick else (1 << 30)


def scratch(n: int) -> Path:
    """A directory both the bench user and root can use, on tmpfs when it has room for 4 copies."""
    shm = Path("/dev/shm")
    base = None
    if shm.is_dir():
        vfs = os.statvfs(shm)
        if vfs.f_bavail * vfs.f_frsize > 5 * n:
            base = shm
    path = Path(tempfile.mkdtemp(prefix="oc-bench-files-", dir=base))
    path.chmod(0o777)
    return path


def make_file(path: Path, n: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as out:
        for _ in range(n >> 20):
            out.write(block)
        out.write(block[: n & ((1 << 20) - 1)])
    user = pwd.getpwnam(BENCH_USER)
    os.chown(path, user.pw_uid, user.pw_gid)


def scp_args(sshd: object) -> list[str]:
    base = sshd.base_args(shared=True)  # ssh's options; scp spells the port -P
    return ["scp", "-q", "-P", base[2], *base[3:]]


def timed(argv: list[str], **kwargs: object) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, **kwargs)
    return time.perf_counter() - start


async def _ours(plane: object, host_id: str, local: Path, remote: Path, back: Path) -> tuple:
    """(upload s, download s, upload CPU, download CPU) through the client."""
    async with OpenComputersClient(
        plane.base_url, plane.token, timeout=600, stream_read_timeout=600
    ) as client:
        with CpuMeter(plane, "upload") as up_cpu:
            start = time.perf_counter()
            stat = await client.upload(host_id, str(remote), local)
            up = time.perf_counter() - start
        with CpuMeter(plane, "download") as down_cpu:
            start = time.perf_counter()
            got = await client.download_to(host_id, str(remote), back)
            down = time.perf_counter() - start
    if stat.size != local.stat().st_size or got != stat.size:
        raise RuntimeError(f"sizes differ: sent {local.stat().st_size}, stored {stat.size}, got {got}")
    return up, down, up_cpu, down_cpu


def run(ctx: Context) -> list[Row]:
    plane, sshd = ctx.plane, ctx.sshd
    host_id = plane.local_host()
    n = size(ctx)
    runs = 2 if ctx.smoke else 3
    work = scratch(n)
    try:
        local = work / "source.bin"
        make_file(local, n)
        remote, back = work / "remote.bin", work / "back.bin"
        target = f"{BENCH_USER}@127.0.0.1"
        ours_up, ours_down, scp_up, scp_down, cat_up, cat_down = [], [], [], [], [], []
        cpu: dict[str, list[CpuMeter]] = {"upload": [], "download": []}
        for _ in range(runs):
            up, down, up_cpu, down_cpu = asyncio.run(_ours(plane, host_id, local, remote, back))
            cpu["upload"].append(up_cpu)
            cpu["download"].append(down_cpu)
            ours_up.append(n / up / 1e6)
            ours_down.append(n / down / 1e6)
            if back.read_bytes()[-4096:] != local.read_bytes()[-4096:]:
                raise RuntimeError("downloaded file differs")
            remote.unlink()
            back.unlink()
            scp_up.append(n / timed([*scp_args(sshd), str(local), f"{target}:{remote}"]) / 1e6)
            scp_down.append(n / timed([*scp_args(sshd), f"{target}:{remote}", str(back)]) / 1e6)
            remote.unlink()
            back.unlink()
            with open(local, "rb") as source:
                cat_up.append(n / timed(sshd.ssh(f"cat > {remote}"), stdin=source) / 1e6)
            with open(back, "wb") as sink:
                cat_down.append(n / timed(sshd.ssh(f"cat {remote}"), stdout=sink) / 1e6)
            remote.unlink()
            back.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    label = f"{n >> 20} MiB" if n < (1 << 30) else "1 GiB"
    where = "tmpfs" if str(work).startswith("/dev/shm") else "disk"
    rows = []
    for verb, mine, scp, cat in (
        ("upload", ours_up, scp_up, cat_up),
        ("download", ours_down, scp_down, cat_down),
    ):
        ours_s = Samples(mine, "MB/s")
        scp_s = Samples(scp, "MB/s")
        rows.append(
            Row(f"file {verb} {label} vs scp ({where})", ours_s, scp_s, lower_is_better=False,
                target="≥ 1.5× scp", met=ours_s.median >= 1.5 * scp_s.median, note=cpu_note(cpu[verb], n / (1 << 30), "GiB"))
        )  # fmt: skip
        rows.append(Row(f"file {verb} {label} vs ssh cat ({where})", ours_s, Samples(cat, "MB/s"),
                        lower_is_better=False))  # fmt: skip
    return rows
