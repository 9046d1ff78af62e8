"""The typed async client of the OpenComputers API: one method per endpoint.

It speaks to MIOSA's hosted control plane and to our embedded server alike: give it the server root
(``https://api.miosa.ai`` or ``http://127.0.0.1:8787``) and a bearer token. Every failure surfaces as an
:mod:`oc_tui.api.errors` exception: :class:`~errors.ConnectionFailed` when the server cannot be reached,
an :class:`~errors.ApiError` subclass when it answers with an error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from . import errors, models
from .streams import EventStream, StateCallback, decode_body, describe_transport_error, job_output_bytes

__all__ = ["API_PREFIX", "OpenComputersClient", "job_output_bytes", "server_root"]

API_PREFIX = "/api/v1/opencomputers"

M = TypeVar("M", bound=pydantic.BaseModel)


def _user_agent() -> str:
    try:
        return f"oc-tui/{version('oc-tui')}"
    except PackageNotFoundError:
        return "oc-tui"


def server_root(base_url: str) -> str:
    """The server root of ``base_url``: no trailing slash and no API prefix (so it is never doubled)."""
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

    Use it as an async context manager, or call :meth:`aclose` when done.
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
        """``stream_read_timeout`` is how long an event stream may stay silent before it reconnects;
        our server sends a keep-alive every 15 s. ``transport`` is for embedding (e.g. ASGI)."""
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

    async def __aenter__(self) -> OpenComputersClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection (streams still open stop with a transport error)."""
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
        """``GET /healthz`` of the embedded server (no token needed; MIOSA's API has no such route)."""
        body = await self._get_json("GET", self.base_url + "/healthz")
        if not isinstance(body, dict):
            raise errors.OpenComputersError(f"{self.base_url}/healthz answered {body!r}")
        return body

    # --- hosts -------------------------------------------------------------------------------------

    async def list_hosts(self, page: int = 1, per_page: int = 20) -> models.Page[models.Host]:
        """One page of the tenant's hosts (``per_page`` at most 100)."""
        return await self._call(
            models.Page[models.Host], "GET", "/hosts", params={"page": page, "per_page": per_page}
        )

    async def iter_hosts(self, per_page: int = 100) -> AsyncIterator[models.Host]:
        """Every host, page by page, each once.

        Stops when ``meta`` says every host was seen; for a server without ``meta``, at an empty page or
        one shorter than those before it (a server may clamp ``per_page`` without saying so).
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
        """Every host of the tenant, in the server's order."""
        return [host async for host in self.iter_hosts()]

    async def register_host(
        self, name: str, region: str | None = None, labels: dict[str, str] | None = None
    ) -> models.HostRegistration:
        """Register a host; the answer carries its ``host_key``, shown this one time only."""
        body: dict[str, Any] = {"name": name}
        if region is not None:
            body["region"] = region
        if labels is not None:
            body["labels"] = labels
        return await self._call(models.HostRegistration, "POST", "/hosts", json=body)

    async def get_host(self, host_id: str) -> models.Host:
        return await self._call(models.Host, "GET", _host_path(host_id))

    async def update_host(
        self,
        host_id: str,
        *,
        name: str | None = None,
        region: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> models.Host:
        """``PATCH`` a host: only the fields given are sent; ``labels`` replaces the whole map."""
        body = {
            key: value
            for key, value in (("name", name), ("region", region), ("labels", labels))
            if value is not None
        }
        return await self._call(models.Host, "PATCH", _host_path(host_id), json=body)

    async def revoke_host(self, host_id: str) -> None:
        """Revoke a host: its agent can never authenticate again."""
        await self._request("DELETE", _host_path(host_id))

    async def host_sysinfo(self, host_id: str) -> models.HostSysInfo:
        """Live facts asked of the host's agent (embedded extension; 409 when the host is offline)."""
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

        Reconnects with backoff and ``Last-Event-ID`` (``on_state`` hears every change); raises on
        401/403/404. Close it with ``aclose()`` or ``async with``.
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
    ) -> models.Job:
        """Start a job on the host (``POST …/exec``) and return it as the server has it then.

        With ``args`` the program runs without a shell (``[command, *args]``); without, ``command`` runs
        through the host's shell. ``env`` items are ``KEY=VALUE``; ``timeout`` is in seconds (server
        default 60). ``wait`` (seconds, at most 300) asks the server to answer only when the job has
        ended or the wait ran out (an extension: a server without it answers at once, still correct).
        Raises :class:`~errors.HostOfflineError` (409) for an offline host.
        """
        body = _fields(command=command, args=args, env=env, cwd=cwd, timeout=timeout)
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
        """One page of the host's jobs, newest first."""
        return await self._call(
            models.Page[models.Job],
            "GET",
            _host_path(host_id, "exec"),
            params={"page": page, "per_page": per_page},
        )

    async def get_job(self, host_id: str, job_id: str) -> models.Job:
        """The job with its ``stdout``/``stderr`` as text (the exact bytes are in :meth:`job_events`)."""
        return await self._call(models.Job, "GET", _host_path(host_id, "exec", job_id))

    async def cancel_job(self, host_id: str, job_id: str) -> None:
        """Kill the job's whole process tree (204). Cancelling a finished job changes nothing."""
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
        """A job's output from its start, then live; ends after the ``exit`` event (or ``[DONE]``).

        ``stdout``/``stderr`` events carry ``{"text"}`` or ``{"b64"}`` (:func:`job_output_bytes` gives
        the bytes); ``truncated`` says the server stopped storing output; ``exit`` carries ``status``,
        ``exit_code`` and ``error``. A dropped connection resumes with ``Last-Event-ID``: nothing is
        lost and nothing arrives twice.
        """
        return self._stream(
            _host_path(host_id, "exec", job_id, "stream"),
            models.JobEvent,
            last_event_id=last_event_id,
            reconnect=reconnect,
            on_state=on_state,
            final=lambda event: event.type == "exit",
        )

    # --- file system -------------------------------------------------------------------------------

    async def list_dir(self, host_id: str, path: str) -> models.FsList:
        return await self._call(
            models.FsList, "GET", _host_path(host_id, "fs", "list"), params={"path": path}
        )

    async def stat(self, host_id: str, path: str) -> models.FsStat:
        """Stat ``path`` without following a final symlink."""
        return await self._call(
            models.FsStat, "GET", _host_path(host_id, "fs", "stat"), params={"path": path}
        )

    async def download(self, host_id: str, path: str) -> bytes:
        response = await self._request("GET", _host_path(host_id, "fs", "download"), params={"path": path})
        return response.content

    async def upload(self, host_id: str, path: str, content: bytes) -> None:
        """Write ``content`` to ``path`` on the host (multipart; ``path`` both in the query and the form)."""
        await self._request(
            "POST",
            _host_path(host_id, "fs", "upload"),
            params={"path": path},
            data={"path": path},
            files={"file": (path.rsplit("/", 1)[-1] or "file", content, "application/octet-stream")},
        )

    async def delete_path(self, host_id: str, path: str) -> None:
        await self._request("DELETE", _host_path(host_id, "fs", "delete"), params={"path": path})

    async def mkdir(self, host_id: str, path: str) -> None:
        await self._request("POST", _host_path(host_id, "fs", "mkdir"), json={"path": path})

    # --- terminal and desktop ----------------------------------------------------------------------

    async def terminal_ticket(self, host_id: str) -> models.Ticket:
        """A short-lived ticket: connect to its ``ws_url`` at once."""
        return await self._call(models.Ticket, "POST", _host_path(host_id, "terminal", "ticket"))

    async def desktop_ticket(self, host_id: str) -> models.Ticket:
        return await self._call(models.Ticket, "POST", _host_path(host_id, "desktop", "ticket"))

    # --- tunnels -----------------------------------------------------------------------------------

    async def list_tunnels(self, host_id: str) -> list[models.Tunnel]:
        page = await self._call(models.DataList[models.Tunnel], "GET", _host_path(host_id, "tunnels"))
        return page.data

    async def create_tunnel(
        self,
        host_id: str,
        target_port: int,
        *,
        auth_mode: models.TunnelAuthMode | None = None,
        slug: str | None = None,
    ) -> models.Tunnel:
        body = _fields(target_port=target_port, auth_mode=auth_mode, slug=slug)
        return await self._call(models.Tunnel, "POST", _host_path(host_id, "tunnels"), json=body)

    async def get_tunnel(self, host_id: str, tunnel_id: str) -> models.Tunnel:
        return await self._call(models.Tunnel, "GET", _host_path(host_id, "tunnels", tunnel_id))

    async def update_tunnel(
        self,
        host_id: str,
        tunnel_id: str,
        *,
        target_port: int | None = None,
        auth_mode: models.TunnelAuthMode | None = None,
        enabled: bool | None = None,
    ) -> models.Tunnel:
        body = _fields(target_port=target_port, auth_mode=auth_mode, enabled=enabled)
        return await self._call(models.Tunnel, "PATCH", _host_path(host_id, "tunnels", tunnel_id), json=body)

    async def delete_tunnel(self, host_id: str, tunnel_id: str) -> None:
        await self._request("DELETE", _host_path(host_id, "tunnels", tunnel_id))

    # --- AI agents ---------------------------------------------------------------------------------

    async def dispatch_agent(
        self,
        host_id: str,
        task: str,
        *,
        model_id: str | None = None,
        max_turns: int | None = None,
        context: dict[str, Any] | None = None,
    ) -> models.AgentSession:
        body = _fields(task=task, model_id=model_id, max_turns=max_turns, context=context)
        return await self._call(
            models.AgentSession, "POST", _host_path(host_id, "agent", "dispatch"), json=body
        )

    async def list_agent_sessions(
        self, host_id: str, page: int = 1, per_page: int = 20
    ) -> models.Page[models.AgentSession]:
        return await self._call(
            models.Page[models.AgentSession],
            "GET",
            _host_path(host_id, "agent", "sessions"),
            params={"page": page, "per_page": per_page},
        )

    async def get_agent_session(self, host_id: str, session_id: str) -> models.AgentSession:
        return await self._call(
            models.AgentSession, "GET", _host_path(host_id, "agent", "sessions", session_id)
        )

    async def cancel_agent_session(self, host_id: str, session_id: str) -> None:
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
        """An agent session's events as they happen; ends after the session does (``[DONE]``)."""
        return self._stream(
            _host_path(host_id, "agent", "sessions", session_id, "stream"),
            models.AgentEvent,
            last_event_id=last_event_id,
            reconnect=reconnect,
            on_state=on_state,
        )

    # --- inference clusters ------------------------------------------------------------------------

    async def list_clusters(self) -> list[models.Cluster]:
        return (await self._call(models.DataList[models.Cluster], "GET", "/clusters")).data

    async def create_cluster(self, name: str, model: str, host_ids: list[str]) -> models.Cluster:
        body = {"name": name, "model": model, "host_ids": host_ids}
        return await self._call(models.Cluster, "POST", "/clusters", json=body)

    async def get_cluster(self, cluster_id: str) -> models.Cluster:
        return await self._call(models.Cluster, "GET", f"/clusters/{_segment(cluster_id)}")

    async def start_cluster(self, cluster_id: str) -> models.Cluster:
        return await self._call(models.Cluster, "POST", f"/clusters/{_segment(cluster_id)}/start")

    async def stop_cluster(self, cluster_id: str) -> models.Cluster:
        return await self._call(models.Cluster, "POST", f"/clusters/{_segment(cluster_id)}/stop")

    async def delete_cluster(self, cluster_id: str) -> None:
        await self._request("DELETE", f"/clusters/{_segment(cluster_id)}")

    # --- secrets -----------------------------------------------------------------------------------

    async def list_secrets(self, host_id: str | None = None) -> list[models.Secret]:
        """Tenant secrets, or one host's when ``host_id`` is given. Values are never returned."""
        path = "/secrets" if host_id is None else _host_path(host_id, "secrets")
        return (await self._call(models.DataList[models.Secret], "GET", path)).data

    async def create_secret(
        self, name: str, value: str, *, description: str | None = None, host_id: str | None = None
    ) -> models.Secret:
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
        path = _secret_path(secret_id, host_id)
        return await self._call(
            models.Secret, "PATCH", path, json=_fields(value=value, description=description)
        )

    async def delete_secret(self, secret_id: str, *, host_id: str | None = None) -> None:
        await self._request("DELETE", _secret_path(secret_id, host_id))


def _fields(**fields: Any) -> dict[str, Any]:
    """A request body of the fields that were given (None means "not given")."""
    return {key: value for key, value in fields.items() if value is not None}


def _host_path(host_id: str, *parts: str) -> str:
    """``/hosts/{id}/…`` with every segment quoted, IDs and literals alike."""
    return "/".join(["/hosts", *(_segment(part) for part in (host_id, *parts))])


def _secret_path(secret_id: str, host_id: str | None) -> str:
    prefix = "/secrets" if host_id is None else _host_path(host_id, "secrets")
    return f"{prefix}/{_segment(secret_id)}"
