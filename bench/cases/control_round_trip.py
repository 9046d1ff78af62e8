"""A call through the control channel to a real agent and back, against one ``ssh`` command.

``GET /hosts/{id}/sysinfo`` goes client → control plane → agent (reads /proc) → back; the OpenSSH
baseline reads the same kind of file. Until jobs land this is the closest thing to the exec round trip.
"""

from __future__ import annotations

from bench.harness import Context, Row, round_trip_rows


def run(ctx: Context) -> list[Row]:
    host_id = ctx.plane.local_host()
    http = ctx.plane.http
    return round_trip_rows(
        ctx,
        "control round trip",
        lambda: http.get(f"/hosts/{host_id}/sysinfo").raise_for_status(),
        "cat /proc/loadavg",
    )
