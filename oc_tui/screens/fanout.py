"""One command on many hosts at once, and the results as they come in.

Every online host gets its job started concurrently (one worker per host: start, then follow its
output stream to the end). Hosts that are not online are reported at once as "offline — not run"
and never waited for; a host that turns out offline when asked (409) is reported the same way.
The table shows each host's status, exit code, duration and first output line; below it, the
full output of the highlighted host. Each host's output is kept up to ``KEEP_BYTES`` (its tail)
so moving between hosts redraws at once without asking the server again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, get_args

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from oc_tui.api import OpenComputersClient, errors
from oc_tui.api.models import FanOut, Host, Job, JobStatus
from oc_tui.api.streams import FanOutEnd, JobExit, MemberNotRun, OutputChunk
from oc_tui.fanout_model import HostRun, diff_outputs, exit_summary, group_runs
from oc_tui.jobs_model import exit_note
from oc_tui.readonly import ReadOnlyGuard
from oc_tui.screens.host_tab import client_of
from oc_tui.widgets.fanout_table import FIRST_LINE_CHARS, FanoutTable, GroupTable
from oc_tui.widgets.formatting import describe_error, host_markup, job_duration
from oc_tui.widgets.job_list import ACTIVE
from oc_tui.widgets.job_output import JobOutput
from oc_tui.widgets.keys_footer import KeysFooter

STARTS_AT_ONCE = 64
"""Job starts in flight at one time: a thousand at once only queue in the HTTP pool (bench/cases/fanout.py)."""
INLINE_WAIT = 1.0
"""``?wait=`` on each start: a short job comes back finished, with its output, and needs no stream.
A server without the extension answers at once, and the output is streamed as usual."""

JOB_STATUSES = get_args(JobStatus)
KEEP_BYTES = 4 * 1024 * 1024
"""Output kept per host for the lower pane (the tail; the server has it all)."""


class FanoutScreen(ReadOnlyGuard, Screen[None]):
    """Runs ``command`` on ``hosts``; ``esc`` goes back to the fleet (jobs keep running)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.back", "Back"),
        Binding("ctrl+k", "cancel_job", "Cancel", tooltip="Cancel the selected host's job"),
        Binding("C", "cancel_all", "Cancel all"),
        Binding("g", "toggle_grouped", "Grouped", tooltip="Hosts with identical results together"),
        Binding("space", "mark_for_diff", "Diff base", show=False),
        Binding(
            "d",
            "diff",
            "Diff",
            show=False,  # the footer keeps to 80 columns; ? lists it
            tooltip="Diff the host's output against the marked one (or the majority's)",
        ),
        Binding("R", "rerun_failed", "Re-run", tooltip="Re-run the command on the hosts that failed"),
    ]

    # --- messages: what workers (or a test) deliver ------------------------------------------------

    @dataclass
    class Skipped(Message):
        host_id: str
        reason: str

    @dataclass
    class Failed(Message):
        host_id: str
        reason: str

    @dataclass
    class JobChanged(Message):
        """The host's job as the server has it (started, or its final record)."""

        host_id: str
        job: Job

    @dataclass
    class OutputArrived(Message):
        host_id: str
        data: bytes
        stderr: bool = False

    @dataclass
    class OutputEnded(Message):
        host_id: str
        data: dict[str, Any]
        at: datetime | None = None
        """When the job ended (the event's timestamp)."""

    def __init__(
        self,
        hosts: Sequence[Host],
        command: str,
        clock: Callable[[], datetime],
        *,
        live: bool = True,
    ) -> None:
        super().__init__()
        self.command = command
        self._clock = clock
        self._live = live
        self.runs: dict[str, HostRun] = {host.id: HostRun(host) for host in hosts}
        self._shown: str | None = None
        self._starts = asyncio.Semaphore(STARTS_AT_ONCE)
        self.fanout_id: str | None = None
        self.diff_base: str | None = None
        """The host whose output ``d`` compares against (None: the largest group's)."""
        self._grouped_dirty = False
        """The server's fan-out record (None: per-host starts, or not started yet)."""

    def compose(self) -> ComposeResult:
        yield Static(id="fanout-info")
        yield FanoutTable(self._clock, id="fanout-results")
        yield GroupTable(self._clock, id="fanout-groups")
        yield JobOutput(id="fanout-output")
        yield KeysFooter()

    def on_mount(self) -> None:
        table = self.table
        table.border_title = f"$ {host_markup(self.command)}"
        table.set_runs(list(self.runs.values()))
        self.set_interval(1.0, self._tick)
        self.set_interval(0.25, self._regroup)
        self.query_one(GroupTable).display = False
        if self._live:
            self.run_all()
        else:
            for run in self.runs.values():
                if run.host.status != "online":
                    self.post_message(self.Skipped(run.host.id, f"{run.host.status} — not run"))
        self._update_info()
        table.focus()
        self._show_output(table.selected_host_id)

    @property
    def client(self) -> OpenComputersClient | None:
        """The app's client, None until the app has one."""
        return client_of(self)

    @property
    def table(self) -> FanoutTable:
        return self.query_one(FanoutTable)

    @property
    def output(self) -> JobOutput:
        return self.query_one(JobOutput)

    # --- workers ------------------------------------------------------------------------------------

    @work(group="fanout", exit_on_error=False)
    async def run_all(self) -> None:
        """Start the command on every host in one request (the server's fan-out) and follow the one
        combined stream of their output; against a server without fan-outs, one request per host."""
        client = self.client
        if client is None:
            for host_id in self.runs:
                self.post_message(self.Failed(host_id, "not connected"))
            return
        try:
            fan = await client.start_fanout(self.command, host_ids=list(self.runs))
        except errors.ApiError as exc:
            if exc.status in (404, 405):  # a server without /fanouts (an older one, MIOSA's)
                self._per_host()
            else:
                for host_id in self.runs:
                    self.post_message(self.Failed(host_id, describe_error(exc)))
            return
        except errors.OpenComputersError as exc:
            for host_id in self.runs:
                self.post_message(self.Failed(host_id, describe_error(exc)))
            return
        self.fanout_id = fan.id
        self._record(fan)
        try:
            async with client.fanout_output(fan.id) as output:
                async for host_id, item in output:
                    if isinstance(item, OutputChunk):
                        self.post_message(self.OutputArrived(host_id, item.data, item.stderr))
                    elif isinstance(item, JobExit):
                        self.post_message(self.OutputEnded(host_id, item.data, item.timestamp))
                    elif isinstance(item, MemberNotRun):
                        self.post_message(self.Skipped(host_id, item.error or item.status or "not run"))
                    elif isinstance(item, FanOutEnd) and item.record is not None:
                        self._record(item.record)
        except errors.OpenComputersError as exc:
            self.notify(f"fan-out stream: {host_markup(describe_error(exc))}", severity="error")

    def _record(self, fan: FanOut) -> None:
        """Post what the fan-out record says of each member (its job, or why it did not run)."""
        now = self._clock()
        for member in fan.fan_out:
            if member.job_id is None:
                if member.error or member.status == "skipped":
                    self.post_message(self.Skipped(member.host_id, member.error or "not run"))
                continue
            job = Job(
                id=member.job_id,
                host_id=member.host_id,
                status=member.status if member.status in JOB_STATUSES else "queued",
                command=self.command,
                exit_code=member.exit_code,
                error=member.error,
                created_at=fan.created_at,
                updated_at=now,
            )
            self.post_message(self.JobChanged(member.host_id, job))

    def _per_host(self) -> None:
        """The fan-out of a server without ``/fanouts``: one start (and stream) per host."""
        for run in self.runs.values():
            if run.host.status != "online":
                self.post_message(self.Skipped(run.host.id, f"{run.host.status} — not run"))
            else:
                self.run_on(run.host)

    @work(group="fanout", exit_on_error=False)
    async def run_on(self, host: Host) -> None:
        """Start the job on one host, then follow its output to the end."""
        client = self.client
        if client is None:
            self.post_message(self.Failed(host.id, "not connected"))
            return
        try:
            async with self._starts:
                job = await client.run_job(host.id, self.command, wait=INLINE_WAIT)
        except errors.HostOfflineError:
            self.post_message(self.Skipped(host.id, "offline — not run"))
            return
        except errors.OpenComputersError as exc:
            self.post_message(self.Failed(host.id, describe_error(exc)))
            return
        self.post_message(self.JobChanged(host.id, job))
        if job.status not in ACTIVE:  # it ended within INLINE_WAIT: the record carries its output
            for text, stderr in ((job.stdout, False), (job.stderr, True)):
                if text:
                    self.post_message(self.OutputArrived(host.id, text.encode(), stderr))
            ended = {"status": job.status, "exit_code": job.exit_code, "error": job.error}
            self.post_message(self.OutputEnded(host.id, ended, job.completed_at))
            return
        try:
            async with client.job_output(host.id, job.id) as output:
                async for item in output:
                    if isinstance(item, OutputChunk):
                        self.post_message(self.OutputArrived(host.id, item.data, item.stderr))
                    elif isinstance(item, JobExit):
                        self.post_message(self.OutputEnded(host.id, item.data, item.timestamp))
            final = await client.get_job(host.id, job.id)
        except errors.OpenComputersError as exc:
            self.post_message(self.Failed(host.id, f"output: {describe_error(exc)}"))
        else:
            self.post_message(self.JobChanged(host.id, final))

    @work(group="fanout-cancel", exit_on_error=False)
    async def cancel(self, host_id: str, job_id: str) -> None:
        client = self.client
        if client is None:
            return
        try:
            await client.cancel_job(host_id, job_id)
        except errors.OpenComputersError as exc:
            self.notify(f"cancel: {host_markup(describe_error(exc))}", severity="error")

    @work(group="fanout-cancel", exit_on_error=False)
    async def cancel_fanout(self, fanout_id: str) -> None:
        """Cancel all on the server: running jobs cancelled, members not started skipped."""
        client = self.client
        if client is None:
            return
        try:
            await client.cancel_fanout(fanout_id)
        except errors.OpenComputersError as exc:
            self.notify(f"cancel all: {host_markup(describe_error(exc))}", severity="error")

    # --- message handlers ---------------------------------------------------------------------------

    def on_fanout_screen_skipped(self, message: Skipped) -> None:
        self._update(message.host_id, skipped=message.reason)

    def on_fanout_screen_failed(self, message: Failed) -> None:
        run = self.runs.get(message.host_id)
        if run is not None and run.job is not None and run.job.status not in ACTIVE:
            return  # the job ended; only reading its final record failed
        self._update(message.host_id, error=message.reason)

    def on_fanout_screen_job_changed(self, message: JobChanged) -> None:
        run = self.runs.get(message.host_id)
        if run is None:
            return
        known = run.job
        if known is not None and known.status not in ACTIVE and message.job.status in ACTIVE:
            return  # the start record arriving after the end (never in practice; cheap to guard)
        self._update(message.host_id, job=message.job)

    def on_fanout_screen_output_arrived(self, message: OutputArrived) -> None:
        run = self.runs.get(message.host_id)
        if run is None:
            return
        self._keep(run, message.data, message.stderr)
        if not run.first_line_done:
            self._read_first_line(run)
            self.table.redraw(run.host.id)
        if message.host_id == self._shown:
            self.output.feed(message.data, stderr=message.stderr)

    def on_fanout_screen_output_ended(self, message: OutputEnded) -> None:
        run = self.runs.get(message.host_id)
        if run is None:
            return
        data = message.data
        if run.job is not None and run.job.status in ACTIVE:
            update: dict[str, Any] = {
                "status": data.get("status", "completed"),
                "exit_code": data.get("exit_code"),
                "error": data.get("error"),
            }
            if run.job.completed_at is None:
                update["completed_at"] = message.at or self._clock()
            run.job = run.job.model_copy(update=update)
        if not run.first_line_done:
            run.first_line_done = True
            self._read_first_line(run, final=True)
        self._note_end(run)
        self.table.redraw(run.host.id)
        self._update_info()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.notify(
                host_markup(f"{event.worker.name}: {event.worker.error}"),
                title="Unexpected error",
                severity="error",
            )

    @on(DataTable.RowHighlighted, "#fanout-groups")
    def _group_highlighted(self) -> None:
        group = self.query_one(GroupTable).selected_group
        if group is None:
            return
        self._show_output(group.runs[0].host.id)
        count = len(group.runs)
        self.output.border_title = f"{host_markup(group.names)} ({count} host{'' if count == 1 else 's'}) · {host_markup(group.result)}"

    @on(DataTable.RowHighlighted, "#fanout-results")
    def _row_highlighted(self) -> None:
        host_id = self.table.selected_host_id
        if host_id != self._shown:
            self._show_output(host_id)

    # --- actions ------------------------------------------------------------------------------------

    def action_cancel_job(self) -> None:
        run = self.runs.get(self.table.selected_host_id or "")
        if run is None or run.job is None or run.job.status not in ACTIVE:
            self.notify("the selected host has no running job", severity="warning")
            return
        self.cancel(run.host.id, run.job.id)

    def action_cancel_all(self) -> None:
        running = [r for r in self.runs.values() if r.job is not None and r.job.status in ACTIVE]
        if not running and not (self.fanout_id and not all(r.finished for r in self.runs.values())):
            self.notify("nothing is running", severity="warning")
            return
        if self.fanout_id is not None:
            self.cancel_fanout(self.fanout_id)
            self.notify(f"cancelling the fan-out ({len(running)} running)…")
            return
        for run in running:
            assert run.job is not None
            self.cancel(run.host.id, run.job.id)
        self.notify(f"cancelling {len(running)} job{'' if len(running) == 1 else 's'}…")

    def action_toggle_grouped(self) -> None:
        """Switch between one row per host and one row per group of identical results."""
        groups = self.query_one(GroupTable)
        groups.border_title = self.table.border_title
        grouped = not groups.display
        groups.display = grouped
        self.table.display = not grouped
        if grouped:
            self._grouped_dirty = True
            self._regroup()
            groups.focus()
        else:
            self.table.focus()
            self._show_output(self.table.selected_host_id)

    def action_mark_for_diff(self) -> None:
        """Make the highlighted host the one ``d`` compares against (again: unmark)."""
        host_id = self._selected_host_id()
        self.diff_base = None if host_id == self.diff_base else host_id
        run = self.runs.get(self.diff_base or "")
        self.notify(f"diff base: {host_markup(run.host.name)}" if run else "diff base: the largest group")

    def action_diff(self) -> None:
        """Show the unified diff of the highlighted host's output against the diff base."""
        run = self.runs.get(self._selected_host_id() or "")
        groups = group_runs(list(self.runs.values()))
        base = self.runs.get(self.diff_base or "") or (groups[0].runs[0] if groups else None)
        if run is None or base is None or base is run:
            self.notify("mark another host with space first", severity="warning")
            return
        lines = diff_outputs(base, run)
        self.output.clear()
        self.output.border_title = f"diff {host_markup(base.host.name)} → {host_markup(run.host.name)}"
        if not lines:
            self.output.add_note("the outputs are identical")
        for line in lines:
            self.output.feed(
                line.encode() + b"\n", stderr=line.startswith("-") and not line.startswith("---")
            )

    def action_rerun_failed(self) -> None:
        """Run the command again on the hosts that did not end with exit 0 (after asking)."""
        failed = [run.host for run in self.runs.values() if run.failed]
        if not failed:
            self.notify("no host failed", severity="warning")
            return
        from oc_tui.screens.confirm import ConfirmScreen
        from oc_tui.screens.run_command import host_sample

        count = len(failed)
        text = f"$ {host_markup(self.command)}\non {host_sample(failed)}"
        title = f"Re-run on {count} failed host{'' if count == 1 else 's'}?"

        def rerun(confirmed: bool | None) -> None:
            if confirmed:
                self.app.push_screen(FanoutScreen(failed, self.command, self._clock, live=self._live))

        self.app.push_screen(ConfirmScreen(title, text, "Re-run"), rerun)

    # --- helpers ------------------------------------------------------------------------------------

    def _selected_host_id(self) -> str | None:
        groups = self.query_one(GroupTable)
        if groups.display:
            group = groups.selected_group
            return group.runs[0].host.id if group else None
        return self.table.selected_host_id

    def _regroup(self) -> None:
        groups = self.query_one(GroupTable)
        if groups.display and self._grouped_dirty:
            self._grouped_dirty = False
            groups.set_groups(group_runs(list(self.runs.values())))

    def _update(self, host_id: str, **changes: Any) -> None:
        run = self.runs.get(host_id)
        if run is None:
            return
        for name, value in changes.items():
            setattr(run, name, value)
        self.table.redraw(host_id)
        self._update_info()
        if host_id == self._shown:
            self._update_output_title()

    def _keep(self, run: HostRun, data: bytes, stderr: bool) -> None:
        run.chunks.append((data, stderr))
        run.kept += len(data)
        while run.kept > KEEP_BYTES and len(run.chunks) > 1:
            dropped, _ = run.chunks.pop(0)
            run.kept -= len(dropped)

    def _read_first_line(self, run: HostRun, final: bool = False) -> None:
        """The first non-empty output line (ANSI removed), once a newline (or the end) shows it."""
        head = b"".join(data for data, _ in run.chunks[:16])[:4096]
        text = head.decode("utf-8", "replace")
        lines = text.split("\n")
        complete = lines if final else lines[:-1]
        for line in complete:
            plain = Text.from_ansi(line).plain.strip()
            if plain:
                run.first_line = plain[:FIRST_LINE_CHARS]
                run.first_line_done = True
                return
        if final or len(head) >= 4096:
            run.first_line = Text.from_ansi(lines[0]).plain.strip()[:FIRST_LINE_CHARS]
            run.first_line_done = True

    def _show_output(self, host_id: str | None) -> None:
        self._shown = host_id
        self.output.clear()
        run = self.runs.get(host_id or "")
        if run is not None:
            for data, stderr in run.chunks:
                self.output.feed(data, stderr=stderr)
            if run.job is not None and run.job.status not in ACTIVE:
                self._note_end(run)
        self._update_output_title()

    def _note_end(self, run: HostRun) -> None:
        if run.host.id != self._shown or run.job is None:
            return
        job = run.job
        self.output.add_note(
            exit_note(job.status, job.exit_code, job.error, job_duration(job, self._clock()))
        )

    def _update_output_title(self) -> None:
        run = self.runs.get(self._shown or "")
        if run is None:
            self.output.border_title = "output"
        elif run.skipped or run.error:
            self.output.border_title = (
                f"{host_markup(run.host.name)} · {host_markup(run.skipped or run.error)}"
            )
        else:
            self.output.border_title = f"output · {host_markup(run.host.name)}"

    def _update_info(self) -> None:
        self._grouped_dirty = True
        runs = list(self.runs.values())
        counts: dict[str, int] = {}
        for run in runs:
            counts[run.status] = counts.get(run.status, 0) + 1
        done = sum(1 for run in runs if run.finished)
        parts = [f"{len(runs)} host{'' if len(runs) == 1 else 's'}", f"{done} finished"]
        for status in ("completed", "failed", "cancelled", "skipped", "error", "running"):
            if counts.get(status):
                label = "not run" if status == "skipped" else status
                parts.append(f"{counts[status]} {label}")
        summary = exit_summary(runs)
        if summary:
            parts.append(host_markup(summary))
        self.query_one("#fanout-info", Static).update(f"fan-out  ·  {'  ·  '.join(parts)}")

    def _tick(self) -> None:
        for run in self.runs.values():
            if run.job is not None and run.job.status == "running":
                self.table.redraw(run.host.id)
