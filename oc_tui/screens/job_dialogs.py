"""The Jobs tab's dialogs: how the next jobs run (directory, environment, time limit), and saving a job's
whole output to a file on this machine."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label

from oc_tui.api import OpenComputersClient
from oc_tui.api.streams import OutputChunk
from oc_tui.jobs_model import MAX_TIMEOUT, JobOptions
from oc_tui.screens.form_dialog import FormDialog
from oc_tui.screens.save_picture import SaveFileDialog
from oc_tui.widgets.formatting import host_markup
from oc_tui.widgets.text_entry import Input


class JobOptionsDialog(FormDialog[JobOptions]):
    """Edits the :class:`~oc_tui.jobs_model.JobOptions` the Jobs tab runs its next commands with;
    dismisses with the new options (nothing is sent: they go with each job)."""

    FAILURE_TITLE = "Job options"

    def __init__(self, options: JobOptions) -> None:
        super().__init__(None)
        self._options = options

    def compose(self) -> ComposeResult:
        options = self._options
        with Vertical(classes="dialog"):
            yield Label("How the next jobs run", classes="dialog-title")
            yield Label("Directory on the host (~ is its user's home)", classes="field-label")
            yield Input(options.cwd, placeholder="~", id="cwd", compact=True)
            yield Label("Environment: KEY=VALUE, separated by spaces", classes="field-label")
            yield Input(" ".join(options.env), placeholder="LANG=C.UTF-8 DEBUG=1", id="env", compact=True)
            yield Label(f"Time limit, seconds (1–{MAX_TIMEOUT}; killed after it)", classes="field-label")
            yield Input(
                str(options.timeout), id="timeout", compact=True
            )  # 1.5 is said wrong, not taken as 15
            yield from self.compose_footer("Use")

    def fields(self) -> JobOptions | None:
        try:
            return JobOptions.parse(
                self.query_one("#cwd", Input).value,
                self.query_one("#env", Input).value,
                self.query_one("#timeout", Input).value,
            )
        except ValueError as exc:
            self.show_error(str(exc))
            return None

    async def send(self, fields: JobOptions) -> JobOptions:
        return fields


class SaveOutputDialog(SaveFileDialog):
    """Saves a job's whole output, as the server stored it (stdout and stderr in the order they were
    written), to a local file: the output pane keeps only its last lines.

    The bytes come from the job's output stream (from its start; a running job's until it ends) into
    ``<path>.part``, renamed over ``path`` when complete.

    Args:
        client: the API client.
        host_id: the job's host.
        job_id: the job.
        default: the proposed path.
    """

    TITLE = "Save job output"
    FAILURE_TITLE = "Output not saved"
    NEEDS_CLIENT = True

    def __init__(self, client: OpenComputersClient | None, host_id: str, job_id: str, default: Path) -> None:
        super().__init__(default, client)
        self._host_id, self._job_id = host_id, job_id

    def describe(self) -> str:
        return "The whole output, to a file on this machine"

    async def write(self, path: Path) -> None:
        assert self.client is not None  # NEEDS_CLIENT
        self.notify(f"saving to {host_markup(str(path))} — a running job's output until the job ends")
        part = path.with_name(path.name + ".part")
        try:
            with part.open("wb") as out:
                async with self.client.job_output(self._host_id, self._job_id) as output:
                    async for item in output:
                        if isinstance(item, OutputChunk):
                            await asyncio.to_thread(out.write, item.data)
            os.replace(part, path)
        finally:
            part.unlink(missing_ok=True)
