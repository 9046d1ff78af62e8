"""Pydantic models of every resource and request in the OpenComputers API reference.

The client parses responses with them and the embedded server builds its responses and validates its
requests with the same classes, so the two cannot drift apart.

Response models tolerate fields they do not know (MIOSA's hosted API may add some); request models
forbid them, so a typo in a request is a clear 400 instead of a silently ignored field.
"""

from __future__ import annotations

import re
import stat
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_serializer,
    field_validator,
    model_validator,
)

# --- identifiers -------------------------------------------------------------------------------------

ID_PREFIXES = {
    "host": "host_",
    "job": "job_",
    "tunnel": "tun_",
    "session": "sess_",
    "cluster": "cl_",
    "secret": "sec_",
    "ticket": "tk_",
    "host_key": "hk_",
    "tenant": "t_",
    "stream": "st_",  # ours: a stream an agent dials back for one request (docs/protocol.md)
    "group": "grp_",  # a host group (MIOSA's SDKs: ``/groups``)
    "fanout": "fo_",  # ours: one command fanned out to many hosts in one request (docs/api.md)
}

_ID_BODY = r"[A-Za-z0-9]{3,64}"


def id_pattern(kind: str) -> re.Pattern[str]:
    """The shape of a valid ID of ``kind``: its reference prefix and 3-64 alphanumerics."""
    return re.compile(rf"^{ID_PREFIXES[kind]}{_ID_BODY}$")


def is_valid_id(kind: str, value: str) -> bool:
    return bool(id_pattern(kind).match(value))


