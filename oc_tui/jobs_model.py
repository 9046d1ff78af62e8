"""What the views of job output (the Jobs tab, the fan-out screen) say about a job beyond its bytes.

The output itself comes decoded from the client's one job-output stream (``client.job_output``:
``OutputChunk``, ``OutputTruncated``, ``JobExit``); this module only words its notes, reads the secrets a command line attaches (``--secret NAME``) and
holds the options the Jobs tab runs with (:class:`JobOptions`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pydantic import ValidationError as PydanticValidationError

from oc_tui.api.models import JobCreate
from oc_tui.widgets.formatting import format_bytes


def truncated_note(limit: int | None) -> str:
    """The line shown where the server stopped storing a job's output (``limit`` in bytes)."""
    size = format_bytes(limit) if limit is not None else "its limit"
    return f"── the server stores only the first {size} of a job's output ──"


def exit_note(status: str, exit_code: int | None, error: str | None, duration: str | None = None) -> str:
    """The closing line under a job's output: ``── completed · exit 0 · 0.4s ──``."""
    parts = [status]
    if exit_code is not None:
        parts.append(f"exit {exit_code}")
    if error and error != status:  # a cancelled job's error is "cancelled": said once
        parts.append(error)
    if duration and duration != "-":
        parts.append(duration)
    return f"── {' · '.join(parts)} ──"


SECRET_PREFIX = re.compile(r"--secret(?:=|\s+)([A-Za-z_][A-Za-z0-9_]*(?:,[A-Za-z_][A-Za-z0-9_]*)*)(?:\s+|$)")
"""One ``--secret NAME`` (or ``--secret=A,B``) at the start of a command line."""


def split_secrets(line: str) -> tuple[list[str], str]:
    """The secrets a command line attaches and the command itself: ``--secret GITHUB_TOKEN echo hi``
    → ``(["GITHUB_TOKEN"], "echo hi")``. ``--secret`` may repeat and take ``A,B``; only leading ones
    count (the command is left exactly as typed)."""
    names: list[str] = []
    rest = line.lstrip()
    while match := SECRET_PREFIX.match(rest):
        names.extend(match.group(1).split(","))
        rest = rest[match.end() :].lstrip()
    return list(dict.fromkeys(names)), rest


DEFAULT_CWD = "~"
"""Where a job runs unless told otherwise: the home of the agent's user, as the Files tab and a terminal
open there (the agent expands ``~``; a job sent without ``cwd`` runs there too, docs/api.md)."""
DEFAULT_TIMEOUT = 60
"""Seconds a job may run unless told otherwise (the API's default)."""
MAX_TIMEOUT = 86400
"""The longest time limit the API takes, in seconds."""


FIELD_LABELS = {"cwd": "directory", "env": "environment", "timeout": "time limit"}
"""The words of the options dialog for the API's field names, in its error messages."""


@dataclass(frozen=True)
class JobOptions:
    """How the Jobs tab runs its next commands: ``cwd`` on the host, extra ``env`` (``KEY=VALUE``
    items) and ``timeout`` in seconds."""

    cwd: str = DEFAULT_CWD
    env: tuple[str, ...] = ()
    timeout: int = DEFAULT_TIMEOUT

    @classmethod
    def parse(cls, cwd: str, env: str, timeout: str) -> JobOptions:
        """Options from what was typed (``env`` space-separated); checked by the API's own rules
        (:class:`~oc_tui.api.models.JobCreate`).

        Raises:
            ValueError: what is wrong, naming the field.
        """
        text = timeout.strip()
        if not text.isdigit() or not 1 <= int(text) <= MAX_TIMEOUT:
            raise ValueError(f"time limit: whole seconds from 1 to {MAX_TIMEOUT}, not {text!r}")
        fields = {"cwd": cwd.strip() or DEFAULT_CWD, "env": env.split(), "timeout": text}
        try:
            spec = JobCreate.model_validate({"command": "true", **fields})
        except PydanticValidationError as exc:
            problem = exc.errors()[0]
            where = FIELD_LABELS.get(str(problem["loc"][0]) if problem["loc"] else "", "options")
            message = problem["msg"].removeprefix("Value error, ")
            if where == "environment":
                message += " (items are separated by spaces; a value holds no space or quote)"
            raise ValueError(f"{where}: {message}") from None
        return cls(spec.cwd or DEFAULT_CWD, tuple(spec.env or ()), spec.timeout)

    def summary(self) -> str:
        """``in ~ · 60 s`` (``· 2 env`` when there is extra environment): what the tab shows."""
        text = f"in {self.cwd} · {self.timeout} s"
        return f"{text} · {len(self.env)} env" if self.env else text

    def to_place(self) -> str:
        """The options as one string, to keep in the host's places (:meth:`from_place` reads it)."""
        return json.dumps({"cwd": self.cwd, "env": list(self.env), "timeout": self.timeout})

    @classmethod
    def from_place(cls, text: str | None) -> JobOptions:
        """Options kept by :meth:`to_place`; the defaults when there are none (or unreadable)."""
        try:
            data = json.loads(text or "{}")
            return cls(
                str(data.get("cwd", DEFAULT_CWD)), tuple(data.get("env", ())), int(data.get("timeout", 60))
            )
        except (ValueError, TypeError, AttributeError):
            return cls()
