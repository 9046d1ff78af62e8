"""The Jobs tab of a host: a command line, the host's jobs, and the selected job's output, live.

Data flow as everywhere in oc-tui: workers (``@work``) talk to the client and post messages; handlers
only update widgets. Running a command posts :class:`JobsTab.JobStarted`; the new job is selected,
which starts streaming its output (one stream at a time: selecting another job replaces it, and a
late subscriber gets the job's output from the start). While any job is queued or running the list
is reloaded every ``POLL_SECONDS`` so jobs started elsewhere and their ends show up too.

Tests and the screenshot script feed fixed models through the same messages (``live=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import DataTable, Input, Label

from oc_tui.api import errors
from oc_tui.api.models import Job
from oc_tui.api.streams import OutputChunk, OutputTruncated
from oc_tui.jobs_model import JobOptions, exit_note, split_secrets, truncated_note
from oc_tui.screens.host_tab import HostTab, HostTabContext
from oc_tui.widgets.command_line import CommandLine
from oc_tui.widgets.formatting import host_markup, job_duration
from oc_tui.widgets.job_list import ACTIVE, JobList, command_line
from oc_tui.widgets.job_output import JobOutput

OPTIONS_PLACE = "jobs.options"
"""The key of the tab's options in the host's places."""
POLL_SECONDS = 2.0
"""How often the list is reloaded while a job is active."""
JOBS_SHOWN = 50
"""The newest jobs listed (one page)."""


class JobsTab(HostTab):
    """Run commands on one host and watch them."""

    TAB_ID = "jobs"
    TITLE = "Jobs"
    KEY = "j"
    HELP_ROWS = (
        ("enter", "Run the command line"),
        ("--secret NAME cmd", "Run cmd with secret NAME as $NAME (*** in its output)"),
        ("↑ ↓", "Command history (command line)"),
    )
    HELP_ROWS_AFTER = (("tab", "Command line → jobs → output"), ("G  g", "Output: follow the end / top"))
    BINDINGS: ClassVar[list[BindingType]] = [
        # priority: it must work while the command line has the focus (it takes ctrl+k from Input's
        # "delete to the end of the line", which a one-line command prompt hardly needs).
        Binding("ctrl+k", "cancel_job", "Cancel job", priority=True),
        # ctrl+ keys for the same reason: the command line has the keyboard most of the time
        Binding(
            "ctrl+o", "job_options", "Options", priority=True, tooltip="Directory, environment, time limit"
        ),
        Binding(
            "ctrl+s",
            "save_output",
            "Save output",
            priority=True,
            tooltip="The selected job's whole output to a file",
        ),
    ]

    # --- messages: what workers (or a test) deliver ------------------------------------------------

    @dataclass
    class JobsLoaded(Message):
        jobs: list[Job]

    @dataclass
    class JobStarted(Message):
        """A job this tab started: it is selected and its output followed."""

        job: Job

    @dataclass
    class JobUpdated(Message):
        job: Job

    @dataclass
    class OutputArrived(Message):
        job_id: str
        data: bytes
        stderr: bool = False

    @dataclass
    class OutputNote(Message):
        job_id: str
        text: str

    @dataclass
    class OutputEnded(Message):
        """The stream's final event: ``status``, ``exit_code``, ``error``."""

        job_id: str
        data: dict[str, Any]
        at: datetime | None = None
        """When the job ended (the event's timestamp)."""

    # --- setup -------------------------------------------------------------------------------------

    def __init__(self, context: HostTabContext, *, id: str | None = None) -> None:
        super().__init__(context, id=id)
        self._history = context.history
        self._clock = context.clock
        self._live = context.live
        self._shown: str | None = None
        """The job whose output the output pane shows."""
        self._ended: set[str] = set()
        self._places = context.places
        self.options = JobOptions.from_place(context.places.get(OPTIONS_PLACE))
        """How the next commands run (kept per host for this run of the app)."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="job-command-bar"):
            yield Label("$", id="job-prompt")
            yield CommandLine(
                self._history,
                placeholder="command to run on this host  (↑ ↓ history · enter runs)",
                id="job-command",
                compact=True,
            )
            yield Label(host_markup(self.options.summary()), id="job-options")
        yield JobList(self._clock, id="job-list")
        yield JobOutput(id="job-output")

    def on_mount(self) -> None:
        self.query_one(JobList).border_title = "jobs"
        self.output.border_title = "output"
        self.set_interval(1.0, self._tick)
        if self._live:
            self.set_interval(POLL_SECONDS, self._poll)
            self.load_jobs()

    def activate(self) -> bool:
        """The tab was shown: the command line takes the focus, ready to type, and the list is loaded
        afresh (jobs started elsewhere — another client, an AI agent session — show up)."""
        self.take_focus(self.command_line)
        if self._live:
            self.load_jobs()
        return True

    @property
    def job_list(self) -> JobList:
        return self.query_one(JobList)

    @property
    def output(self) -> JobOutput:
        return self.query_one(JobOutput)

    @property
    def command_line(self) -> CommandLine:
        return self.query_one(CommandLine)

    # --- workers: the only code that talks to the network ------------------------------------------

    def load_jobs(self) -> None:
        self.request(
            "list jobs",
            lambda client: client.list_jobs(self.host_id, per_page=JOBS_SHOWN),
            lambda page: self.post_message(self.JobsLoaded(page.data)),
            group="jobs-load",
            exclusive=True,
        )

    def start_job(self, command: str, secrets: list[str] | None = None) -> None:
        self.request(
            f"run {command!r}",
            lambda client: client.run_job(
                self.host_id,
                command,
                secrets=secrets,
                cwd=self.options.cwd,
                env=list(self.options.env) or None,
                timeout=self.options.timeout,
            ),
            lambda job: self.post_message(self.JobStarted(job)),
            group="jobs-run",
            needs_client=True,
        )

    def fetch_job(self, job_id: str) -> None:
        self.request(
            "get job",
            lambda client: client.get_job(self.host_id, job_id),
            lambda job: self.post_message(self.JobUpdated(job)),
            group="jobs-fetch",
        )

    def cancel(self, job: Job) -> None:
        self.request(
            f"cancel {command_line(job)!r}",
            lambda client: client.cancel_job(self.host_id, job.id),
            lambda _: self.fetch_job(job.id),
            group="jobs-cancel",
        )

    @work(exclusive=True, group="job-output", exit_on_error=False)
    async def stream_output(self, job_id: str) -> None:
        """Everything the job printed, from its start, then live until it ends."""
        client = self.client
        if client is None:
            return
        try:
            async with client.job_output(self.host_id, job_id) as output:
                async for item in output:
                    if isinstance(item, OutputChunk):
                        self.post_message(self.OutputArrived(job_id, item.data, item.stderr))
                    elif isinstance(item, OutputTruncated):
                        self.post_message(self.OutputNote(job_id, truncated_note(item.limit)))
                    else:
                        self.post_message(self.OutputEnded(job_id, item.data, item.timestamp))
        except errors.OpenComputersError as exc:
            self.post_message(self.RequestFailed("job output", exc))

    # --- message handlers: update widgets, never await the network ---------------------------------

    def on_jobs_tab_jobs_loaded(self, message: JobsLoaded) -> None:
        self.job_list.show(message.jobs)
        if self._shown is None and (job := self.job_list.selected_job) is not None:
            self._show_output(job)

    def on_jobs_tab_job_started(self, message: JobStarted) -> None:
        self.job_list.upsert(message.job)
        self.job_list.select_job(message.job.id)
        self._show_output(message.job)

    def on_jobs_tab_job_updated(self, message: JobUpdated) -> None:
        self.job_list.upsert(message.job)
        self._update_output_title()

    def on_jobs_tab_output_arrived(self, message: OutputArrived) -> None:
        if message.job_id == self._shown:
            self.output.feed(message.data, stderr=message.stderr)

    def on_jobs_tab_output_note(self, message: OutputNote) -> None:
        if message.job_id == self._shown:
            self.output.add_note(message.text)

    def on_jobs_tab_output_ended(self, message: OutputEnded) -> None:
        data = message.data
        job = self.job_list.job(message.job_id)
        status = str(data.get("status") or (job.status if job else "ended"))
        exit_code = data.get("exit_code")
        if job is not None and job.status in ACTIVE:
            update: dict[str, Any] = {"status": status, "exit_code": exit_code, "error": data.get("error")}
            if job.completed_at is None:
                update["completed_at"] = message.at or self._clock()
            job = job.model_copy(update=update)
            self.job_list.upsert(job)
        if message.job_id == self._shown:
            duration = job_duration(job, self._clock()) if job is not None else None
            self.output.add_note(exit_note(status, exit_code, data.get("error"), duration))
            self._update_output_title()
        self._ended.add(message.job_id)
        if self._live:
            self.fetch_job(message.job_id)  # the record's completed_at and final fields

    @on(DataTable.RowHighlighted, "#job-list")
    def _job_highlighted(self) -> None:
        job = self.job_list.selected_job
        if job is not None and job.id != self._shown:
            self._show_output(job)

    @on(Input.Submitted, "#job-command")
    def _command_submitted(self, event: Input.Submitted) -> None:
        command = event.value.strip()
        if not command:
            return
        self.command_line.remember(command)
        self.command_line.value = ""
        secrets, command = split_secrets(command)
        if not command:
            self.app.notify("--secret NAME needs a command after it", severity="warning")
            return
        self.start_job(command, secrets)

    # --- actions -----------------------------------------------------------------------------------

    def action_cancel_job(self) -> None:
        job = self.job_list.selected_job
        if job is None:
            self.app.notify("no job selected", severity="warning")
            return
        if job.status not in ACTIVE:
            self.app.notify(
                host_markup(f"{command_line(job)!r} is not running ({job.status})"), severity="warning"
            )
            return
        self.app.notify(host_markup(f"cancelling {command_line(job)!r}…"), title="Jobs")
        self.cancel(job)

    def action_job_options(self) -> None:
        """Ask how the next jobs run (directory, environment, time limit); shown beside the prompt."""
        from oc_tui.screens.job_dialogs import JobOptionsDialog

        def chosen(options: JobOptions | None) -> None:
            if options is not None:
                self.options = options
                self._places[OPTIONS_PLACE] = options.to_place()
                self.query_one("#job-options", Label).update(host_markup(options.summary()))

        self.app.push_screen(JobOptionsDialog(self.options), chosen)

    def action_save_output(self) -> None:
        """Save the selected job's whole output (the pane keeps only its last lines) to a local file."""
        from oc_tui.screens.job_dialogs import SaveOutputDialog
        from oc_tui.screens.save_picture import default_save_path

        job = self.job_list.selected_job
        if job is None:
            self.app.notify("no job selected", severity="warning")
            return

        def saved(path: Path | None) -> None:
            if path is not None:
                self.app.notify(host_markup(str(path)), title="Output saved")

        default = default_save_path("Downloads", f"{job.id}.log")
        self.app.push_screen(SaveOutputDialog(self.client, self.host_id, job.id, default), saved)

    # --- helpers -----------------------------------------------------------------------------------

    def _show_output(self, job: Job) -> None:
        self._shown = job.id
        self.output.clear()
        self._update_output_title()
        if self._live:
            self.stream_output(job.id)

    def _update_output_title(self) -> None:
        job = self.job_list.job(self._shown) if self._shown else None
        if job is None:
            self.output.border_title = "output"
            return
        title = f"output · {host_markup(command_line(job))}"
        if job.truncated:
            title += " · truncated by the server"
        if job.agent_session:
            title += f" · run by agent session {host_markup(job.agent_session)}"
        self.output.border_title = title

    def _tick(self) -> None:
        self.job_list.refresh_times()

    def _poll(self) -> None:
        if self.job_list.any_active:
            self.load_jobs()
