"""The typed async client of the OpenComputers API: one method per endpoint.

It speaks to MIOSA's hosted control plane and to our embedded server alike: give it the server root
(``https://api.miosa.ai`` or ``http://127.0.0.1:8787``) and a bearer token. Every failure surfaces as an
:mod:`oc_tui.api.errors` exception: :class:`~errors.ConnectionFailed` when the server cannot be reached,
an :class:`~errors.ApiError` subclass when it answers with an error.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from . import errors, models, transfers
from .streams import (
    EventStream,
    FanOutOutputStream,
    JobOutputStream,
    StateCallback,
    decode_body,
    describe_transport_error,
    job_output_bytes,
)
from .terminal import TerminalSession

if TYPE_CHECKING:
    from .desktop import DesktopSession

__all__ = ["API_PREFIX", "OpenComputersClient", "job_output_bytes", "server_root"]

API_PREFIX = "/api/v1/opencomputers"

M = TypeVar("M", bound=pydantic.BaseModel)

READ_BYTES = 1024 * 1024
"""Bytes httpcore may take from the socket per read of a response (its own default: 64 KiB)."""


def _bigger_reads() -> None:
    """Let httpcore read responses up to :data:`READ_BYTES` at a time (a read still returns only what
    the socket has: at most 256 KiB, asyncio's own read size). At 64 KiB a GiB of job output or of a
    download is 16,384 reads, each through httpcore's and anyio's timeout and error layers: about 2 s
    of CPU per GiB in this client (bench/README.md). Process-wide, and only ever made bigger."""
    import httpcore  # httpx imports it when the client makes its transport: no import time added

    connection = httpcore.AsyncHTTP11Connection
    if getattr(connection, "READ_NUM_BYTES", READ_BYTES) < READ_BYTES:
        connection.READ_NUM_BYTES = READ_BYTES


def _user_agent() -> str:
    try:
        return f"oc-tui/{version('oc-tui')}"
    except PackageNotFoundError:
        return "oc-tui"


def server_root(base_url: str) -> str:
    """The server root of ``base_url``: no trailing slash and no API prefix (so it is never doubled).

    Args:
        base_url: ``https://api.miosa.ai``, ``http://127.0.0.1:8787/``, or either with ``/api/v1/opencomputers``.

    Returns:
        The root, e.g. ``https://api.miosa.ai``.
    """
    root = base_url.strip().rstrip("/")
    if root.endswith(API_PREFIX):
        root = root[: -len(API_PREFIX)]
    return root


def _segment(value: str) -> str:
    """One path segment, quoted so that an ID can never change which endpoint is called."""
    if value in ("", ".", "..", "events"):
        raise errors.InvalidIdError(400, errors.ErrorCode.INVALID_ID, f"{value!r} is not a valid ID")
    return quote(value, safe="")


class OpenComputersClient:
    """Async client of one control plane, for one tenant (the token's).

    Use it as an async context manager, or call :meth:`aclose` when done. Methods that return a
    stream (:meth:`host_events`, :meth:`job_events`, :meth:`job_output`, :meth:`agent_events`) open it on
    first iteration; close the stream too.

    Every request method may raise, besides the errors its own docstring names:

    - :class:`~errors.ConnectionFailed`: the control plane cannot be reached (refused, DNS, TLS) or did
      not answer within the client's ``timeout``;
    - :class:`~errors.UnauthorizedError` (401): no token, or one the server does not know;
    - :class:`~errors.ServerError` (5xx) and plain :class:`~errors.ApiError` for statuses the reference
      does not name;
    - :class:`~errors.OpenComputersError`: the answer is not the JSON the reference describes (a wrong
      ``base_url``, a proxy's page).

    IDs (``host_id``, ``job_id`` …) are quoted as one path segment each, so no string can name another
    endpoint; ``""``, ``.``, ``..`` and ``events`` raise :class:`~errors.InvalidIdError` before sending.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 15.0,
        stream_read_timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Make a client; nothing is connected until the first call.

        Args:
            base_url: the server root (``https://api.miosa.ai``, ``http://127.0.0.1:8787``); a trailing
                ``/api/v1/opencomputers`` is accepted and dropped.
            token: the bearer token (MIOSA API key or our server's token); None sends none.
            timeout: seconds to wait for each answer (connecting: at most 10 s).
            stream_read_timeout: seconds an event stream may stay silent before it counts as dropped and
                reconnects; our server sends a keep-alive every 15 s.
            transport: an httpx transport to use instead of the network (e.g. ``httpx.ASGITransport``).
        """
        self.base_url = server_root(base_url)
        """The server root, e.g. ``http://127.0.0.1:8787``."""
        self.api_url = self.base_url + API_PREFIX
        """The API base, ``base_url`` + ``/api/v1/opencomputers``."""
        headers = {"User-Agent": _user_agent(), "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._timeout = timeout
        self._stream_timeout = httpx.Timeout(timeout, read=stream_read_timeout)
        self._http = httpx.AsyncClient(
            base_url=self.api_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
        )
        _bigger_reads()

    async def __aenter__(self) -> Self:
        """Nothing to open: returns the client itself."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """:meth:`aclose` it."""
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection (streams still open stop with a transport error). Never raises."""
        await self._http.aclose()

    # --- plumbing ----------------------------------------------------------------------------------

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout):
                raise self._unreachable(exc) from exc
            raise errors.ConnectionFailed(
                f"control plane at {self.base_url} did not answer {method} {url} within {self._timeout:g} s"
            ) from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            raise errors.error_from_response(response.status_code, decode_body(response))
        return response

    def _unreachable(self, exc: httpx.TransportError) -> errors.ConnectionFailed:
        return errors.ConnectionFailed(
            f"control plane at {self.base_url} is unreachable: {describe_transport_error(exc)}"
        )

    async def _get_json(self, method: str, url: str, **kwargs: Any) -> Any:
        response = await self._request(method, url, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise errors.OpenComputersError(
                f"{method} {url} at {self.base_url} did not answer with JSON: is this an OpenComputers API?"
            ) from exc

    async def _call(self, model: type[M], method: str, url: str, **kwargs: Any) -> M:
        body = await self._get_json(method, url, **kwargs)
        try:
            return model.model_validate(body)
        except pydantic.ValidationError as exc:
            raise errors.OpenComputersError(
                f"unexpected answer to {method} {url} from {self.base_url}: {exc}"
            ) from exc

    # --- server ------------------------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        """``GET /healthz`` of the embedded server (no token needed; MIOSA's API has no such route).

        Returns:
            The health object, e.g. ``{"status": "ok", "version": …}``.

        Raises:
            NotFoundError: 404, a server without ``/healthz`` (the hosted API).
            OpenComputersError: the answer is not a JSON object.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        body = await self._get_json("GET", self.base_url + "/healthz")
        if not isinstance(body, dict):
            raise errors.OpenComputersError(f"{self.base_url}/healthz answered {body!r}")
        return body

    # --- hosts -------------------------------------------------------------------------------------

    async def list_hosts(self, page: int = 1, per_page: int = 20) -> models.Page[models.Host]:
        """One page of the tenant's hosts.

        Args:
            page: the page number, from 1.
            per_page: hosts per page, 1 to 100.

        Returns:
            The page: ``data`` and, from servers that send it, ``meta`` (``page``, ``per_page``, ``total``).

        Raises:
            ValidationError: 400, ``page`` or ``per_page`` out of range.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return await self._call(
            models.Page[models.Host], "GET", "/hosts", params={"page": page, "per_page": per_page}
        )

    async def iter_hosts(self, per_page: int = 100) -> AsyncIterator[models.Host]:
        """Every host, page by page, each once.

        Stops when ``meta`` says every host was seen; for a server without ``meta``, at an empty page or
        one shorter than those before it (a server may clamp ``per_page`` without saying so).

        Args:
            per_page: hosts asked for per request, 1 to 100.

        Yields:
            Each host, in the server's order.

        Raises:
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        seen: set[str] = set()
        page, longest = 1, 0
        while True:
            result = await self.list_hosts(page=page, per_page=per_page)
            fresh = [host for host in result.data if host.id not in seen]
            for host in fresh:
                seen.add(host.id)
                yield host
            if not fresh:  # the end, or a server that ignores ``page``
                return
            meta = result.meta
            if meta is not None and meta.page * meta.per_page >= meta.total:
                return
            if meta is None and len(result.data) < longest:
                return
            longest = max(longest, len(result.data))
            page += 1

    async def all_hosts(self) -> list[models.Host]:
        """Every host of the tenant, in the server's order (:meth:`iter_hosts` into a list).

        Raises:
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return [host async for host in self.iter_hosts()]

    async def register_host(
        self, name: str, region: str | None = None, labels: dict[str, str] | None = None
    ) -> models.HostRegistration:
        """Register a host (201).

        Args:
            name: its display name.
            region: a free-form region, or None.
            labels: ``key: value`` labels, or None.

        Returns:
            The registration: the host with its ``host_key``, shown this one time only.

        Raises:
            ValidationError: 400, a bad name, region or label.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        body: dict[str, Any] = {"name": name}
        if region is not None:
            body["region"] = region
        if labels is not None:
            body["labels"] = labels
        return await self._call(models.HostRegistration, "POST", "/hosts", json=body)

    async def get_host(self, host_id: str) -> models.Host:
        """One host.

        Args:
            host_id: the host's ID (``host_…``).

        Returns:
            The host as the server has it now.

        Raises:
            InvalidIdError: 400, ``host_id`` is not a valid ID.
            NotFoundError: 404, no such host in this tenant.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return await self._call(models.Host, "GET", _host_path(host_id))

    async def update_host(
        self,
        host_id: str,
        *,
        name: str | None = None,
        region: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> models.Host:
        """``PATCH`` a host: only the fields given are sent.

        Args:
            host_id: the host's ID (``host_…``).
            name: a new display name, or None to keep it.
            region: a new region, or None to keep it.
            labels: the new labels; replaces the whole map (None keeps them).

        Returns:
            The updated host.

        Raises:
            ValidationError: 400, a bad field.
            InvalidIdError: 400, ``host_id`` is not a valid ID.
            NotFoundError: 404, no such host.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        body = {
            key: value
            for key, value in (("name", name), ("region", region), ("labels", labels))
            if value is not None
        }
        return await self._call(models.Host, "PATCH", _host_path(host_id), json=body)

    async def revoke_host(self, host_id: str) -> None:
        """Revoke a host (``DELETE``, 204): its agent is disconnected and can never authenticate again.

        Args:
            host_id: the host's ID (``host_…``).

        Raises:
            InvalidIdError: 400, ``host_id`` is not a valid ID.
            NotFoundError: 404, no such host.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        await self._request("DELETE", _host_path(host_id))

    async def purge_host(self, host_id: str) -> None:
        """Delete a revoked host and everything kept about it (``DELETE ?purge=true``, 204; an
        extension of our server): it leaves the list for good.

        Args:
            host_id: the host's ID (``host_…``).

        Raises:
            ConflictError: 409, the host is not revoked (revoke it first).
            InvalidIdError: 400, ``host_id`` is not a valid ID.
            NotFoundError: 404, no such host (or purged already).
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        await self._request("DELETE", _host_path(host_id), params={"purge": "true"})

    async def host_sysinfo(self, host_id: str) -> models.HostSysInfo:
        """Live facts asked of the host's agent (an extension of our server).

        Args:
            host_id: the host's ID (``host_…``).

        Returns:
            host name, OS and release, architecture, CPU count, load averages, memory (bytes) and
            uptime (seconds) of the machine, and the agent's version.

        Raises:
            NotFoundError: 404, no such host (or a server without the extension).
            HostOfflineError: 409, the host is offline.
            AgentUnreachableError: 502, the agent did not answer.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return await self._call(models.HostSysInfo, "GET", _host_path(host_id, "sysinfo"))

    def host_events(
        self,
        host_id: str | None = None,
        *,
        last_event_id: str | None = None,
        reconnect: bool = True,
        on_state: StateCallback | None = None,
    ) -> EventStream[models.HostEvent]:
        """Live events of one host, or of the whole tenant when ``host_id`` is None.

        Args:
            host_id: the host, or None for every host of the tenant (``GET /hosts/events``).
            last_event_id: resume after this SSE id (a previous event's ``event_id``).
            reconnect: reconnect after a drop or a 5xx with backoff (True), or end/raise at the first one.
            on_state: hears every :class:`~streams.StreamState` change (connected, dropped and why).

        Returns:
            An :class:`~streams.EventStream` of :class:`~models.HostEvent`; close it with ``aclose()`` or
            ``async with``. Nothing is sent before the first iteration.

        Raises (when iterated):
            NotFoundError, ForbiddenError, BadRequestError, UnauthorizedError: at once, never retried.
            ConnectionFailed: the server cannot be reached and ``reconnect`` is False.
        """
        path = "/hosts/events" if host_id is None else f"{_host_path(host_id)}/events"
        return self._stream(
            path, models.HostEvent, last_event_id=last_event_id, reconnect=reconnect, on_state=on_state
        )

    def _stream(self, path: str, model: type[M], **options: Any) -> EventStream[M]:
        return EventStream(self._http, self.api_url + path, model, timeout=self._stream_timeout, **options)

    # --- jobs --------------------------------------------------------------------------------------

    async def run_job(
        self,
        host_id: str,
        command: str,
        *,
        args: list[str] | None = None,
        env: list[str] | None = None,
        cwd: str | None = None,
        timeout: int | None = None,
        wait: float | None = None,
        secrets: list[str] | None = None,
    ) -> models.Job:
        """Start a job on the host (``POST …/exec``) and return it as the server has it then.

        With ``args`` the program runs without a shell (``[command, *args]``); without, ``command`` runs
        through the host's shell.

        Args:
            host_id: the host's ID (``host_…``).
            command: the command line (or, with ``args``, the program).
            args: the program's arguments; None runs ``command`` through the shell.
            env: extra environment, items ``KEY=VALUE``.
            cwd: the working directory on the host (default: the agent user's home).
            timeout: seconds the job may run before it is killed (server default 60).
            wait: seconds, at most 300: the server answers only when the job has ended or the wait ran out
                (an extension: a server without it answers at once, still correct).
            secrets: names of tenant or host secrets the job gets as environment variables (an
                extension; their values are masked as ``***`` in its output).

        Returns:
            The job: ``queued``/``running``, or ended with its output when ``wait`` covered it.

        Raises:
            ValidationError: 400, a bad field (``env`` not ``KEY=VALUE``, ``timeout`` out of range,
                an unknown secret name).
            NotFoundError: 404, no such host.
            HostOfflineError: 409, the host is offline.
            AgentUnreachableError: 502, the agent did not take the job (it is recorded as failed).
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        body = _fields(command=command, args=args, env=env, cwd=cwd, timeout=timeout, secrets=secrets or None)
        params = {"wait": f"{wait:g}"} if wait is not None else None
        # the HTTP read must outlast the server's wait
        read = self._timeout + (wait or 0)
        return await self._call(
            models.Job,
            "POST",
            _host_path(host_id, "exec"),
            json=body,
            params=params,
            timeout=httpx.Timeout(read, connect=min(self._timeout, 10.0)),
        )

    async def list_jobs(self, host_id: str, page: int = 1, per_page: int = 20) -> models.Page[models.Job]:
        """One page of the host's jobs, newest first.

        Args:
            host_id: the host's ID (``host_…``).
            page: the page number, from 1.
            per_page: jobs per page, 1 to 100.

        Returns:
            The page of jobs (each with its output as text).

        Raises:
            NotFoundError: 404, no such host.
            ValidationError: 400, ``page`` or ``per_page`` out of range.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return await self._call(
            models.Page[models.Job],
            "GET",
            _host_path(host_id, "exec"),
            params={"page": page, "per_page": per_page},
        )

    async def get_job(self, host_id: str, job_id: str) -> models.Job:
        """The job with its ``stdout``/``stderr`` as text (the exact bytes are in :meth:`job_output`).

        Args:
            host_id: the host's ID (``host_…``).
            job_id: the job's ID (``job_…``).

        Returns:
            The job as the server has it now.

        Raises:
            InvalidIdError: 400, a malformed ID.
            NotFoundError: 404, no such host or job.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return await self._call(models.Job, "GET", _host_path(host_id, "exec", job_id))

    async def cancel_job(self, host_id: str, job_id: str) -> None:
        """Kill the job's whole process tree (``DELETE``, 204). Cancelling a finished job changes nothing.

        Args:
            host_id: the host's ID (``host_…``).
            job_id: the job's ID.

        Raises:
            NotFoundError: 404, no such host or job.
            HostOfflineError: 409, the job runs on a host that is offline.
            AgentUnreachableError: 502, the agent did not answer.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        await self._request("DELETE", _host_path(host_id, "exec", job_id))

    def job_events(
        self,
        host_id: str,
        job_id: str,
        *,
        last_event_id: str | None = None,
        reconnect: bool = True,
        on_state: StateCallback | None = None,
    ) -> EventStream[models.JobEvent]:
        """A job's raw output events from its start, then live; ends after the ``exit`` event (or ``[DONE]``).

        ``stdout``/``stderr`` events carry ``{"text"}`` or ``{"b64"}`` from an SSE stream, ``{"bytes"}``
        from our server, which sends this client binary frames (:mod:`~oc_tui.api.frames`;
        :func:`job_output_bytes` gives the bytes of any of them); ``truncated`` says the server stopped storing output; ``exit`` carries ``status``,
        ``exit_code`` and ``error``. A dropped connection resumes with ``Last-Event-ID``: nothing is
        lost and nothing arrives twice. Most callers want :meth:`job_output`, which decodes them.

        Args:
            host_id: the host's ID (``host_…``).
            job_id: the job's ID.
            last_event_id: resume after this SSE id (a previous event's ``event_id``).
            reconnect: reconnect after a drop or a 5xx with backoff (True), or end/raise at the first one.
            on_state: hears every :class:`~streams.StreamState` change (connected, dropped and why).

        Returns:
            An :class:`~streams.EventStream` of :class:`~models.JobEvent` (close it, or use ``async with``).

        Raises (when iterated):
            NotFoundError: 404, no such host or job (at once, never retried).
            InvalidIdError: 400, a malformed ID.
            ConnectionFailed: the server cannot be reached and ``reconnect`` is False.
        """
        return self._stream(
            _host_path(host_id, "exec", job_id, "stream"),
            models.JobEvent,
            last_event_id=last_event_id,
            reconnect=reconnect,
            on_state=on_state,
            final=lambda event: event.type == "exit",
            output=lambda stream, data: models.JobEvent.model_construct(
                type="stderr" if stream == 2 else "stdout",
                job_id=job_id,
                data={"bytes": data},
                timestamp=models.utcnow(),
            ),
        )

    def job_output(
        self,
        host_id: str,
        job_id: str,
        *,
        last_event_id: str | None = None,
        reconnect: bool = True,
        on_state: StateCallback | None = None,
    ) -> JobOutputStream:
        """A job's output, decoded: the one call a UI or a script needs to follow a job.

        ``async with client.job_output(host_id, job_id) as output: async for item in output`` gives
        :class:`~streams.OutputChunk` (``stream`` ``"stdout"``/``"stderr"``, ``data`` bytes, binary-exact),
        at most one :class:`~streams.OutputTruncated` (``limit`` in bytes) and a :class:`~streams.JobExit`
        (``status``, ``exit_code``, ``error``, ``timestamp``) last; then the iteration stops. From the job's
        start, then live; a dropped connection resumes where it stopped.

        Args:
            host_id: the host's ID (``host_…``).
            job_id: the job's ID.
            last_event_id: resume after this SSE id (a previous event's ``event_id``).
            reconnect: reconnect after a drop or a 5xx with backoff (True), or end/raise at the first one.
            on_state: hears every :class:`~streams.StreamState` change (connected, dropped and why).

        Returns:
            A :class:`~streams.JobOutputStream`; ``last_event_id`` on it says where to resume later.

        Raises (when iterated):
            NotFoundError: 404, no such host or job (at once, never retried).
            InvalidIdError: 400, a malformed ID.
            ConnectionFailed: the server cannot be reached and ``reconnect`` is False.
        """
        return JobOutputStream(
            self.job_events(
                host_id, job_id, last_event_id=last_event_id, reconnect=reconnect, on_state=on_state
            )
        )

    async def token_read_only(self) -> bool:
        """Whether the server says this token may only read (``GET /token``, an oc-server extension;
        False from a server without it).

        Raises:
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        try:
            body = await self._get_json("GET", "/token")
        except errors.NotFoundError:
            return False
        return isinstance(body, dict) and body.get("read_only") is True

    # --- host groups and fan-outs -----------------------------------------------------------------

    async def list_groups(self) -> list[models.Group]:
        """The tenant's host groups (``GET /groups``), each with its ``member_count``.

        Raises:
            NotFoundError: 404, a server without groups.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        body = await self._get_json("GET", "/groups")
        groups = body.get("groups") if isinstance(body, dict) else None
        return [models.Group.model_validate(item) for item in groups or []]

    async def get_group(self, group_id: str) -> tuple[models.Group, list[dict[str, Any]]]:
        """A group and its members resolved now (``GET /groups/{id}``): each member ``{id, name, state,
        tags, labels …}``.

        Raises:
            NotFoundError: 404, no such group.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        body = await self._get_json("GET", "/groups/" + _segment(group_id))
        return models.Group.model_validate(body["group"]), list(body.get("members") or [])

    async def create_group(
        self,
        name: str,
        *,
        host_ids: list[str] | None = None,
        tag_query: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> models.Group:
        """Create a group: ``tag_query`` makes a ``tag_query`` group (``{"and"|"or": [tags]}``, evaluated
        when used), else an ``explicit`` one with ``host_ids``.

        Raises:
            ValidationError: 400, a bad name or query.
            ConflictError: 409, the name is taken.
            NotFoundError: 404, a host that is not the tenant's.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        kind = "tag_query" if tag_query is not None else "explicit"
        body = _fields(name=name, kind=kind, tag_query=tag_query, host_ids=host_ids, description=description)
        answer = await self._get_json("POST", "/groups", json=body)
        return models.Group.model_validate(answer["group"])

    async def delete_group(self, group_id: str) -> None:
        """Delete a group (its hosts stay).

        Raises:
            NotFoundError: 404, no such group.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        await self._request("DELETE", "/groups/" + _segment(group_id))

    async def start_fanout(
        self,
        command: str,
        *,
        host_ids: list[str] | None = None,
        tag_query: dict[str, Any] | None = None,
        group_id: str | None = None,
        batch_size: int | None = None,
        stop_on_failure: bool = False,
        timeout: int | None = None,
    ) -> models.FanOut:
        """Run ``command`` on many hosts in one request (``POST /fanouts``, an oc-server extension):
        the hosts named by one of ``host_ids``, ``tag_query``, ``group_id``.

        Args:
            command: the command line, run through each host's shell.
            batch_size: at most this many jobs at once (None: all at once).
            stop_on_failure: the first member that fails stops the ones not started yet.
            timeout: seconds each job may run (server default 60).

        Returns:
            The fan-out record: ``fan_out`` has each member's job, or why it did not run.

        Raises:
            NotFoundError: 404, a server without fan-outs (use :meth:`run_job` per host), or a host or
                group that is not the tenant's.
            ValidationError: 400, a bad field.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        body = _fields(
            command=command,
            host_ids=host_ids,
            tag_query=tag_query,
            group_id=group_id,
            batch_size=batch_size,
            timeout=timeout,
        )
        if stop_on_failure:
            body["stop_on_failure"] = True
        # A pooled connection the server closed while idle fails the POST before any answer; sent again
        # with the same Idempotency-Key, the fan-out cannot start twice.
        headers = {"Idempotency-Key": "fo-" + secrets.token_hex(16)}
        try:
            return await self._call(models.FanOut, "POST", "/fanouts", json=body, headers=headers)
        except errors.ConnectionFailed as exc:
            if not isinstance(exc.__cause__, (httpx.ReadError, httpx.RemoteProtocolError)):
                raise
        return await self._call(models.FanOut, "POST", "/fanouts", json=body, headers=headers)

    async def get_fanout(self, fanout_id: str) -> models.FanOut:
        """A fan-out's record as the server has it now.

        Raises:
            NotFoundError: 404, no such fan-out.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return await self._call(models.FanOut, "GET", "/fanouts/" + _segment(fanout_id))

    async def cancel_fanout(self, fanout_id: str) -> models.FanOut:
        """Cancel all: members not started are skipped, running jobs cancelled; returns the record.

        Raises:
            NotFoundError: 404, no such fan-out.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return await self._call(models.FanOut, "DELETE", "/fanouts/" + _segment(fanout_id))

    def fanout_output(self, fanout_id: str, *, on_state: StateCallback | None = None) -> FanOutOutputStream:
        """Every member's output and end as one stream of ``(host_id, item)``: ``async with
        client.fanout_output(id) as output: async for host_id, item in output``; a
        :class:`~streams.FanOutEnd` ends it. A dropped connection is read again, nothing delivered twice.

        Raises (when iterated):
            NotFoundError: 404, no such fan-out.
        """
        events = self._stream(
            "/fanouts/" + _segment(fanout_id) + "/stream",
            models.FanOutEvent,
            on_state=on_state,
            final=lambda event: event.type == "fanout_end",
        )
        return FanOutOutputStream(events)

    # --- file system -------------------------------------------------------------------------------

    async def list_dir(self, host_id: str, path: str = "") -> models.FsList:
        """A directory's entries, sorted by name.

        The answer is parsed in a worker thread: 20,000 entries take ~0.2 s to validate, too long to
        hold up a UI's event loop.

        Args:
            host_id: the host's ID (``host_…``).
            path: ``""`` is the agent user's home, ``~`` expands, and a relative path is relative to the home.

        Returns:
            The listing; its ``path`` is absolute and resolved, ``truncated`` is set when the server left
            entries out.

        Raises:
            BadRequestError: 400 NOT_A_DIRECTORY, ``path`` is not a directory.
            NotFoundError: 404, no such host, or no such path on it.
            ForbiddenError: 403, the agent's user may not do this (permission denied).
            HostOfflineError: 409, the host is offline.
            AgentUnreachableError: 502, the agent did not answer.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        url = _host_path(host_id, "fs", "list")
        response = await self._request("GET", url, params=_fs(path))
        try:
            return await asyncio.to_thread(validate_json, models.FsList, response.content)
        except pydantic.ValidationError as exc:
            raise errors.OpenComputersError(
                f"unexpected answer to GET {url} from {self.base_url}: {exc}"
            ) from exc

    async def stat(self, host_id: str, path: str) -> models.FsStat:
        """Stat ``path`` without following a final symlink.

        Args:
            host_id: the host's ID (``host_…``).
            path: the path on the host (as in :meth:`list_dir`).

        Returns:
            Its size (bytes), times, ``mode`` and ``is_symlink``/``symlink_target``.

        Raises:
            NotFoundError: 404, no such host, or no such path on it.
            ForbiddenError: 403, the agent's user may not do this (permission denied).
            HostOfflineError: 409, the host is offline.
            AgentUnreachableError: 502, the agent did not answer.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return await self._call(models.FsStat, "GET", _host_path(host_id, "fs", "stat"), params=_fs(path))

    async def mkdir(self, host_id: str, path: str, parents: bool = True) -> models.FsStat | None:
        """Create a directory.

        Args:
            host_id: the host's ID (``host_…``).
            path: the directory to create.
            parents: also create missing parent directories (True), or fail when one is missing.

        Returns:
            Its stat (our server's 201), or None from a server that answers without one (the reference
            does not say what the answer holds).

        Raises:
            ConflictError: 409 ALREADY_EXISTS, ``path`` exists.
            NotFoundError: 404, no such host, or no such path on it.
            ForbiddenError: 403, the agent's user may not do this (permission denied).
            HostOfflineError: 409, the host is offline.
            AgentUnreachableError: 502, the agent did not answer.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        body: dict[str, Any] = {"path": path} if parents else {"path": path, "parents": False}
        response = await self._request("POST", _host_path(host_id, "fs", "mkdir"), json=body)
        return _stat_or_none(response)

    async def delete_path(self, host_id: str, path: str, recursive: bool = False) -> None:
        """Delete a file, a symlink (never followed) or a directory.

        Args:
            host_id: the host's ID (``host_…``).
            path: what to delete.
            recursive: also delete a non-empty directory with everything in it.

        Raises:
            ConflictError: 409 DIRECTORY_NOT_EMPTY, a non-empty directory without ``recursive``.
            NotFoundError: 404, no such host, or no such path on it.
            ForbiddenError: 403, the agent's user may not do this (permission denied).
            HostOfflineError: 409, the host is offline.
            AgentUnreachableError: 502, the agent did not answer.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        params = _fs(path, recursive="true" if recursive else None)
        await self._request("DELETE", _host_path(host_id, "fs", "delete"), params=params)

    async def download(self, host_id: str, path: str, *, offset: int = 0, length: int | None = None) -> bytes:
        """A small file's bytes, whole or a range of it, held in memory. Big files: :meth:`download_to`.

        Args:
            host_id: the host's ID (``host_…``).
            path: the file.
            offset: the first byte to get (a Range request when not 0).
            length: how many bytes from ``offset`` (a ``length`` past the end gives what there is); None: to
                the end.

        Returns:
            The bytes.

        Raises:
            ValueError: a negative ``offset`` or a ``length`` below 1 (nothing is sent).
            RangeNotSatisfiableError: 416, ``offset`` is at or past the end of the file.
            BadRequestError: 400 IS_A_DIRECTORY, ``path`` is a directory.
            NotFoundError: 404, no such host, or no such path on it.
            ForbiddenError: 403, the agent's user may not do this (permission denied).
            HostOfflineError: 409, the host is offline.
            AgentUnreachableError: 502, the agent did not answer.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        headers = _range(offset, length)
        response = await self._request(
            "GET", _host_path(host_id, "fs", "download"), params=_fs(path), headers=headers
        )
        return response.content

    @asynccontextmanager
    async def download_stream(
        self,
        host_id: str,
        path: str,
        *,
        offset: int = 0,
        length: int | None = None,
        if_range: str | None = None,
    ) -> AsyncIterator[transfers.DownloadStream]:
        """``async with client.download_stream(h, p) as stream: async for chunk in stream``.

        ``stream.size`` is the whole file's size in bytes and ``stream.offset`` where this answer starts (0
        when the server ignored the Range, or sent the whole file because ``if_range`` names another
        version). Leaving the block early closes the connection.

        Args:
            host_id: the host's ID (``host_…``).
            path: the file.
            offset: the first byte wanted.
            length: bytes wanted from ``offset``; None: to the end.
            if_range: an ETag or a Last-Modified date: the range is only for that version of the file.

        Yields:
            One :class:`~transfers.DownloadStream` of chunks as they were read (at most 1 MiB each).

        Raises:
            ValueError: a negative ``offset`` or a ``length`` below 1.
            RangeNotSatisfiableError: 416, ``offset`` is at or past the end of the file.
            ConnectionFailed: also when the body stalls or breaks while it is read.
            NotFoundError: 404, no such host, or no such path on it.
            ForbiddenError: 403, the agent's user may not do this (permission denied).
            HostOfflineError: 409, the host is offline.
            AgentUnreachableError: 502, the agent did not answer.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        url = _host_path(host_id, "fs", "download")
        headers = _range(offset, length)
        if if_range and headers:
            headers["If-Range"] = if_range
        request = self._http.build_request(
            "GET", url, params=_fs(path), headers=headers, timeout=self._stream_timeout
        )
        with self._transport_errors("GET", url):
            response = await self._http.send(request, stream=True)
        try:
            if response.status_code >= 400:
                with self._transport_errors("GET", url):
                    await response.aread()
                raise errors.error_from_response(response.status_code, decode_body(response))

            async def chunks() -> AsyncIterator[bytes]:
                with self._transport_errors("GET", url):
                    async for chunk in response.aiter_bytes():  # as read: no copy to re-chunk them
                        yield chunk

            yield transfers.DownloadStream.from_headers(response.status_code, response.headers, chunks())
        finally:
            await response.aclose()

    async def download_to(
        self,
        host_id: str,
        path: str,
        dest: str | os.PathLike[str],
        *,
        resume: bool = False,
        progress: transfers.Progress | None = None,
    ) -> int:
        """Stream a remote file to a local one.

        Bytes go to ``dest.part``, renamed over ``dest`` when complete, so ``dest`` never holds half a
        file. Cancelling (the task) stops at once and deletes the ``.part``; a failure keeps it for a later
        ``resume``.

        Args:
            host_id: the host's ID (``host_…``).
            path: the remote file.
            dest: the local file, or a directory (the file keeps its name there).
            resume: continue an existing ``.part`` with a Range request (the whole file comes again if it
                has changed since the ``.part`` was written; a change during this transfer raises).
            progress: called as ``progress(done, total)`` in bytes as the file arrives.

        Returns:
            The file's size, in bytes.

        Raises:
            OSError: the local file cannot be written.
            SourceChangedError: the remote file changed while it was read (rewritten, grown, shrunk or
                replaced); the torn ``.part`` is deleted and ``dest`` left as it was.
            ConnectionFailed: also when the body ends before the announced size.
            NotFoundError: 404, no such host, or no such path on it.
            ForbiddenError: 403, the agent's user may not do this (permission denied).
            HostOfflineError: 409, the host is offline.
            AgentUnreachableError: 502, the agent did not answer.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        target = Path(dest).expanduser()
        if await asyncio.to_thread(target.is_dir):
            target = target / transfers.upload_name(path)
        part = transfers.part_path(target)
        offset = await asyncio.to_thread(transfers.existing_size, part) if resume else 0
        try:
            try:
                size = await self._download_part(host_id, path, part, offset, progress)
            except errors.RangeNotSatisfiableError:
                if offset == 0:
                    raise
                remote = await self.stat(host_id, path)
                version = await asyncio.to_thread(transfers.part_version, part)
                if remote.size == offset and version == transfers.http_date(remote.modified_at):
                    size = offset  # the .part was complete
                    if progress is not None:
                        progress(size, size)
                else:  # longer than the file, or of another version of it: start again
                    size = await self._download_part(host_id, path, part, 0, progress)
        except asyncio.CancelledError:
            await asyncio.to_thread(part.unlink, missing_ok=True)
            raise
        await asyncio.to_thread(os.replace, part, target)
        return size

    async def _download_part(
        self, host_id: str, path: str, part: Path, offset: int, progress: transfers.Progress | None
    ) -> int:
        """Write the remote file from ``offset`` into ``part``; returns the file's size.

        The ``.part`` keeps the remote file's modification time, so a resume can ask (``If-Range``)
        for the rest of that very version, and gets the whole file again if it has changed since."""
        version = await asyncio.to_thread(transfers.part_version, part) if offset else None
        async with self.download_stream(host_id, path, offset=offset, if_range=version) as stream:
            writer = await asyncio.to_thread(transfers.open_part, part, stream.offset)
            try:
                done = await transfers.write_chunks(stream, writer, stream.offset, stream.size, progress)
            except errors.ConnectionFailed:
                done = -1
            finally:
                await asyncio.to_thread(transfers.close_part, writer, part, stream.last_modified)
        if done < 0 or (stream.size is not None and done != stream.size):
            # The body was cut: the agent stops a download whose file changed while it was read
            # (SOURCE_CHANGED) before its last bytes. A new ETag says that is what happened.
            if await self._changed_since(host_id, path, stream.etag):
                await asyncio.to_thread(part.unlink, missing_ok=True)  # a torn copy: nothing to resume
                raise errors.SourceChangedError(
                    f"{path} changed while it was downloaded; nothing was saved (download it again)"
                )
            where = "" if done < 0 else f" at {done} of {stream.size} bytes"
            raise errors.ConnectionFailed(f"the download of {path} ended{where}")
        return done

    async def _changed_since(self, host_id: str, path: str, etag: str | None) -> bool:
        """True if ``path`` is no longer the version ``etag`` names (changed, or gone); False if it is
        the same, or its version cannot be asked for (the host is unreachable, no ETag was sent)."""
        if not etag:
            return False
        try:
            async with self.download_stream(host_id, path, length=1) as probe:
                return probe.etag != etag
        except (errors.NotFoundError, errors.RangeNotSatisfiableError):
            return True  # deleted, or now empty
        except errors.OpenComputersError:
            return False

    async def upload(
        self,
        host_id: str,
        path: str,
        source: transfers.UploadSource,
        *,
        size: int | None = None,
        progress: transfers.Progress | None = None,
        mkdir: bool = False,
    ) -> models.FsStat | None:
        """Write ``source`` to ``path`` on the host.

        The multipart body is streamed: a local file is read 1 MiB at a time, never held whole. With a
        known size (bytes, a file, or ``size=``) the request has a ``Content-Length``; a stream of
        unknown size goes chunked. The host writes a temporary file and renames it over ``path`` when
        complete, so cancelling (the task) or a broken connection leaves the old file (or none).

        Args:
            host_id: the host's ID (``host_…``).
            path: the remote file to write (replaced when it exists).
            source: bytes, a local file's path (``str`` or ``Path``), or an async stream of byte chunks.
            size: the source's size in bytes, when it cannot be known up front (a stream).
            progress: called as ``progress(done, total)`` in bytes as the body leaves.
            mkdir: create missing parent directories of ``path``.

        Returns:
            The written file's stat (None from a server that answers without one).

        Raises:
            SourceSizeMismatch: the source gave other than ``size`` bytes (a ``ValueError``).
            OSError: the local file cannot be read.
            PayloadTooLargeError: 413, over the server's limit.
            BadRequestError: 400 IS_A_DIRECTORY, ``path`` is a directory.
            ServerError: 507 NO_SPACE, the host's disk is full.
            NotFoundError: 404, no such host, or no such path on it.
            ForbiddenError: 403, the agent's user may not do this (permission denied).
            HostOfflineError: 409, the host is offline.
            AgentUnreachableError: 502, the agent did not answer.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        size = await asyncio.to_thread(transfers.source_size, source, size)
        body = transfers.MultipartUpload(path, source, size, progress)
        params = _fs(path, mkdir="true" if mkdir else None)
        response = await self._request(
            "POST",
            _host_path(host_id, "fs", "upload"),
            params=params,
            content=body,
            headers=body.headers(),
            # the answer comes once the host has the whole file: allow for a slow disk there
            timeout=httpx.Timeout(
                self._timeout, read=max(self._timeout, 120.0), connect=min(self._timeout, 10.0)
            ),
        )
        return _stat_or_none(response)

    @contextmanager
    def _transport_errors(self, method: str, url: str) -> Iterator[None]:
        """Transport failures of a streamed request as :class:`~errors.ConnectionFailed`."""
        try:
            yield
        except httpx.TimeoutException as exc:
            raise errors.ConnectionFailed(
                f"control plane at {self.base_url} stalled on {method} {url}: {describe_transport_error(exc)}"
            ) from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    # --- terminal and desktop ----------------------------------------------------------------------

    async def terminal_ticket(self, host_id: str) -> models.Ticket:
        """A short-lived, single-use ticket for a terminal session: connect to its ``ws_url`` at once.

        Args:
            host_id: the host's ID (``host_…``).

        Returns:
            ``ticket``, ``ws_url`` and ``expires_at``.

        Raises:
            NotFoundError: 404, no such host.
            HostOfflineError: 409, the host is offline.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return await self._call(models.Ticket, "POST", _host_path(host_id, "terminal", "ticket"))

    async def open_terminal(self, host_id: str, cols: int = 80, rows: int = 24) -> TerminalSession:
        """A login shell on the host's PTY. Use it as ``async with``.

        Args:
            host_id: the host's ID (``host_…``).
            cols: the terminal's width, in cells (1 to 1000).
            rows: the terminal's height, in cells (1 to 1000).

        Sent as ``?cols=&rows=`` (our extension), and as a resize message for servers that ignore those.

        Returns:
            The connected :class:`~terminal.TerminalSession`.

        Raises:
            SessionRefused: the server closed the socket instead of a session (a refusal can also arrive a
                moment later, from iterating the session).
            ValueError: a size out of range.
            NotFoundError, HostOfflineError: as :meth:`terminal_ticket`.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return await TerminalSession.connect(await self.terminal_ticket(host_id), cols, rows)

    async def desktop_ticket(self, host_id: str) -> models.Ticket:
        """:meth:`terminal_ticket`'s twin for a desktop session: same argument, answer and errors.

        The ticket's ``ws_url`` is the desktop WebSocket; :meth:`open_desktop` uses it at once.
        """
        return await self._call(models.Ticket, "POST", _host_path(host_id, "desktop", "ticket"))

    async def open_desktop(self, host_id: str) -> DesktopSession:
        """A live desktop session (ticket, WebSocket, RFB handshake); close it when done.

        Args:
            host_id: the host's ID (``host_…``).

        Returns:
            The :class:`~desktop.DesktopSession`; its first full-screen update is on its way.

        Raises:
            SessionRefused: the server refused it (4502 with the agent's reason when the host has no VNC
                server or its password is wrong: ``oc_tui.api.desktop.refusal_kind``).
            StreamClosed: the RFB handshake failed or did not finish in 15 s.
            NotFoundError, HostOfflineError: as :meth:`desktop_ticket`.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        from .desktop import open_desktop_socket  # numpy and asyncvnc load only when a desktop opens

        return await open_desktop_socket(await self.desktop_ticket(host_id))

    # --- tunnels -----------------------------------------------------------------------------------

    async def list_tunnels(self, host_id: str) -> list[models.Tunnel]:
        """The host's tunnels, every page of them.

        Args:
            host_id: the host's ID (``host_…``).

        Returns:
            Every tunnel of the host, oldest first.

        Raises:
            NotFoundError: 404, no such host (or a server without tunnels).
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        tunnels: list[models.Tunnel] = []
        page = 1
        while True:
            params = {"page": page, "per_page": 100}
            got = await self._call(
                models.Page[models.Tunnel], "GET", _host_path(host_id, "tunnels"), params=params
            )
            tunnels.extend(got.data)
            if got.meta is None or not got.data or len(tunnels) >= got.meta.total:
                return tunnels
            page += 1

    async def create_tunnel(
        self,
        host_id: str,
        target_port: int,
        *,
        auth_mode: models.TunnelAuthMode | None = None,
        slug: str | None = None,
        password: str | None = None,
    ) -> models.Tunnel:
        """Expose a TCP port of the host at a URL of the control plane.

        Args:
            host_id: the host's ID (``host_…``).
            target_port: the port on the host (1 to 65535).
            auth_mode: who may use the tunnel's URL (the server's default when None).
            slug: the URL's name (a DNS label), or None for a generated one.
            password: the password of ``auth_mode="password"`` (extension; stored hashed, never returned).

        Returns:
            The tunnel, with its public URL.

        Raises:
            ValidationError: 400, a bad port, mode or slug, or password mode without a password.
            ConflictError: 409, the slug is taken.
            NotFoundError: 404, no such host.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        body = _fields(target_port=target_port, auth_mode=auth_mode, slug=slug, password=password)
        return await self._call(models.Tunnel, "POST", _host_path(host_id, "tunnels"), json=body)

    async def get_tunnel(self, host_id: str, tunnel_id: str) -> models.Tunnel:
        """One tunnel.

        Args:
            host_id: the host's ID (``host_…``).
            tunnel_id: the tunnel's ID (``tun_…``).

        Returns:
            The tunnel.

        Raises:
            NotFoundError: 404, no such host or tunnel.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return await self._call(models.Tunnel, "GET", _host_path(host_id, "tunnels", tunnel_id))

    async def update_tunnel(
        self,
        host_id: str,
        tunnel_id: str,
        *,
        target_port: int | None = None,
        auth_mode: models.TunnelAuthMode | None = None,
        enabled: bool | None = None,
        password: str | None = None,
    ) -> models.Tunnel:
        """Change a tunnel: only the fields given are sent.

        Args:
            host_id: the host's ID (``host_…``).
            tunnel_id: the tunnel's ID.
            target_port: a new port on the host, or None.
            auth_mode: a new auth mode, or None.
            enabled: switch it on or off, or None.
            password: a new password (extension), or None.

        Returns:
            The updated tunnel.

        Raises:
            ValidationError: 400, a bad field.
            NotFoundError: 404, no such host or tunnel.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        body = _fields(target_port=target_port, auth_mode=auth_mode, enabled=enabled, password=password)
        return await self._call(models.Tunnel, "PATCH", _host_path(host_id, "tunnels", tunnel_id), json=body)

    async def delete_tunnel(self, host_id: str, tunnel_id: str) -> None:
        """Delete a tunnel (204); its URL stops answering.

        Args:
            host_id: the host's ID (``host_…``).
            tunnel_id: the tunnel's ID.

        Raises:
            NotFoundError: 404, no such host or tunnel.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        await self._request("DELETE", _host_path(host_id, "tunnels", tunnel_id))

    async def tunnel_requests(self, host_id: str, tunnel_id: str) -> list[models.TunnelRequest]:
        """The tunnel's last requests as the server's inspector kept them (extension), newest first.

        Args:
            host_id: the host's ID (``host_…``).
            tunnel_id: the tunnel's ID (``tun_…``).

        Returns:
            Up to 100 records: headers with credentials masked, the first 10 KiB of each body.

        Raises:
            NotFoundError: 404, no such host or tunnel (or a server without an inspector).
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        path = _host_path(host_id, "tunnels", tunnel_id, "requests")
        return (await self._call(models.DataList[models.TunnelRequest], "GET", path)).data

    def follow_tunnel_requests(
        self, host_id: str, tunnel_id: str, *, on_state: StateCallback | None = None
    ) -> EventStream[models.TunnelEvent]:
        """The tunnel's requests live (SSE, extension): an event when the app's answer starts and
        again when it ends (``event.request`` is the record; replace by ``id``). Live only: after a
        reconnect, list again with :meth:`tunnel_requests`.

        Returns:
            An :class:`~streams.EventStream` of :class:`~models.TunnelEvent`; close it with ``aclose()``.

        Raises (when iterated):
            NotFoundError, UnauthorizedError: at once, never retried.
        """
        path = _host_path(host_id, "tunnels", tunnel_id, "requests", "stream")
        return self._stream(path, models.TunnelEvent, on_state=on_state)

    async def replay_tunnel_request(
        self, host_id: str, tunnel_id: str, request_id: int
    ) -> models.TunnelRequest:
        """Send a request the inspector kept to the app again (extension).

        Args:
            host_id: the host's ID (``host_…``).
            tunnel_id: the tunnel's ID (``tun_…``).
            request_id: the record's ``id``.

        Returns:
            The new record (``replay_of`` is ``request_id``), with the app's answer.

        Raises:
            NotFoundError: 404, no such host, tunnel or record.
            ConflictError: 409, the body was over 10 KiB (not kept whole).
            HostOfflineError: 409, the host's agent is not connected.
            ServerError: 502, the app could not be reached.
            ConnectionFailed, UnauthorizedError: as for every call (see the class).
        """
        path = _host_path(host_id, "tunnels", tunnel_id, "requests", str(request_id), "replay")
        return await self._call(models.TunnelRequest, "POST", path)

    # --- AI agents ---------------------------------------------------------------------------------

    async def dispatch_agent(
        self,
        host_id: str,
        task: str,
        *,
        model_id: str | None = None,
        max_turns: int | None = None,
        context: dict[str, Any] | None = None,
        approval: bool = False,
    ) -> models.AgentSession:
        """Start an AI agent session on the host.

        Args:
            host_id: the host's ID (``host_…``).
            task: what the agent is asked to do.
            model_id: the model to use (the tenant's default when None).
            max_turns: the most model calls the session may make (the server's default, 20, when None).
            context: extra context for the agent, any JSON object.
            approval: every ``run_command`` and ``write_file`` waits for the operator's decision
                (:meth:`decide_agent_call`); an extension, ignored by a server without it.

        Returns:
            The session, ``pending`` (it starts at once).

        Raises:
            ValidationError: 400, a bad field.
            NotFoundError: 404, no such host (or a server without AI agents).
            ConflictError: 409, no model is configured (the message says how), or the host is offline.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        body = _fields(task=task, model_id=model_id, max_turns=max_turns, context=context)
        if approval:
            body["approval"] = True
        return await self._call(
            models.AgentSession, "POST", _host_path(host_id, "agent", "dispatch"), json=body
        )

    async def decide_agent_call(
        self,
        host_id: str,
        session_id: str,
        call_id: str,
        decision: Literal["approve", "deny"],
        *,
        reason: str | None = None,
        arguments: dict[str, Any] | None = None,
    ) -> models.AgentSession:
        """Answer the call a session in approval mode waits for (an extension, docs/api.md).

        Args:
            host_id: the host's ID; session_id: the session's.
            call_id: the waiting call's ``call_id`` (from ``pending_approval`` or its event).
            decision: ``approve`` or ``deny``.
            reason: why it is denied; the model sees it.
            arguments: the call's arguments as edited by the operator (approve only).

        Returns:
            The session after the decision.

        Raises:
            ConflictError: 409, the session is not waiting for that call.
            NotFoundError: 404, no such host or session.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        body = _fields(call_id=call_id, decision=decision, reason=reason, arguments=arguments)
        path = _host_path(host_id, "agent", "sessions", session_id, "approval")
        return await self._call(models.AgentSession, "POST", path, json=body)

    async def get_agent_config(self) -> dict[str, Any]:
        """The tenant's AI agent model configuration (an extension): ``base_url``, ``model``,
        ``api_key_secret``, ``streaming`` and ``configured``.

        Raises:
            NotFoundError: 404, a server without it.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        body = await self._get_json("GET", "/agent/config")
        return dict(body) if isinstance(body, dict) else {}

    async def set_agent_config(
        self, base_url: str, model: str, *, api_key_secret: str = "", streaming: bool = True
    ) -> dict[str, Any]:
        """Set where the tenant's AI agent sessions get their model (an extension).

        Args:
            base_url: an OpenAI-compatible endpoint's base URL (``http://127.0.0.1:11434/v1`` …).
            model: the default model.
            api_key_secret: the name of the tenant secret holding the endpoint's API key ("" = none).
            streaming: read the model's answers as a stream.

        Returns:
            The configuration as stored (see :meth:`get_agent_config`).

        Raises:
            ValidationError: 400, a bad field.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        body = {
            "base_url": base_url,
            "model": model,
            "api_key_secret": api_key_secret,
            "streaming": streaming,
        }
        result = await self._get_json("PUT", "/agent/config", json=body)
        return dict(result) if isinstance(result, dict) else {}

    async def list_agent_sessions(
        self, host_id: str, page: int = 1, per_page: int = 20
    ) -> models.Page[models.AgentSession]:
        """One page of the host's AI agent sessions.

        Args:
            host_id: the host's ID (``host_…``).
            page: the page number, from 1.
            per_page: sessions per page, 1 to 100.

        Returns:
            The page of sessions.

        Raises:
            NotFoundError: 404, no such host.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return await self._call(
            models.Page[models.AgentSession],
            "GET",
            _host_path(host_id, "agent", "sessions"),
            params={"page": page, "per_page": per_page},
        )

    async def get_agent_session(self, host_id: str, session_id: str) -> models.AgentSession:
        """One AI agent session.

        Args:
            host_id: the host's ID (``host_…``).
            session_id: the session's ID (``sess_…``).

        Returns:
            The session.

        Raises:
            NotFoundError: 404, no such host or session.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return await self._call(
            models.AgentSession, "GET", _host_path(host_id, "agent", "sessions", session_id)
        )

    async def cancel_agent_session(self, host_id: str, session_id: str) -> None:
        """Cancel an AI agent session (204).

        Args:
            host_id: the host's ID (``host_…``).
            session_id: the session's ID.

        Raises:
            NotFoundError: 404, no such host or session.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        await self._request("DELETE", _host_path(host_id, "agent", "sessions", session_id))

    def agent_events(
        self,
        host_id: str,
        session_id: str,
        *,
        last_event_id: str | None = None,
        reconnect: bool = True,
        on_state: StateCallback | None = None,
    ) -> EventStream[models.AgentEvent]:
        """An AI agent session's events as they happen; ends after the session does (its final
        ``status`` event, or ``[DONE]``).

        Args:
            host_id: the host's ID (``host_…``).
            session_id: the session's ID.
            last_event_id: resume after this SSE id (a previous event's ``event_id``).
            reconnect: reconnect after a drop or a 5xx with backoff (True), or end/raise at the first one.
            on_state: hears every :class:`~streams.StreamState` change (connected, dropped and why).

        Returns:
            An :class:`~streams.EventStream` of :class:`~models.AgentEvent` (close it, or ``async with``).

        Raises (when iterated):
            NotFoundError: 404, no such host or session (at once, never retried).
            ConnectionFailed: the server cannot be reached and ``reconnect`` is False.
        """
        return self._stream(
            _host_path(host_id, "agent", "sessions", session_id, "stream"),
            models.AgentEvent,
            final=lambda event: event.final,
            last_event_id=last_event_id,
            reconnect=reconnect,
            on_state=on_state,
        )

    # --- inference clusters ------------------------------------------------------------------------

    async def list_clusters(self) -> list[models.Cluster]:
        """The tenant's inference clusters.

        Returns:
            Every cluster.

        Raises:
            NotFoundError: 404, a server without clusters.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return (await self._call(models.DataList[models.Cluster], "GET", "/clusters")).data

    async def create_cluster(
        self,
        name: str,
        model: str,
        host_ids: list[str],
        *,
        engine: models.ClusterEngine | None = None,
        host_ports: dict[str, int] | None = None,
    ) -> models.Cluster:
        """Create an inference cluster serving ``model`` on some hosts.

        Args:
            name: the cluster's name.
            model: the model to serve.
            host_ids: the hosts that serve it.
            engine: ours: the engine kind and port on the hosts (None: the server's default, Ollama).
            host_ports: ours: hosts whose engine listens on another port than ``engine``'s.

        Returns:
            The cluster, usually ``provisioning``.

        Raises:
            ValidationError: 400, a bad field.
            NotFoundError: 404, a host that does not exist.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        body: dict[str, Any] = {"name": name, "model": model, "host_ids": host_ids}
        if engine is not None:
            body["engine"] = engine.model_dump(mode="json")
        if host_ports:
            body["host_ports"] = host_ports
        return await self._call(models.Cluster, "POST", "/clusters", json=body)

    async def get_cluster(self, cluster_id: str) -> models.Cluster:
        """One inference cluster.

        Args:
            cluster_id: the cluster's ID (``cl_…``).

        Returns:
            The cluster.

        Raises:
            NotFoundError: 404, no such cluster.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return await self._call(models.Cluster, "GET", f"/clusters/{_segment(cluster_id)}")

    async def start_cluster(self, cluster_id: str) -> models.Cluster:
        """Start a stopped cluster.

        Args:
            cluster_id: the cluster's ID.

        Returns:
            The cluster as it is then.

        Raises:
            NotFoundError: 404, no such cluster.
            ConflictError: 409, the cluster cannot start from its status.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return await self._call(models.Cluster, "POST", f"/clusters/{_segment(cluster_id)}/start")

    async def stop_cluster(self, cluster_id: str) -> models.Cluster:
        """Stop a cluster (it can be started again).

        Args:
            cluster_id: the cluster's ID.

        Returns:
            The cluster as it is then.

        Raises:
            NotFoundError: 404, no such cluster.
            ConflictError: 409, the cluster cannot stop from its status.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return await self._call(models.Cluster, "POST", f"/clusters/{_segment(cluster_id)}/stop")

    async def delete_cluster(self, cluster_id: str) -> None:
        """Destroy a cluster (204).

        Args:
            cluster_id: the cluster's ID.

        Raises:
            NotFoundError: 404, no such cluster.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        await self._request("DELETE", f"/clusters/{_segment(cluster_id)}")

    def cluster_events(
        self, cluster_id: str, *, reconnect: bool = True, on_state: StateCallback | None = None
    ) -> EventStream[models.ClusterEvent]:
        """A cluster's status and per-host health now, then each change (``status_change``,
        ``host_health``, ``pull_progress``); the stream ends after ``destroyed``.

        Args:
            cluster_id: the cluster's ID (``cl_…``).
            reconnect: reconnect after a drop with backoff (True), or end/raise at the first one.
            on_state: hears every :class:`~streams.StreamState` change.

        Returns:
            An :class:`~streams.EventStream` of :class:`~models.ClusterEvent` (close it, or ``async with``).

        Raises (when iterated):
            NotFoundError: 404, no such cluster (at once, never retried).
        """
        return self._stream(
            f"/clusters/{_segment(cluster_id)}/events",
            models.ClusterEvent,
            reconnect=reconnect,
            on_state=on_state,
        )

    async def host_engines(self, host_id: str, ports: list[int] | None = None) -> list[models.DetectedEngine]:
        """Ours: the LLM engines answering on a host (Ollama on 11434, OpenAI-compatible servers on 8080
        and 8000, and on each of ``ports``), with the models they serve.

        Args:
            host_id: the host's ID.
            ports: more ports to try (as OpenAI-compatible servers).

        Returns:
            The engines found (none for an offline host).

        Raises:
            NotFoundError: 404, no such host (or a server without this extension).
        """
        params = [("port", str(port)) for port in ports or []]
        body = await self._call(
            models.DataList[models.DetectedEngine], "GET", f"{_host_path(host_id)}/engines", params=params
        )
        return body.data

    async def chat_stream(
        self, inference_url: str, model: str, messages: list[dict[str, str]], *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        """Stream a chat completion from a cluster's OpenAI-compatible endpoint, piece by piece.

        Args:
            inference_url: the cluster's ``inference_url`` (``…/inference/<slug>/v1``).
            model: the model to ask.
            messages: the conversation, ``[{"role": "user", "content": "…"}]``.
            max_tokens: the most tokens to answer with (None: the engine's default).

        Yields:
            Each piece of the answer's text as it arrives (an empty piece is not yielded).

        Raises:
            ApiError: the endpoint refused (401, 404, 503 stopped or no ready host …).
            ConnectionFailed: the server could not be reached, or the stream broke off.
        """
        import json

        body: dict[str, Any] = {"model": model, "messages": messages, "stream": True}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        url = inference_url.rstrip("/") + "/chat/completions"
        try:
            async with self._http.stream("POST", url, json=body, timeout=self._stream_timeout) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise errors.error_from_response(response.status_code, decode_body(response))
                async for line in response.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    try:
                        choices = json.loads(line[6:]).get("choices") or [{}]
                    except (ValueError, AttributeError):
                        continue
                    piece = (choices[0].get("delta") or {}).get("content") or choices[0].get("text") or ""
                    if piece:
                        yield str(piece)
        except httpx.TransportError as exc:
            raise errors.ConnectionFailed(f"the answer broke off: {describe_transport_error(exc)}") from exc

    # --- secrets -----------------------------------------------------------------------------------

    async def list_secrets(
        self, host_id: str | None = None, *, page: int = 1, per_page: int = 100
    ) -> list[models.Secret]:
        """One page of the tenant's secrets, or of one host's own (by name). Values are never returned.

        Args:
            host_id: the host whose secrets to list, or None for the tenant's.
            page: the page, from 1.
            per_page: secrets per page, 1-100 (MIOSA's hosted API may ignore paging).

        Returns:
            The secrets' names, descriptions and times.

        Raises:
            NotFoundError: 404, no such host.
            ValidationError: 400, ``page`` or ``per_page`` out of range.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        path = "/secrets" if host_id is None else _host_path(host_id, "secrets")
        params = {"page": page, "per_page": per_page}
        return (await self._call(models.DataList[models.Secret], "GET", path, params=params)).data

    async def get_secret(self, secret_id: str, *, host_id: str | None = None) -> models.Secret:
        """One secret (an extension of oc-server; MIOSA's hosted API may answer 404 or 405).

        Args:
            secret_id: the secret's ID (``sec_…``).
            host_id: the host the secret belongs to, or None for a tenant secret.

        Returns:
            The secret, without its value.

        Raises:
            NotFoundError: 404, no such secret in that scope (or no such host).
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        return await self._call(models.Secret, "GET", _secret_path(secret_id, host_id))

    async def create_secret(
        self, name: str, value: str, *, description: str | None = None, host_id: str | None = None
    ) -> models.Secret:
        """Store a secret (encrypted at rest); its value is never returned again.

        Args:
            name: the secret's name.
            value: the secret value.
            description: what it is for, or None.
            host_id: the host it belongs to, or None for the tenant.

        Returns:
            The secret, without its value.

        Raises:
            ValidationError: 400, a bad name or value.
            ConflictError: 409, a secret of that name exists.
            NotFoundError: 404, no such host.
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        path = "/secrets" if host_id is None else _host_path(host_id, "secrets")
        body = _fields(name=name, value=value, description=description)
        return await self._call(models.Secret, "POST", path, json=body)

    async def update_secret(
        self,
        secret_id: str,
        *,
        value: str | None = None,
        description: str | None = None,
        host_id: str | None = None,
    ) -> models.Secret:
        """Change a secret's value or description: only the fields given are sent.

        Args:
            secret_id: the secret's ID (``sec_…``).
            value: the new value, or None to keep it.
            description: the new description, or None to keep it.
            host_id: the host the secret belongs to, or None for a tenant secret.

        Returns:
            The secret, without its value.

        Raises:
            ValidationError: 400, a bad field.
            NotFoundError: 404, no such secret (or host).
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        path = _secret_path(secret_id, host_id)
        return await self._call(
            models.Secret, "PATCH", path, json=_fields(value=value, description=description)
        )

    async def delete_secret(self, secret_id: str, *, host_id: str | None = None) -> None:
        """Delete a secret (204).

        Args:
            secret_id: the secret's ID.
            host_id: the host the secret belongs to, or None for a tenant secret.

        Raises:
            NotFoundError: 404, no such secret (or host).
            ConnectionFailed, UnauthorizedError, ServerError: as for every call (see the class).
        """
        await self._request("DELETE", _secret_path(secret_id, host_id))


def _fields(**fields: Any) -> dict[str, Any]:
    """A request body of the fields that were given (None means "not given")."""
    return {key: value for key, value in fields.items() if value is not None}


def _fs(path: str, **extra: str | None) -> dict[str, str]:
    """Query parameters of a file system call: ``path`` (left out when empty: the home) and extras."""
    params = {"path": path} if path else {}
    return {**params, **{key: value for key, value in extra.items() if value is not None}}


def validate_json(model: type[M], content: bytes) -> M:
    """``content`` (JSON) as ``model``, parsed by pydantic in one pass. A file name that is not UTF-8
    comes as lone ``\\udcXX`` escapes (docs/api.md, "Paths"), which pydantic's parser refuses as invalid
    JSON: such an answer is parsed by the standard library's, which keeps them (as Python's
    ``surrogateescape`` does; the TUI shows them as ``\\xNN``).

    Raises:
        pydantic.ValidationError: the answer is not JSON, or not the model's shape.
    """
    try:
        return model.model_validate_json(content)
    except pydantic.ValidationError as exc:
        if not any(error["type"] == "json_invalid" for error in exc.errors()):
            raise
        try:
            body = json.loads(content)
        except ValueError:
            raise exc from None
        return model.model_validate(body)


def _stat_or_none(response: httpx.Response) -> models.FsStat | None:
    """The stat a file system write answered with, or None when the server sent none."""
    if response.status_code == 204 or not response.content:
        return None
    try:
        return validate_json(models.FsStat, response.content)
    except pydantic.ValidationError:
        return None


def _range(offset: int, length: int | None) -> dict[str, str]:
    """The ``Range`` header for ``length`` bytes from ``offset`` (none for the whole file)."""
    if offset < 0 or (length is not None and length <= 0):
        raise ValueError(f"bad range: offset {offset}, length {length}")
    if length is not None:
        return {"Range": f"bytes={offset}-{offset + length - 1}"}
    return {"Range": f"bytes={offset}-"} if offset else {}


def _host_path(host_id: str, *parts: str) -> str:
    """``/hosts/{id}/…`` with every segment quoted, IDs and literals alike."""
    return "/".join(["/hosts", *(_segment(part) for part in (host_id, *parts))])


def _secret_path(secret_id: str, host_id: str | None) -> str:
    prefix = "/secrets" if host_id is None else _host_path(host_id, "secrets")
    return f"{prefix}/{_segment(secret_id)}"
