"""A call through the control channel to a real agent and back, against one ``ssh`` command.

``GET /hosts/{id}/sysinfo`` goes client → control plane → agent (reads /proc) → back; the OpenSSH
baseline reads the same kind of file over a shared (ControlMaster) connection and over a new one.
Until jobs land this is the closest thing to the exec round trip.
"""

from __future__ import annotations

import subprocess

from bench.harness import Context, Row, Samples, measure


def run(ctx: Context) -> list[Row]:
    plane, sshd = ctx.plane, ctx.sshd
    host_id, key = plane.register("bench-rtt")
    plane.start_agent(key)
    plane.wait_status(host_id, "online")

    def ours() -> None:
        plane.http.get(f"/hosts/{host_id}/sysinfo").raise_for_status()

    def ssh(shared: bool):
        argv = sshd.ssh("cat /proc/loadavg", shared=shared)
        return lambda: subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)

    repeats = ctx.repeats * (3 if not ctx.smoke else 1)
    mine = Samples(measure(ours, repeats, warmup=3), "ms")
    shared = Samples(measure(ssh(True), repeats, warmup=2), "ms")
    fresh = Samples(measure(ssh(False), max(3, repeats // 3), warmup=1), "ms")
    return [
        Row("control round trip vs ssh (shared conn)", mine, shared, target="≤ 0.5× ssh-shared",
            met=mine.median <= 0.5 * shared.median),
        Row("control round trip vs ssh (new conn)", mine, fresh),
    ]  # fmt: skip
