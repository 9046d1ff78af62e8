"""The two job dialects of ``POST /hosts/{id}/exec`` (docs/api.md, "MIOSA's SDKs").

The reference (and MIOSA's Go SDK) sends ``{command, args, env: ["K=V"], cwd, timeout}`` (seconds);
MIOSA's hosted API (and its Python SDK) sends ``{cmd, args, env: [{name, value}], cwd, timeout_ms,
stream}``. :class:`ExecRequest` takes either (or a mix) and gives the one :class:`JobCreate` the rest of
the server knows, plus ``stream``: None (the reference's answer), False (block, answer the result) or
True (answer the job's event stream on the POST itself).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, PrivateAttr, ValidationError, model_validator

from oc_tui.api.models import JobCreate, JobShell, RequestModel

MAX_TIMEOUT = 86400  # seconds, as JobCreate allows
HOSTED_TIMEOUT = (
    30  # seconds: MIOSA's hosted default (its ``cmd`` dialect, ``POST /jobs``); the reference's is 60
)


class EnvVar(RequestModel):
    """One ``{name, value}`` environment entry of the hosted dialect."""

    name: str
    value: str


class ExecRequest(RequestModel):
    """``POST /hosts/{id}/exec`` in either dialect; :attr:`spec` is the job to run."""

    command: str | None = None
    cmd: str | None = None
    args: list[str] | None = None
    shell: JobShell | None = None  # extension: the shell of a command without args (docs/api.md)
    env: list[str | EnvVar] | None = None
    cwd: str | None = None
    timeout: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT)
    timeout_ms: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT * 1000)
    stream: bool | None = None
    secrets: list[str] | None = None  # extension: names of secrets to deliver (docs/api.md, "Secrets")
    _spec: JobCreate | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _one_job(self) -> ExecRequest:
        if self.command is None and self.cmd is None:
            raise ValueError("command (or cmd) is required")
        if self.command is not None and self.cmd is not None and self.command != self.cmd:
            raise ValueError("command and cmd differ: send one of them")
        if self.timeout is not None and self.timeout_ms is not None:
            raise ValueError("send timeout (seconds) or timeout_ms, not both")
        self._spec = self._job()
        return self

    @property
    def hosted_spec(self) -> JobCreate:
        """:attr:`spec`, with MIOSA's hosted default timeout (:data:`HOSTED_TIMEOUT`) when none was sent
        (``POST /hosts/{id}/jobs``)."""
        if self.timeout is None and self.timeout_ms is None:
            return self.spec.model_copy(update={"timeout": HOSTED_TIMEOUT})
        return self.spec

    @property
    def spec(self) -> JobCreate:
        """The job as the reference's :class:`JobCreate` (env as ``K=V``, timeout in whole seconds)."""
        assert self._spec is not None  # set by the validator
        return self._spec

    def _job(self) -> JobCreate:
        body: dict[str, Any] = {"command": self.command if self.command is not None else self.cmd}
        if self.args is not None:
            body["args"] = self.args
        if self.shell is not None:
            body["shell"] = self.shell
        if self.env is not None:
            body["env"] = [
                item if isinstance(item, str) else f"{item.name}={item.value}" for item in self.env
            ]
        if self.cwd is not None:
            body["cwd"] = self.cwd
        if self.secrets is not None:
            body["secrets"] = self.secrets
        if self.timeout is not None:
            body["timeout"] = self.timeout
        elif self.timeout_ms is not None:
            body["timeout"] = max(1, math.ceil(self.timeout_ms / 1000))
        elif self.command is None:  # the hosted dialect: its default
            body["timeout"] = HOSTED_TIMEOUT
        try:
            return JobCreate.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ()))
            message = str(first.get("msg", "is invalid")).removeprefix("Value error, ")
            raise ValueError(f"{where}: {message}") from None
