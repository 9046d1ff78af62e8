"""Exec round trip: ``POST /exec?wait`` of ``true`` until the finished job record is back, against
``ssh host true``."""

from __future__ import annotations

from bench.harness import Context, Row, round_trip_rows


def run(ctx: Context) -> list[Row]:
    host_id = ctx.plane.local_host()
    http = ctx.plane.http

    def exec_true() -> None:
        resp = http.post(f"/hosts/{host_id}/exec", params={"wait": 30}, json={"command": "true"})
        resp.raise_for_status()
        if resp.json()["status"] != "completed":
            raise RuntimeError(f"exec of true ended {resp.json()['status']}")

    return round_trip_rows(ctx, "exec `true` ?wait", exec_true, "true")