# --- time --------------------------------------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_timestamp(value: datetime) -> str:
    """UTC ISO 8601 with millisecond precision and a ``Z``: fixed width, so strings sort like times."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class ApiModel(BaseModel):
    """Base of response models: unknown fields are kept, timestamps serialise as UTC with ``Z``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)

    @field_serializer("*", when_used="json")
    def _serialise_datetimes(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return format_timestamp(value)
        return value


class Resource(ApiModel):
    """Base of the API's resources: an ``id``, a ``status``, and when it was created and last changed.

    Sections narrow ``status`` to their vocabulary (``HostStatus``, ``JobStatus`` …).
    """

    id: str
    status: str
    created_at: datetime
    updated_at: datetime


class HostResource(Resource):
    """Base of the resources that belong to one host (jobs; tunnels, agent sessions, secrets …)."""

    host_id: str


class StreamEvent(ApiModel):
    """Base of the self-describing events of an SSE stream: ``{type, <owner>_id, data, timestamp}``.

    A subclass names its owner kind in ``OWNER`` (``"host"``, ``"job"``, ``"session"``) and declares the
    ``<owner>_id`` field. ``event_id`` is the SSE ``id:`` the event came with (client side; not dumped).
    """

    OWNER: ClassVar[str]
    type: str
    data: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime
    event_id: str | None = Field(default=None, exclude=True)

    @property
    def owner_id(self) -> str:
        """The ID of what the event is about (the value of its ``<OWNER>_id`` field)."""
        return str(getattr(self, f"{self.OWNER}_id"))


class RequestModel(BaseModel):
    """Base of request bodies: unknown fields are an error, and text arrives as given.

    No text field is stripped or otherwise altered here: args, env values, paths, file names, label values
    and secret values are data. Fields that are identifiers (a host's name and region) say so themselves.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)


T = TypeVar("T")


class PageMeta(ApiModel):
    total: int
    page: int
    per_page: int


class Page(ApiModel, Generic[T]):
    data: list[T]
    meta: PageMeta | None = None


class DataList(ApiModel, Generic[T]):
    """The ``{"data": [...]}`` wrapper of the cluster and secret lists."""

    data: list[T]
    meta: PageMeta | None = None


# --- validation helpers shared by request models -----------------------------------------------------

REGION_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$")
MAX_LABELS = 64
MAX_LABEL_VALUE = 256
MAX_NAME = 64


def _check_name(value: str) -> str:
    """A host name: surrounding whitespace dropped (an identifier, not data), 1-MAX_NAME characters."""
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > MAX_NAME:
        raise ValueError(f"must be at most {MAX_NAME} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


def _check_region(value: str | None) -> str | None:
    value = None if value is None else value.strip()
    if value is None or value == "":
        return None
    if not REGION_RE.match(value):
        raise ValueError("must be a slug: lowercase letters, digits and '-', at most 32 characters")
    return value


def _check_labels(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if len(value) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels")
    for key, val in value.items():
        if not LABEL_KEY_RE.match(key):
            raise ValueError(
                f"label key {key!r} must be 1-63 characters of letters, digits, '.', '_', '/', '-'"
            )
        if len(val) > MAX_LABEL_VALUE:
            raise ValueError(f"label {key!r}: value must be at most {MAX_LABEL_VALUE} characters")
        if any(ord(c) < 32 or ord(c) == 127 for c in val):
            raise ValueError(f"label {key!r}: value must not contain control characters")
    return value


# --- hosts -------------------------------------------------------------------------------------------

HostStatus = Literal["pending", "online", "offline", "error", "revoked"]
HOST_STATUSES: tuple[str, ...] = ("pending", "online", "offline", "error", "revoked")


class AgentInfo(ApiModel):
    """What the host's agent said about its machine when it connected (extension)."""

    hostname: str | None = None
    os: str | None = None
    os_release: str | None = None
    arch: str | None = None
    agent_version: str | None = None
    python: str | None = None
    remote_addr: str | None = None


class Host(Resource):
    """A machine with an agent (``id``, ``status`` and the timestamps come from :class:`Resource`)."""

    name: str
    region: str | None = None
    status: HostStatus
    tenant_id: str
    labels: dict[str, str] = Field(default_factory=dict)
    # Extensions (docs/api.md): when the status last changed, when the agent was last heard from,
    # and what its agent reported about the machine.
    status_changed_at: datetime | None = None
    last_seen_at: datetime | None = None
    agent: AgentInfo | None = None


class HostRegistration(Host):
    """The register response: the only time ``host_key`` is ever shown."""

    host_key: str


class HostCreate(RequestModel):
    name: str
    region: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    _name = field_validator("name")(_check_name)
    _region = field_validator("region")(_check_region)
    _labels = field_validator("labels")(lambda v: _check_labels(v) or {})


class HostUpdate(RequestModel):
    """``PATCH /hosts/{id}``: every field optional; ``labels`` replaces the whole map."""

    name: str | None = None
    region: str | None = None
    labels: dict[str, str] | None = None

    _name = field_validator("name")(lambda v: None if v is None else _check_name(v))
    _region = field_validator("region")(_check_region)
    _labels = field_validator("labels")(_check_labels)


class HostSysInfo(ApiModel):
    """``GET /hosts/{id}/sysinfo`` (extension): live facts asked of the agent."""

    hostname: str
    os: str
    os_release: str | None = None
    arch: str | None = None
    cpu_count: int | None = None
    load_avg: list[float] | None = None
    mem_total: int | None = None
    mem_available: int | None = None
    uptime_s: float | None = None
    agent_version: str | None = None
    python: str | None = None


class HostEvent(StreamEvent):
    """One host event, as the SSE ``data:`` JSON carries it. ``event_id`` is the SSE ``id:`` (client side)."""

    OWNER: ClassVar[str] = "host"
    host_id: str


# --- jobs --------------------------------------------------------------------------------------------

JobStatus = Literal["queued", "running", "completed", "failed", "cancelled"]


class Job(HostResource):
    """A command run on a host (``id``, ``host_id``, ``status``, timestamps from :class:`HostResource`)."""

    status: JobStatus
    command: str
    args: list[str] = Field(default_factory=list)
    env: list[str] = Field(default_factory=list)
    cwd: str | None = None
    timeout: int | None = None
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    completed_at: datetime | None = None
    # Extensions (docs/api.md): why it failed, whether output went over the stored cap, when the
    # process started, and how many output bytes (stdout + stderr) are stored.
    error: str | None = None
    truncated: bool = False
    started_at: datetime | None = None
    output_bytes: int = 0

    @property
    def agent_session(self) -> str | None:
        """The AI agent session that ran this job (its ``run_command`` tool), from the job's environment."""
        prefix = AGENT_SESSION_ENV + "="
        return next((item[len(prefix) :] for item in self.env if item.startswith(prefix)), None)


AGENT_SESSION_ENV = "OC_AGENT_SESSION"
"""The environment variable that names the AI agent session a job runs for (``sess_…``)."""

SECRET_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_SECRET_NAME = 128
MAX_JOB_SECRETS = 100  # secrets one job may ask for


def _check_secret_name(value: str) -> str:
    if len(value) > MAX_SECRET_NAME or not SECRET_NAME_RE.match(value):
        raise ValueError(
            f"must be an environment variable name: letters, digits and '_', not starting with a digit,"
            f" at most {MAX_SECRET_NAME} characters"
        )
    return value


JobShell = Literal["sh", "bash", "zsh", "cmd", "powershell", "pwsh"]
"""A job's ``shell`` (docs/api.md): what runs ``command`` when ``args`` is empty."""


class JobCreate(RequestModel):
    command: str
    args: list[str] | None = None
    # Extension: the shell for a command without args (None: /bin/sh, or cmd.exe on Windows).
    shell: JobShell | None = None
    env: list[str] | None = None
    cwd: str | None = None
    timeout: int = Field(default=60, ge=1, le=86400)
    # Extension: names of tenant or host secrets the job gets as environment variables (docs/api.md).
    secrets: list[str] | None = Field(default=None, max_length=MAX_JOB_SECRETS)

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            _check_secret_name(name)
        return list(dict.fromkeys(value)) if value else value

    @field_validator("command")
    @classmethod
    def _command(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return _no_nul(value)

    @field_validator("args")
    @classmethod
    def _args(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            _no_nul(item)
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            key, sep, _ = item.partition("=")
            if not sep:
                raise ValueError(f"{item!r} is not KEY=VALUE")
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                raise ValueError(
                    f"{key!r} in {item!r} is not a variable name (letters, digits and _, not first a digit)"
                )
            _no_nul(item)
        return value

    @field_validator("cwd")
    @classmethod
    def _cwd(cls, value: str | None) -> str | None:
        return None if value is None else _no_nul(value)


def _no_nul(value: str) -> str:
    """``value`` unchanged; a NUL byte is refused: no operating system passes one in an argument, an
    environment variable or a path (``execve(2)`` ends each string at the first NUL)."""
    if "\0" in value:
        raise ValueError("must not contain a NUL character")
    return value


# The reference's job status of each ``state`` of MIOSA's hosted vocabulary.
STATUS_OF_STATE = {"succeeded": "completed", "canceled": "cancelled", "timeout": "failed"}


def normalise_job_event(raw: dict[str, Any]) -> dict[str, Any]:
    """A job event of either vocabulary in this client's: ``stdout``/``stderr`` with ``{"text"}`` or
    ``{"b64"}``, ``truncated`` with ``{"limit"}``, ``exit`` with ``{status, exit_code, error}``.

    MIOSA's vocabulary (oc-server now, MIOSA's hosted API): ``exec_chunk`` ``{stream, data: "<text>",
    encoding?: "base64"}``, ``exec_result`` ``{exit_code, elapsed_ms}``, ``exec_error`` ``{reason}``, with
    the fields on top and, from MIOSA's hosted API, without ``job_id`` or ``timestamp`` (then ``""`` and
    now). Events of the older oc-server vocabulary pass unchanged.
    """
    event = dict(raw)
    if not event.get("job_id"):
        event["job_id"] = ""
    if not event.get("timestamp"):
        event["timestamp"] = utcnow()
    kind, data = event.get("type"), event.get("data")
    if kind == "exec_chunk":
        text = data if isinstance(data, str) else ""
        event["type"] = "stderr" if event.get("stream") == "stderr" else "stdout"
        event["data"] = {"b64": text} if event.get("encoding") == "base64" else {"text": text}
    elif kind in ("exec_result", "exec_error"):
        inner = data if isinstance(data, dict) else {}
        code = event.get("exit_code", inner.get("exit_code"))
        error = event.get("error", inner.get("error"))
        if kind == "exec_error" and not error:
            error = event.get("reason") or inner.get("reason")
        status = event.get("status") or inner.get("status") or STATUS_OF_STATE.get(str(event.get("state")))
        if not status:
            status = "completed" if kind == "exec_result" and code == 0 else "failed"
        event["type"] = "exit"
        event["data"] = {**inner, "status": status, "exit_code": code, "error": error}
    elif kind == "truncated" and not isinstance(data, dict):
        event["data"] = {"limit": event.get("limit")}
    return event


class JobEvent(StreamEvent):
    """One job event (output, ``truncated``, ``exit``), as the SSE ``data:`` JSON carries it, in this
    client's vocabulary whichever the server spoke (:func:`normalise_job_event`)."""

    OWNER: ClassVar[str] = "job"
    job_id: str

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        return normalise_job_event(value) if isinstance(value, dict) else value


# --- host groups and fan-outs ------------------------------------------------------------------------

GROUP_KINDS = ("explicit", "tag_query")
MAX_QUERY_TERMS = 64  # tags in one tag query, nested ones included
MAX_QUERY_DEPTH = 4


def check_tag_query(value: Any, depth: int = 0) -> int:
    """Check a tag query's shape: ``{"and": [...]}`` or ``{"or": [...]}`` whose items are tags
    (``k=v``, or ``k``: the host has the label ``k``) or nested queries; ``{}`` matches nothing.

    Returns:
        How many tags it holds.

    Raises:
        ValueError: another shape, more than :data:`MAX_QUERY_TERMS` tags or deeper than
            :data:`MAX_QUERY_DEPTH`.
    """
    if not isinstance(value, dict) or len(value) > 1 or (value and next(iter(value)) not in ("and", "or")):
        raise ValueError('a tag query is {"and": [...]} or {"or": [...]}')
    if depth > MAX_QUERY_DEPTH:
        raise ValueError(f"a tag query nests at most {MAX_QUERY_DEPTH} deep")
    items: Any = next(iter(value.values()), [])
    if not isinstance(items, list):
        raise ValueError("a tag query's and/or holds a list")
    terms = 0
    for item in items:
        if isinstance(item, str):
            if not item or len(item) > 320:
                raise ValueError("a tag is 1 to 320 characters")
            terms += 1
        else:
            terms += check_tag_query(item, depth + 1)
    if terms > MAX_QUERY_TERMS:
        raise ValueError(f"a tag query holds at most {MAX_QUERY_TERMS} tags")
    return terms


def _valid_query(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None:
        check_tag_query(value)
    return value


class Group(ApiModel):
    """A host group as MIOSA's Python SDK reads it: ``explicit`` (a member list) or ``tag_query`` (the
    hosts whose labels match ``tag_query``, evaluated when used)."""

    id: str
    name: str
    description: str | None = None
    icon: str | None = None
    color: str | None = None
    kind: str = "explicit"
    tag_query: dict[str, Any] = Field(default_factory=dict)
    member_count: int = 0
    tenant_id: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


class GroupCreate(RequestModel):
    """``POST /groups``."""

    name: str
    description: str | None = Field(default=None, max_length=1000)
    icon: str | None = Field(default=None, max_length=64)
    color: str | None = Field(default=None, max_length=32)
    kind: str = "explicit"
    tag_query: dict[str, Any] | None = None
    host_ids: list[str] | None = Field(default=None, max_length=10000)  # ours: an explicit group's members

    _name = field_validator("name")(_check_name)
    _query = field_validator("tag_query")(_valid_query)

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in GROUP_KINDS:
            raise ValueError(f"must be one of {', '.join(GROUP_KINDS)}")
        return value


class GroupUpdate(RequestModel):
    """``PATCH /groups/{id}``: the fields sent change."""

    name: str | None = None
    description: str | None = Field(default=None, max_length=1000)
    icon: str | None = Field(default=None, max_length=64)
    color: str | None = Field(default=None, max_length=32)
    kind: str | None = None
    tag_query: dict[str, Any] | None = None

    _name = field_validator("name")(lambda v: None if v is None else _check_name(v))
    _query = field_validator("tag_query")(_valid_query)
    _kind = field_validator("kind")(lambda v: v if v is None else GroupCreate._kind(v))


class GroupMembersAdd(RequestModel):
    """``POST /groups/{id}/members``: many hosts at once."""

    host_ids: list[str] = Field(min_length=1, max_length=10000)


class FanOutMember(ApiModel):
    """One host's part of a fan-out: started (``job_id``, ``status`` of its job), waiting for its batch
    (``status: pending``), not started (``status: skipped`` after a failure stopped the fan-out) or
    refused at once (``error``: offline, revoked …)."""

    host_id: str
    host_name: str = ""
    job_id: str | None = None
    status: str | None = None
    exit_code: int | None = None
    error: str | None = None


class FanOut(ApiModel):
    """A fan-out record (ours): one command on many hosts, started in one request. ``fan_out`` is the
    per-host list MIOSA's SDK reads; ``status`` is ``running`` until every member has ended, then
    ``completed`` (``stopped`` when a failure stopped it, ``cancelled`` after cancel-all)."""

    id: str
    status: str
    command: str
    group_id: str | None = None
    batch_size: int | None = None
    stop_on_failure: bool = False
    fan_out: list[FanOutMember] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class FanOutEvent(StreamEvent):
    """One event of a fan-out's combined stream: a member's output or end (a job event with its
    ``host_id``), a member not run (``member`` with ``status``/``error``), and ``fanout_end`` last."""

    OWNER: ClassVar[str] = "fanout"
    fanout_id: str = ""
    host_id: str = ""
    job_id: str = ""

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        return normalise_job_event(value) if isinstance(value, dict) else value


# --- file system -------------------------------------------------------------------------------------


def readable_mode(mode: int | None, mode_string: str | None) -> str | None:
    """``mode_string`` when the server sent it (oc-server), else ``ls -l``'s form of the ``st_mode``."""
    if mode_string:
        return mode_string
    return stat.filemode(mode) if mode is not None else None


class FsEntry(ApiModel):
    name: str
    path: str
    size: int
    is_dir: bool
    modified_at: datetime | None = None
    is_symlink: bool | None = None
    mode: int | None = None  # st_mode, as the reference's SDKs read it
    mode_string: str | None = None  # extension: ``-rw-r--r--``

    @property
    def permissions(self) -> str | None:
        """The mode as ``ls -l`` shows it (``-rw-r--r--``); None when the server sent no mode."""
        return readable_mode(self.mode, self.mode_string)


class FsList(ApiModel):
    path: str
    entries: list[FsEntry]


class FsStat(ApiModel):
    path: str
    name: str = ""
    size: int
    mode: int | None = None  # st_mode, as the reference's SDKs read it
    mode_string: str | None = None  # extension: ``-rw-r--r--``
    is_dir: bool
    is_symlink: bool = False
    symlink_target: str | None = None
    modified_at: datetime | None = None
    created_at: datetime | None = None  # extension: the birth time, where the host has one (macOS, Windows)
    flags: list[str] | None = None  # extension: chflags (macOS) or attributes (Windows) by name

    @property
    def permissions(self) -> str | None:
        """The mode as ``ls -l`` shows it (``-rw-r--r--``); None when the server sent no mode."""
        return readable_mode(self.mode, self.mode_string)


class FsMkdir(RequestModel):
    path: str
    parents: bool = True


# --- terminal and desktop ----------------------------------------------------------------------------


class Ticket(ApiModel):
    ticket: str
    ws_url: str
    expires_at: datetime


# --- tunnels -----------------------------------------------------------------------------------------

TunnelAuthMode = Literal["public", "tenant_only", "password"]
TunnelStatus = Literal["enabled", "disabled"]
SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
"""A tunnel's slug is one DNS label: 1-63 lowercase letters, digits and inner hyphens."""


def _check_slug(value: str | None) -> str | None:
    if value is not None and not SLUG_PATTERN.match(value):
        raise ValueError("must be a DNS label: 1-63 lowercase letters, digits and inner hyphens")
    return value


def _check_password(value: str | None) -> str | None:
    if value is not None and not 1 <= len(value) <= 1024:
        raise ValueError("must be 1 to 1024 characters")
    return value


class Tunnel(HostResource):
    """A port of a host served at ``public_url`` (``<server>/t/<slug>``) by the control plane.

    ``status`` (extension) is ``enabled`` or ``disabled``, the same fact as ``enabled``, so tunnels share
    the resource base and the status table with the other sections.
    """

    status: TunnelStatus = "enabled"
    slug: str
    target_port: int
    auth_mode: TunnelAuthMode
    public_url: str
    enabled: bool
    # Extension (docs/api.md): requests served in the last minute.
    requests_per_minute: int = 0

    @model_validator(mode="before")
    @classmethod
    def _status_from_enabled(cls, data: Any) -> Any:
        """A server that sends no ``status`` (the reference's shape): it follows ``enabled``."""
        if isinstance(data, dict) and "status" not in data and "enabled" in data:
            data = {**data, "status": "enabled" if data["enabled"] else "disabled"}
        return data


class TunnelCreate(RequestModel):
    """``POST /hosts/{id}/tunnels``; ``password`` (extension) is required with ``auth_mode: password``."""

    target_port: int = Field(ge=1, le=65535, strict=True)
    auth_mode: TunnelAuthMode = "public"
    slug: str | None = None
    password: str | None = None

    _slug = field_validator("slug")(_check_slug)
    _password = field_validator("password")(_check_password)


class TunnelUpdate(RequestModel):
    """``PATCH /hosts/{id}/tunnels/{tunnel_id}``: the fields given change (``password``: extension)."""

    target_port: int | None = Field(default=None, ge=1, le=65535, strict=True)
    auth_mode: TunnelAuthMode | None = None
    enabled: bool | None = None
    password: str | None = None

    _password = field_validator("password")(_check_password)


class TunnelRequest(ApiModel):
    """One request through a tunnel, as the inspector kept it (extension, docs/api.md): credentials
    masked, the first 10 KiB of each body as text."""

    id: int
    tunnel_id: str
    method: str
    target: str
    client: str
    started_at: datetime
    status: int | None = None
    first_byte_ms: float | None = None
    duration_ms: float | None = None
    complete: bool = False
    error: str | None = None
    replay_of: int | None = None
    request_headers: list[tuple[str, str]] = Field(default_factory=list)
    response_headers: list[tuple[str, str]] = Field(default_factory=list)
    request_bytes: int = 0
    response_bytes: int = 0
    request_body: str = ""
    response_body: str = ""
    request_body_truncated: bool = False
    response_body_truncated: bool = False


class TunnelEvent(StreamEvent):
    """One event of a tunnel's inspector stream: ``request`` with a :class:`TunnelRequest` in ``data``
    (sent when the app's answer starts and again when it ends; the newer one replaces the record)."""

    OWNER: ClassVar[str] = "tunnel"
    tunnel_id: str

    @property
    def request(self) -> TunnelRequest:
        """The record the event carries."""
        return TunnelRequest.model_validate(self.data)


# --- AI agents ---------------------------------------------------------------------------------------

SessionStatus = Literal["pending", "running", "completed", "failed", "cancelled"]


class AgentSession(ApiModel):
    """An AI agent session on a host: the reference's fields, the ones MIOSA's Python SDK reads
    (``session_id``, ``model``, ``tools``, ``started_at``, ``ended_at``, ``result_summary``) and ours
    (docs/api.md "AI agents"): ``approval`` (run_command and write_file wait for the operator),
    ``pending_approval`` (the call waiting now: ``{call_id, name, arguments}``), ``tokens_used``."""

    id: str
    host_id: str
    task: str
    status: SessionStatus
    max_turns: int
    turns_used: int = 0
    model_id: str | None = None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    error: str | None = None
    session_id: str | None = None
    model: str | None = None
    tools: list[str] = Field(default_factory=list)
    context: dict[str, Any] = Field(default_factory=dict)
    budget: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    result_summary: str | None = None
    approval: bool = False
    pending_approval: dict[str, Any] | None = None
    tokens_used: int = 0

    @field_validator("status", mode="before")
    @classmethod
    def _hosted_status(cls, value: Any) -> Any:
        """MIOSA's hosted API may say ``succeeded`` and ``canceled``: read as the reference's words."""
        return {"succeeded": "completed", "canceled": "cancelled"}.get(value, value)


AgentTool = Literal["run_command", "read_file", "write_file", "edit_file", "list_dir"]
AGENT_TOOLS: tuple[str, ...] = get_args(AgentTool)
"""The tools an AI agent session has on its host (``tools`` of a dispatch picks among them)."""
APPROVED_TOOLS = ("run_command", "write_file")
"""The tools that wait for the operator in approval mode."""


class AgentDispatch(RequestModel):
    """``POST /hosts/{id}/agent/dispatch``: the reference's fields, the extra ones MIOSA's Python SDK
    may send (``model`` = ``model_id``; ``tools`` narrows the tools; ``budget`` ``{max_tokens,
    timeout_ms}`` bounds the session; the runtime-profile fields are accepted and ignored) and ours
    (``approval``)."""

    task: str = Field(min_length=1, max_length=20000)
    model_id: str | None = Field(default=None, max_length=200)
    model: str | None = Field(default=None, max_length=200)
    max_turns: int = Field(default=20, ge=1, le=500)
    context: dict[str, Any] | None = None
    tools: list[AgentTool] | None = None
    budget: dict[str, Any] | None = None
    approval: bool = False
    agent_runtime_profile_id: str | None = None
    agent_profile_id: str | None = None
    skip_agent_runtime_profile: bool | None = None


class AgentDecision(RequestModel):
    """``POST …/agent/sessions/{sid}/approval`` (ours): the operator's answer to the call waiting for
    approval: ``approve`` (with ``arguments`` edited, optionally) or ``deny`` with a ``reason`` the
    model sees."""

    call_id: str = Field(min_length=1, max_length=200)
    decision: Literal["approve", "deny"]
    reason: str | None = Field(default=None, max_length=4000)
    arguments: dict[str, Any] | None = None


class AgentConfig(RequestModel):
    """``PUT /agent/config`` (ours): where the tenant's sessions get their model."""

    base_url: str = Field(max_length=2000)
    model: str = Field(max_length=200)
    api_key_secret: str = Field(default="", max_length=200)
    streaming: bool = True


class AgentEvent(StreamEvent):
    """One event of a session's stream: ``status``, ``turn_started``, ``assistant_message``,
    ``tool_call``, ``approval_required``, ``approval_decided``, ``tool_result``, ``final_answer``,
    ``error`` (docs/api.md "AI agents"); the last is always a ``status`` with a final status."""

    OWNER: ClassVar[str] = "session"
    session_id: str

    @property
    def final(self) -> bool:
        """Whether this event ends the session's stream."""
        return self.type == "status" and self.data.get("status") in ("completed", "failed", "cancelled")


# --- inference clusters ------------------------------------------------------------------------------

ClusterStatus = Literal["provisioning", "active", "stopped", "error", "destroyed"]


EngineKind = Literal["ollama", "openai"]
"""The LLM engine a cluster routes to on each host: Ollama, or any OpenAI-compatible server (llama.cpp's
``llama-server``, vLLM …)."""
ENGINE_PORTS: dict[str, int] = {"ollama": 11434, "openai": 8080}
"""Where each engine kind listens on a host by default."""
HostHealth = Literal["ready", "not_ready", "no_model", "pulling", "unreachable", "offline", "unknown"]
"""A cluster host's engine as the router sees it; only ``ready`` hosts are sent requests."""


class ClusterEngine(ApiModel):
    """Ours: the engine a cluster routes to on its hosts (``port`` on 127.0.0.1 of each host)."""

    kind: EngineKind = "ollama"
    port: int = Field(default=0, ge=0, le=65535)  # 0: the kind's default port


class PullProgress(ApiModel):
    """Ours: an Ollama pull of the cluster's model on one host (bytes)."""

    status: str = ""
    completed: int = 0
    total: int = 0


class ClusterHost(ApiModel):
    """Ours: one host of a cluster as the router sees it, with its counters (extension)."""

    host_id: str
    name: str = ""
    port: int = 0
    health: HostHealth = "unknown"
    detail: str = ""  # why it is not ready, in the engine's or agent's words (untrusted text)
    models: list[str] = Field(default_factory=list)  # what the engine serves (untrusted text)
    pull: PullProgress | None = None
    in_flight: int = 0
    completed: int = 0
    errors: int = 0
    tokens_per_s: float = 0.0  # of the last answer (usage fields, else counted stream chunks)
    ttft_ms: float = 0.0  # time to the first byte of the last answer
    tokens_per_s_history: list[float] = Field(default_factory=list)  # oldest first, last 30 answers
    ttft_ms_history: list[float] = Field(default_factory=list)


class Cluster(ApiModel):
    id: str
    name: str
    model: str
    slug: str
    status: ClusterStatus
    host_ids: list[str]
    inference_url: str
    created_at: datetime
    updated_at: datetime
    engine: ClusterEngine | None = None  # ours
    hosts: list[ClusterHost] = Field(default_factory=list)  # ours: per-host health and counters
    status_reason: str | None = None  # ours: why the cluster is in ``error``


class ClusterCreate(RequestModel):
    name: str = Field(min_length=1, max_length=64)
    model: str = Field(min_length=1, max_length=200)
    host_ids: list[str] = Field(min_length=1, max_length=64)
    engine: ClusterEngine | None = None  # ours; default: Ollama on 11434
    host_ports: dict[str, int] | None = None  # ours: a host's engine on another port than the cluster's


class ClusterEvent(StreamEvent):
    """One event of ``GET /clusters/{id}/events``: ``status_change`` ``{status}``, ``host_health``
    ``{host_id, health, detail}``, ``pull_progress`` ``{host_id, status, completed, total}``."""

    OWNER: ClassVar[str] = "cluster"
    cluster_id: str


class DetectedEngine(ApiModel):
    """Ours: an LLM engine found listening on a host (``GET /hosts/{id}/engines``)."""

    kind: EngineKind
    port: int
    ready: bool
    models: list[str] = Field(default_factory=list)


# --- secrets -----------------------------------------------------------------------------------------


MAX_SECRET_VALUE = 64 * 1024  # bytes of UTF-8
MAX_SECRET_DESCRIPTION = 1024


class Secret(ApiModel):
    """A tenant secret (``host_id`` None) or a host secret; the value is never part of it."""

    id: str
    name: str
    description: str | None = None
    host_id: str | None = None
    tenant_id: str
    created_at: datetime
    updated_at: datetime


def _check_secret_value(value: str | None) -> str | None:
    """A value is sent to a job as an environment variable: not empty, no NUL, at most 64 KiB. The
    messages never repeat the value."""
    if value is None:
        return None
    if not value:
        raise ValueError("must not be empty")
    if "\0" in value:
        raise ValueError("must not contain a NUL character")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_SECRET_VALUE:
        raise ValueError(f"must be at most {MAX_SECRET_VALUE} bytes (UTF-8)")
    return value


def _check_secret_description(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_SECRET_DESCRIPTION:
        raise ValueError(f"must be at most {MAX_SECRET_DESCRIPTION} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


SecretValue = Annotated[str, StringConstraints(strip_whitespace=False)]
"""A secret's value is kept exactly as sent (request models strip other strings)."""


class SecretCreate(RequestModel):
    """``POST /secrets`` and ``POST /hosts/{id}/secrets``: ``name`` (an environment variable name,
    unique in its scope), ``value`` (1 byte to 64 KiB, kept exactly), ``description``."""

    name: str
    value: SecretValue
    description: str | None = None

    _name = field_validator("name")(_check_secret_name)
    _value = field_validator("value")(_check_secret_value)
    _description = field_validator("description")(_check_secret_description)


class SecretUpdate(RequestModel):
    """``PATCH`` of a secret: a new ``value`` and/or ``description`` (``null`` clears the description)."""

    value: SecretValue | None = None
    description: str | None = None

    _value = field_validator("value")(_check_secret_value)
    _description = field_validator("description")(_check_secret_description)


# --- errors ------------------------------------------------------------------------------------------


class ErrorDetail(ApiModel):
    code: str
    message: str


class ErrorBody(ApiModel):
    error: ErrorDetail
