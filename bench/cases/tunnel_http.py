"""HTTP through a tunnel: ``wrk`` against nginx on the host, through our tunnel (control plane → agent →
nginx), through ``ssh -L`` to the same nginx, and straight to nginx, in the same run — requests per
second, p50 and p99 latency, for a small response and for a 1 MiB file.

nginx (Debian ``nginx-light``) and wrk (Debian ``wrk``) are installed when missing; nginx runs with a
throw-away config on a free port of 127.0.0.1, serving a temporary directory.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bench.harness import Context, Row, Samples
from bench.sshd import BENCH_USER
from bench.system import free_port, install_missing, which

CONNECTIONS = 16  # wrk's concurrent connections
THREADS = 2
FILES = {"small": 100, "1 MiB": 1 << 20}


def start_nginx(root: Path, port: int) -> subprocess.Popen[bytes]:
    """nginx serving ``root`` on 127.0.0.1:``port`` in the foreground (its files under ``root/../nginx``)."""
    prefix = root.parent / "nginx"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 100000;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""
    )
    nginx = which("nginx") or "nginx"
    proc = subprocess.Popen(
        [nginx, "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"], stderr=subprocess.DEVNULL
    )
    wait_port(port)
    return proc


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def wrk(url: str, seconds: int) -> tuple[float, float, float]:
    """``(requests/s, p50 ms, p99 ms)`` of one wrk run against ``url``."""
    out = subprocess.run(
        ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rate is None:
        raise RuntimeError(f"wrk printed no rate:\n{out}")

    def percentile(p: str) -> float:
        found = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if found is None:
            raise RuntimeError(f"wrk printed no {p}% latency:\n{out}")
        value, unit = float(found.group(1)), found.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return float(rate.group(1)), percentile("50"), percentile("99")


def run(ctx: Context) -> list[Row]:
    install_missing({"wrk": "wrk", "nginx": "nginx-light"})
    seconds = 1 if ctx.smoke else 3 if ctx.quick else 8
    rounds = 1 if ctx.smoke else 3
    work = Path(tempfile.mkdtemp(prefix="oc-bench-tunnel-"))
    root = work / "www"
    root.mkdir()
    for name, size in FILES.items():
        (root / name.replace(" ", "")).write_bytes(os.urandom(size))
    work.chmod(0o755)
    root.chmod(0o755)
    for path in root.iterdir():
        path.chmod(0o644)
    nginx_port, ssh_port = free_port(), free_port()
    nginx = start_nginx(root, nginx_port)
    sshd = ctx.sshd
    forward = subprocess.Popen(
        [
            *sshd.base_args(shared=False),
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-L",
            f"{ssh_port}:127.0.0.1:{nginx_port}",
            f"{BENCH_USER}@127.0.0.1",
        ],
        stderr=subprocess.DEVNULL,
    )
    plane = ctx.plane
    rows: list[Row] = []
    try:
        wait_port(ssh_port)
        host_id = plane.local_host()
        tunnel = plane.http.post(f"/hosts/{host_id}/tunnels", json={"target_port": nginx_port}).json()
        for name in FILES:
            path = name.replace(" ", "")
            urls = {
                "tunnel": f"{tunnel['public_url']}/{path}",
                "ssh": f"http://127.0.0.1:{ssh_port}/{path}",
                "direct": f"http://127.0.0.1:{nginx_port}/{path}",
            }
            results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in urls}
            for _ in range(rounds):  # interleaved, so drift on a shared machine hits all three alike
                for kind, url in urls.items():
                    results[kind].append(wrk(url, seconds))

            def samples(kind: str, index: int, unit: str) -> Samples:
                return Samples([r[index] for r in results[kind]], unit)  # noqa: B023

            rate, ssh_rate = samples("tunnel", 0, "req/s"), samples("ssh", 0, "req/s")
            p50, ssh_p50 = samples("tunnel", 1, "ms"), samples("ssh", 1, "ms")
            p99, ssh_p99 = samples("tunnel", 2, "ms"), samples("ssh", 2, "ms")
            direct = samples("direct", 0, "req/s")
            rows += [
                Row(f"tunnel {name}: requests/s vs ssh -L (wrk -c{CONNECTIONS})", rate, ssh_rate,
                    lower_is_better=False, target="≥ 1.0× ssh -L", met=rate.median >= ssh_rate.median,
                    note=f"nginx direct {direct.describe()}"),
                Row(f"tunnel {name}: p50 latency vs ssh -L", p50, ssh_p50),
                Row(f"tunnel {name}: p99 latency vs ssh -L", p99, ssh_p99, target="≤ 1.0× ssh -L",
                    met=p99.median <= ssh_p99.median),
            ]  # fmt: skip
        plane.http.delete(f"/hosts/{host_id}/tunnels/{tunnel['id']}")
    finally:
        forward.terminate()
        nginx.terminate()
        for proc in (forward, nginx):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    return rows
