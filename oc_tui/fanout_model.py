"""What the fan-out screen shows, apart from its widgets: hosts with identical results grouped together
(as dshbak: ``web-[01-40,42] (41 hosts) exit 0`` and the shared output once), the exit-code summary,
and the diff of two hosts' outputs.

Host names are folded into ranges by ClusterShell's ``NodeSet`` (``web-01 … web-40`` → ``web-[01-40]``);
a name it cannot parse is listed as it is.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ClusterShell.NodeSet import NodeSet, NodeSetParseError

from oc_tui.api.models import Host, Job


@dataclass
class HostRun:
    """What is known of one host's part of a fan-out."""

    host: Host
    job: Job | None = None
    skipped: str | None = None
    """Why the command was not run there ("offline — not run"), or None."""
    error: str | None = None
    """Why starting or following the job failed, or None."""
    first_line: str = ""
    first_line_done: bool = False
    chunks: list[tuple[bytes, bool]] = field(default_factory=list)
    """The output kept for display (stderr flag per chunk), at most the screen's cap."""
    kept: int = 0

    @property
    def status(self) -> str:
        if self.skipped:
            return "skipped"
        if self.error:
            return "error"
        return self.job.status if self.job is not None else "starting"

    @property
    def finished(self) -> bool:
        return self.status in ("skipped", "error", "completed", "failed", "cancelled")

    @property
    def failed(self) -> bool:
        """It ran (or its start failed) and did not end with exit 0: a re-run's candidates (hosts that
        were not run, offline ones, are not)."""
        return (
            self.finished
            and self.status != "skipped"
            and not (self.status == "completed" and self.exit_code == 0)
        )

    @property
    def exit_code(self) -> int | None:
        return self.job.exit_code if self.job is not None else None

    @property
    def output(self) -> bytes:
        """The kept output, both streams in the order they came."""
        return b"".join(data for data, _ in self.chunks)

    @property
    def result(self) -> str:
        """How it ended, in a few words: ``exit 0``, ``cancelled``, ``offline — not run``, ``running``."""
        if self.skipped or self.error:
            return str(self.skipped or self.error)
        if self.exit_code is not None:
            return f"exit {self.exit_code}"
        if self.job is not None and self.job.status == "failed" and self.job.error:
            return self.job.error
        return self.status


@dataclass
class OutputGroup:
    """Hosts whose result and output are identical."""

    runs: list[HostRun]

    @property
    def names(self) -> str:
        """The hosts' names folded into ranges (``web-[01-40,42]``)."""
        return fold_names(run.host.name for run in self.runs)

    @property
    def result(self) -> str:
        return self.runs[0].result

    @property
    def first_line(self) -> str:
        return self.runs[0].first_line

    @property
    def key(self) -> str:
        """A stable key of the group: its first host's ID."""
        return self.runs[0].host.id


def fold_names(names: Iterable[str]) -> str:
    """Host names as ranges where they number alike: ``web-01, web-02, web-05`` → ``web-[01-02,05]``."""
    folded = NodeSet()
    plain: list[str] = []
    for name in names:
        if _foldable(name):
            try:
                folded.update(NodeSet(name))
                continue
            except NodeSetParseError:
                pass
        plain.append(name)
    return ",".join(part for part in (str(folded), *sorted(plain)) if part)


def _foldable(name: str) -> bool:
    """Whether NodeSet reads ``name`` as one host (no syntax of its own in it)."""
    return not any(c in name for c in "[],@!&^ \t")


def group_runs(runs: Sequence[HostRun]) -> list[OutputGroup]:
    """Finished hosts grouped by identical (result, output), the largest group first; hosts still running
    are a group each, after them."""
    groups: dict[tuple[str, bytes], list[HostRun]] = {}
    running: list[HostRun] = []
    for run in runs:
        if not run.finished:
            running.append(run)
            continue
        digest = hashlib.blake2b(run.output, digest_size=16).digest()
        groups.setdefault((run.result, digest), []).append(run)
    ordered = sorted(groups.values(), key=lambda members: (-len(members), members[0].result))
    return [OutputGroup(members) for members in ordered] + [OutputGroup([run]) for run in running]


def exit_summary(runs: Sequence[HostRun]) -> str:
    """The exit codes and other ends, with counts: ``exit 0 ×41 · exit 1 ×2 · offline — not run ×1``."""
    counts: dict[str, int] = {}
    for run in runs:
        if run.finished:
            counts[run.result] = counts.get(run.result, 0) + 1
    ordered = sorted(counts.items(), key=lambda item: (not item[0].startswith("exit"), -item[1], item[0]))
    return " · ".join(f"{result} ×{count}" for result, count in ordered)


def diff_outputs(a: HostRun, b: HostRun) -> list[str]:
    """A unified diff of two hosts' outputs (lines, with ``---``/``+++`` naming the hosts); ``[]`` when
    they are the same."""
    left = a.output.decode("utf-8", "replace").splitlines()
    right = b.output.decode("utf-8", "replace").splitlines()
    return list(difflib.unified_diff(left, right, a.host.name, b.host.name, lineterm=""))
