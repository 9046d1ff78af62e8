"""The benchmark harness: runs every case, prints one table and writes the same as JSON.

Every figure is set beside OpenSSH doing the same work in the same run (where OpenSSH has an
equivalent), because absolute times on a shared 2-core machine drift; the ratio is what we compare.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Samples:
    """Repeated measurements of one quantity, in ``unit``."""

    values: list[float]
    unit: str

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def describe(self) -> str:
        if not self.values:
            return "—"
        lo, hi = min(self.values), max(self.values)
        return f"{fmt(self.median)} [{fmt(lo)}–{fmt(hi)}] {self.unit}"


@dataclass
class Row:
    """One line of the results table."""

    name: str
    ours: Samples
    ssh: Samples | None = None
    lower_is_better: bool = True
    target: str = ""
    # A predicate on (ours median, ssh median or None) that says whether the target is met.
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ssh is None or not self.ssh.values or not self.ours.values or self.ssh.median == 0:
            return None
        return self.ours.median / self.ssh.median


@dataclass
class Context:
    """What every case gets: the run's sizes, and the services the harness started."""

    quick: bool
    smoke: bool
    full: bool
    repeats: int
    plane: object = None  # bench.plane.ControlPlane
    sshd: object = None  # bench.sshd.PrivateSshd
    rows: list[Row] = field(default_factory=list)


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


PROFILE_DIR: Path | None = None
"""Set by ``--profile DIR``: every :class:`CpuMeter` block is also sampled by py-spy, per process."""


class CpuMeter:
    """CPU seconds spent during a block by each of our processes: the control plane (``server``), its
    real agents (``agent``) and this process (``client``: the benchmark drives our client library here).

    ``with CpuMeter(plane) as cpu: …`` then ``cpu.spent`` is ``{"client", "server", "agent"}`` seconds;
    several blocks add up in one meter (``cpu.spent`` sums them). With ``bench/run --profile DIR`` each
    block is also recorded by py-spy (the ``bench`` extra): ``DIR/<label>-<n>-<process>.txt``, collapsed
    stacks (``py-spy record --format raw``; speedscope and flamegraph.pl read them).
    """

    _blocks = 0

    def __init__(self, plane: object, label: str = "block") -> None:
        proc = getattr(plane, "proc", None)
        self.pids = {
            "server": [proc.pid] if proc is not None else [],
            "agent": [p.pid for p in getattr(plane, "agents", [])],
        }
        self.label = label
        self.spent: dict[str, float] = {"client": 0.0, "server": 0.0, "agent": 0.0}
        self._spies: list[subprocess.Popen[bytes]] = []

    def _now(self) -> dict[str, float]:
        now = {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in self.pids.items()}
        return {"client": time.process_time()} | now

    def __enter__(self) -> CpuMeter:
        if PROFILE_DIR is not None:
            self._profile(PROFILE_DIR)
        self._start = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._now()
        for name in end:
            self.spent[name] = self.spent.get(name, 0.0) + end[name] - self._start[name]
        for spy in self._spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
        for spy in self._spies:
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
        self._spies = []

    def _profile(self, directory: Path) -> None:
        spy = shutil.which("py-spy")
        if spy is None:
            raise SystemExit("bench: --profile needs py-spy (pip install -e '.[bench]')")
        CpuMeter._blocks += 1
        directory.mkdir(parents=True, exist_ok=True)
        targets = {"client": [os.getpid()], **self.pids}
        for name, pids in targets.items():
            for i, pid in enumerate(pids):
                out = directory / f"{self.label}-{CpuMeter._blocks}-{name}{i or ''}.txt"
                argv = [
                    spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--output",
                    str(out),
                ]
                self._spies.append(
                    subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                )
        time.sleep(0.5)  # py-spy attaches


def cpu_note(meters: list[CpuMeter], amount: float, per: str) -> str:
    """``CPU s per <per>: client …, server …, agent …``: the meters' mean, scaled by ``amount`` (how many
    units of ``per`` one meter's block did, e.g. GiB moved or thousands of operations)."""
    if not meters or amount <= 0:
        return ""
    names = meters[0].spent
    mean = {k: sum(m.spent[k] for m in meters) / len(meters) / amount for k in names}
    return f"CPU s per {per}: " + ", ".join(f"{k} {v:.2f}" for k, v in mean.items())


def fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def measure(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Milliseconds per call of ``fn``: ``warmup`` calls unmeasured, then ``repeats`` timed ones."""
    for _ in range(warmup):
        fn()
    values = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        values.append((time.perf_counter() - start) * 1000)
    return values


def round_trip_rows(ctx: Context, name: str, ours: Callable[[], object], ssh_command: str) -> list[Row]:
    """Rows for a request/response case: ``ours`` against ``ssh_command`` over a shared (ControlMaster)
    connection, where the target is at most half of ssh's time, and over a new connection."""
    import subprocess

    def ssh(shared: bool) -> Callable[[], object]:
        argv = ctx.sshd.ssh(ssh_command, shared=shared)
        return lambda: subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)

    repeats = ctx.repeats * (1 if ctx.smoke else 3)
    with CpuMeter(ctx.plane, name.split()[0]) as cpu:
        mine = Samples(measure(ours, repeats, warmup=3), "ms")
    shared = Samples(measure(ssh(True), repeats, warmup=2), "ms")
    fresh = Samples(measure(ssh(False), max(3, repeats // 3), warmup=1), "ms")
    return [
        Row(f"{name} vs ssh (shared conn)", mine, shared, target="≤ 0.5× ssh-shared",
            met=mine.median <= 0.5 * shared.median, note=cpu_note([cpu], (repeats + 3) / 1000, "1,000")),
        Row(f"{name} vs ssh (new conn)", mine, fresh),
    ]  # fmt: skip


def render_table(rows: list[Row]) -> str:
    header = ("benchmark", "oc-tui median [min–max]", "OpenSSH median [min–max]", "ratio", "target", "met")
    lines = [header]
    for row in rows:
        ratio = f"{row.ratio:.2f}×" if row.ratio is not None else "—"
        met = {True: "yes", False: "NO", None: "—"}[row.met]
        lines.append(
            (row.name, row.ours.describe(), row.ssh.describe() if row.ssh else "—", ratio, row.target, met)
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for i, line in enumerate(lines):
        out.append("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(line)).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    notes = [f"- {row.name}: {row.note}" for row in rows if row.note]
    return "\n".join(out + ([""] + notes if notes else []))


def write_json(rows: list[Row], args: argparse.Namespace, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": "smoke" if args.smoke else "quick" if args.quick else "full" if args.full else "default",
        "rows": [asdict(row) | {"ratio": row.ratio} for row in rows],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: the whole run in under 2 minutes")
    parser.add_argument("--smoke", action="store_true", help="smallest sizes: checks the harness, not speed")
    parser.add_argument("--full", action="store_true", help="also the largest sizes (10,000 agents)")
    parser.add_argument("--only", action="append", default=[], help="run only cases whose name contains this")
    parser.add_argument("--json", type=Path, default=RESULTS / "latest.json", help="where to write JSON")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample our processes with py-spy while measured (into DIR)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from bench import cases
    from bench.plane import ControlPlane
    from bench.sshd import PrivateSshd, ensure_tools

    global PROFILE_DIR
    args = parse_args(argv)
    PROFILE_DIR = args.profile
    ctx = Context(
        quick=args.quick or args.smoke,
        smoke=args.smoke,
        full=args.full,
        repeats=3 if args.smoke else 10 if args.quick else 30,
    )
    ensure_tools()
    selected = [c for c in cases.ALL if not args.only or any(o in c.__name__ for o in args.only)]
    started = time.monotonic()
    with PrivateSshd() as sshd, ControlPlane() as plane:
        ctx.sshd, ctx.plane = sshd, plane
        for case in selected:
            name = case.__name__.rsplit(".", 1)[-1]
            print(f"bench: {name} …", file=sys.stderr, flush=True)
            try:
                ctx.rows.extend(case.run(ctx))
            except Exception as exc:  # a broken case must not hide the others' figures
                print(f"bench: {name} failed: {exc!r}", file=sys.stderr)
                ctx.rows.append(Row(name=name, ours=Samples([], ""), note=f"failed: {exc}"))
    print(render_table(ctx.rows))
    print(f"\n({len(ctx.rows)} rows in {time.monotonic() - started:.0f} s)")
    write_json(ctx.rows, args, args.json)
    return 1 if any(row.note.startswith("failed") for row in ctx.rows) else 0
