"""The client against a stand-in for MIOSA's hosted API, spoken over real HTTP on loopback.

The stand-in serves the reference's JSON under ``/api/v1/opencomputers`` and nothing else of ours: no
``/healthz``, no pagination ``meta`` unless asked, errors as HTML from a "proxy". It proves the hosted
profile's way of connecting (server root + bearer token) and the client's tolerance.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import serve_http

from oc_tui.api import JobExit, OpenComputersClient, OutputChunk, errors, models

TOKEN = "mk_live_test"
PREFIX = "/api/v1/opencomputers"


def host_json(index: int) -> dict[str, object]:
    return {
        "id": f"host_hosted{index:03d}",
        "name": f"mac-{index}",
        "region": "us-east",
        "status": "online",
        "tenant_id": "t_abc",
        "labels": {"env": "prod"},
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "gpu": "m3",  # a field the reference does not know yet: kept, not an error
    }


STAMPS = {"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
JOB = {"id": "job_xyz", "host_id": "host_abc123", "status": "completed", "command": "npm test", **STAMPS}
TUNNEL = {
    "id": "tun_abc",
    "host_id": "host_abc123",
    "slug": "my-app-dev",
    "target_port": 3000,
    "auth_mode": "public",
    "public_url": "https://api.miosa.ai/t/my-app-dev",
    "enabled": True,
    **STAMPS,
}
SESSION = {
    "id": "sess_abc",
    "host_id": "host_abc123",
    "task": "fix",
    "status": "pending",
    "max_turns": 20,
    **STAMPS,
}
CLUSTER = {
    "id": "cl_abc",
    "name": "c",
    "model": "llama3:70b",
    "slug": "c",
    "status": "active",
    "host_ids": ["host_abc123"],
    "inference_url": "https://api.miosa.ai/inference/c/v1",
    **STAMPS,
}
SECRET = {"id": "sec_abc", "name": "GITHUB_TOKEN", "host_id": None, "tenant_id": "t_abc", **STAMPS}
TICKET = {
    "ticket": "tk_abc123",
    "ws_url": "wss://x/opencomputers/ws/terminal?ticket=tk_abc123",
    "expires_at": "2026-01-01T00:00:30Z",
}
FS_LIST = {"path": "/home", "entries": [{"name": "a", "path": "/home/a", "size": 0, "is_dir": True}]}
FS_STAT = {"path": "/home/a", "size": 0, "is_dir": True}
H = f"{PREFIX}/hosts/host_abc123"

#: (method, path) -> (status, JSON body or raw bytes) for the rest of the reference.
CANNED: dict[tuple[str, str], tuple[int, object]] = {
    ("POST", f"{H}/exec"): (200, JOB),
    ("GET", f"{H}/exec"): (200, {"data": [JOB], "meta": {"total": 1, "page": 1, "per_page": 20}}),
    ("GET", f"{H}/exec/job_xyz"): (200, JOB),
    ("DELETE", f"{H}/exec/job_xyz"): (204, None),
    ("GET", f"{H}/fs/list"): (200, FS_LIST),
    ("GET", f"{H}/fs/stat"): (200, FS_STAT),
    ("GET", f"{H}/fs/download"): (200, b"\x00binary"),
    ("POST", f"{H}/fs/upload"): (204, None),
    ("DELETE", f"{H}/fs/delete"): (204, None),
    ("POST", f"{H}/fs/mkdir"): (204, None),
    ("POST", f"{H}/terminal/ticket"): (200, TICKET),
    ("POST", f"{H}/desktop/ticket"): (200, TICKET),
    ("GET", f"{H}/tunnels"): (200, {"data": [TUNNEL]}),
    ("POST", f"{H}/tunnels"): (201, TUNNEL),
    ("GET", f"{H}/tunnels/tun_abc"): (200, TUNNEL),
    ("PATCH", f"{H}/tunnels/tun_abc"): (200, TUNNEL),
    ("DELETE", f"{H}/tunnels/tun_abc"): (204, None),
    ("POST", f"{H}/agent/dispatch"): (201, SESSION),
    ("GET", f"{H}/agent/sessions"): (
        200,
        {"data": [SESSION], "meta": {"total": 1, "page": 1, "per_page": 20}},
    ),
    ("GET", f"{H}/agent/sessions/sess_abc"): (200, SESSION),
    ("DELETE", f"{H}/agent/sessions/sess_abc"): (204, None),
    ("GET", f"{PREFIX}/clusters"): (200, {"data": [CLUSTER]}),
    ("POST", f"{PREFIX}/clusters"): (201, CLUSTER),
    ("GET", f"{PREFIX}/clusters/cl_abc"): (200, CLUSTER),
    ("POST", f"{PREFIX}/clusters/cl_abc/start"): (200, CLUSTER),
    ("POST", f"{PREFIX}/clusters/cl_abc/stop"): (200, CLUSTER),
    ("DELETE", f"{PREFIX}/clusters/cl_abc"): (204, None),
    ("GET", f"{PREFIX}/secrets"): (200, {"data": [SECRET]}),
    ("POST", f"{PREFIX}/secrets"): (201, SECRET),
    ("PATCH", f"{PREFIX}/secrets/sec_abc"): (200, SECRET),
    ("DELETE", f"{PREFIX}/secrets/sec_abc"): (204, None),
    ("GET", f"{H}/secrets"): (200, {"data": [SECRET]}),
    ("POST", f"{H}/secrets"): (201, SECRET),
    ("PATCH", f"{H}/secrets/sec_abc"): (200, SECRET),
    ("DELETE", f"{H}/secrets/sec_abc"): (204, None),
}


class HostedApi(BaseHTTPRequestHandler):
    hosts = [host_json(i) for i in range(45)]
    with_meta = True
    seen: list[tuple[str, str, str]] = []  # (method, path, user-agent)
    bodies: list[tuple[str, str, str, bytes]] = []  # (method, path, query, body)

    def log_message(self, *args: object) -> None:
        pass

    def send_json(self, status: int, body: object) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        self.canned()

    def do_PATCH(self) -> None:
        self.canned()

    def do_DELETE(self) -> None:
        self.canned()

    def canned(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.bodies.append((self.command, url.path, url.query, body))
        status, reply = CANNED.get(
            (self.command, url.path), (404, {"error": {"code": "NOT_FOUND", "message": "no"}})
        )
        if isinstance(reply, bytes):
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
        elif reply is None:
            self.send_response(status)
            self.end_headers()
        else:
            self.send_json(status, reply)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if (self.command, url.path) in CANNED:
            self.canned()
            return
        self.seen.append(("GET", url.path, self.headers.get("User-Agent", "")))
        if url.path == f"{PREFIX}/hosts/host_proxyfail":
            payload = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            self.send_response(502)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_json(401, {"error": {"code": "UNAUTHORIZED", "message": "invalid API key"}})
            return
        if url.path == f"{PREFIX}/hosts":
            query = parse_qs(url.query)
            page, per_page = int(query["page"][0]), min(int(query["per_page"][0]), 20)  # clamps at 20
            body: dict[str, object] = {"data": self.hosts[(page - 1) * per_page : page * per_page]}
            if self.with_meta:
                body["meta"] = {"total": len(self.hosts), "page": page, "per_page": per_page}
            self.send_json(200, body)
            return
        for host in self.hosts:
            if url.path == f"{PREFIX}/hosts/{host['id']}":
                self.send_json(200, host)
                return
        self.send_json(404, {"error": {"code": "NOT_FOUND", "message": "host not found"}})


@pytest.fixture
def hosted() -> Iterator[str]:
    HostedApi.seen = []
    HostedApi.bodies = []
    HostedApi.with_meta = True
    with serve_http(HostedApi) as url:
        yield url


async def test_server_root_and_token_work_the_hosted_way(hosted: str) -> None:
    async with OpenComputersClient(hosted, TOKEN) as client:
        host = await client.get_host("host_hosted007")
    assert host.name == "mac-7"
    assert host.model_extra == {"gpu": "m3"}
    method, path, agent = HostedApi.seen[-1]
    assert (method, path) == ("GET", "/api/v1/opencomputers/hosts/host_hosted007")
    assert agent.startswith("oc-tui/")


async def test_a_base_url_with_the_api_prefix_is_not_doubled(hosted: str) -> None:
    async with OpenComputersClient(hosted + "/api/v1/opencomputers/", TOKEN) as client:
        assert (await client.get_host("host_hosted000")).id == "host_hosted000"
        assert client.base_url == hosted


@pytest.mark.parametrize("with_meta", [True, False])
async def test_iter_hosts_walks_every_page_with_or_without_meta(hosted: str, with_meta: bool) -> None:
    HostedApi.with_meta = with_meta
    async with OpenComputersClient(hosted, TOKEN) as client:
        hosts = await client.all_hosts()
    assert [h.id for h in hosts] == [h["id"] for h in HostedApi.hosts]
    pages = [path for _, path, _ in HostedApi.seen]
    assert len(pages) == 3


async def test_wrong_token_is_unauthorized(hosted: str) -> None:
    async with OpenComputersClient(hosted, "mk_wrong") as client:
        with pytest.raises(errors.UnauthorizedError) as info:
            await client.list_hosts()
    assert (info.value.status, info.value.code, info.value.message) == (
        401,
        "UNAUTHORIZED",
        "invalid API key",
    )


async def test_an_html_error_page_still_maps_to_an_error(hosted: str) -> None:
    async with OpenComputersClient(hosted, TOKEN) as client:
        with pytest.raises(errors.AgentUnreachableError) as info:
            await client.get_host("host_proxyfail")
    assert info.value.status == 502
    assert "502 Bad Gateway" in info.value.message


async def test_no_healthz_on_the_hosted_api(hosted: str) -> None:
    async with OpenComputersClient(hosted, TOKEN) as client:
        with pytest.raises(errors.NotFoundError):
            await client.health()


async def test_the_rest_of_the_reference(hosted: str) -> None:
    """One call per endpoint: the right verb, path, query and body, and the answer parsed."""
    h = "host_abc123"
    async with OpenComputersClient(hosted, TOKEN) as c:
        calls = [
            (
                c.run_job(h, "npm", args=["test"], env=["CI=1"]),
                models.Job,
                {"command": "npm", "args": ["test"], "env": ["CI=1"]},
            ),
            (c.list_jobs(h), models.Page, None),
            (c.get_job(h, "job_xyz"), models.Job, None),
            (c.cancel_job(h, "job_xyz"), type(None), None),
            (c.list_dir(h, "/home"), models.FsList, None),
            (c.stat(h, "/home/a"), models.FsStat, None),
            (c.download(h, "/bin/x"), bytes, None),
            (c.delete_path(h, "/tmp/x"), type(None), None),
            (c.mkdir(h, "/tmp/new"), type(None), {"path": "/tmp/new"}),
            (c.terminal_ticket(h), models.Ticket, None),
            (c.desktop_ticket(h), models.Ticket, None),
            (c.list_tunnels(h), list, None),
            (
                c.create_tunnel(h, 3000, slug="my-app-dev"),
                models.Tunnel,
                {"target_port": 3000, "slug": "my-app-dev"},
            ),
            (c.get_tunnel(h, "tun_abc"), models.Tunnel, None),
            (c.update_tunnel(h, "tun_abc", enabled=False), models.Tunnel, {"enabled": False}),
            (c.delete_tunnel(h, "tun_abc"), type(None), None),
            (c.dispatch_agent(h, "fix", max_turns=5), models.AgentSession, {"task": "fix", "max_turns": 5}),
            (c.list_agent_sessions(h), models.Page, None),
            (c.get_agent_session(h, "sess_abc"), models.AgentSession, None),
            (c.cancel_agent_session(h, "sess_abc"), type(None), None),
            (c.list_clusters(), list, None),
            (
                c.create_cluster("c", "llama3:70b", [h]),
                models.Cluster,
                {"name": "c", "model": "llama3:70b", "host_ids": [h]},
            ),
            (c.get_cluster("cl_abc"), models.Cluster, None),
            (c.start_cluster("cl_abc"), models.Cluster, None),
            (c.stop_cluster("cl_abc"), models.Cluster, None),
            (c.delete_cluster("cl_abc"), type(None), None),
            (c.list_secrets(), list, None),
            (
                c.create_secret("GITHUB_TOKEN", "ghp_x"),
                models.Secret,
                {"name": "GITHUB_TOKEN", "value": "ghp_x"},
            ),
            (c.update_secret("sec_abc", description="CI"), models.Secret, {"description": "CI"}),
            (c.delete_secret("sec_abc"), type(None), None),
            (c.list_secrets(h), list, None),
            (c.create_secret("K", "v", host_id=h), models.Secret, {"name": "K", "value": "v"}),
            (c.update_secret("sec_abc", value="v2", host_id=h), models.Secret, {"value": "v2"}),
            (c.delete_secret("sec_abc", host_id=h), type(None), None),
        ]
        for call, kind, body in calls:
            result = await call
            assert isinstance(result, kind), (call, result)
            if body is not None:
                assert json.loads(HostedApi.bodies[-1][3]) == body
        assert await c.download(h, "/bin/x") == b"\x00binary"
        await c.upload(h, "/tmp/up.bin", b"payload")
    method, path, query, raw = HostedApi.bodies[-1]
    assert (method, path, query) == ("POST", f"{H}/fs/upload", "path=%2Ftmp%2Fup.bin")
    assert b"payload" in raw and b'name="path"' in raw
    assert ("GET", f"{H}/fs/stat", "path=%2Fhome%2Fa", b"") in HostedApi.bodies


# --- job output streams of MIOSA's hosted API and of an older oc-server ---------------------------------

JOB_STREAMS = {
    # MIOSA's hosted API: the name only on the event: line, no job_id, no timestamp
    "job_hosted": (
        'event: exec_chunk\ndata: {"stream":"stdout","data":"héllo\\n"}\n\n'
        'event: exec_chunk\ndata: {"stream":"stderr","data":"oops\\n"}\n\n'
        'event: exec_result\ndata: {"exit_code":3,"elapsed_ms":12}\n\n'
    ),
    "job_hosted_error": 'event: exec_error\ndata: {"reason":"timeout","job_id":"job_hosted_error"}\n\n',
    # oc-server before MIOSA's SDKs were served: stdout/stderr with text or b64, exit, [DONE]
    "job_older": (
        'id: 2\nevent: stdout\ndata: {"type":"stdout","job_id":"job_older","data":{"text":"a"},'
        '"timestamp":"2026-01-01T00:00:00.000Z"}\n\n'
        'id: 4\nevent: stdout\ndata: {"type":"stdout","job_id":"job_older","data":{"b64":"/wo="},'
        '"timestamp":"2026-01-01T00:00:00.000Z"}\n\n'
        'id: 5\nevent: exit\ndata: {"type":"exit","job_id":"job_older","data":{"status":"completed",'
        '"exit_code":0,"error":null},"timestamp":"2026-01-01T00:00:01.000Z"}\n\n'
        "data: [DONE]\n\n"
    ),
}


class JobStreams(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        job_id = urlsplit(self.path).path.split("/")[-2]
        payload = JOB_STREAMS[job_id].encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


async def job_items(client: OpenComputersClient, job_id: str) -> tuple[list[OutputChunk], JobExit]:
    """Every item of a job's output: its chunks and its end (which must be last)."""
    async with client.job_output("host_abc123", job_id, reconnect=False) as output:
        items = [item async for item in output]
    end = items[-1]
    chunks = [item for item in items[:-1] if isinstance(item, OutputChunk)]
    assert isinstance(end, JobExit) and len(chunks) == len(items) - 1
    return chunks, end


async def test_job_output_reads_the_hosted_frames_and_an_older_servers() -> None:
    """The client's one job stream parser understands MIOSA's vocabulary (exec_chunk/exec_result/
    exec_error, also without job_id and timestamp) and oc-server's older one (stdout/stderr/exit)."""
    with serve_http(JobStreams) as url:
        async with OpenComputersClient(url, TOKEN) as client:
            chunks, end = await job_items(client, "job_hosted")
            assert [(c.stream, c.data) for c in chunks] == [
                ("stdout", "héllo\n".encode()),
                ("stderr", b"oops\n"),
            ]
            assert (end.status, end.exit_code, end.error) == ("failed", 3, None)
            chunks, end = await job_items(client, "job_hosted_error")
            assert chunks == [] and (end.status, end.exit_code, end.error) == ("failed", None, "timeout")
            chunks, end = await job_items(client, "job_older")
            assert b"".join(c.data for c in chunks) == b"a\xff\n" and end.status == "completed"
            assert [c.event_id for c in chunks] + [end.event_id] == ["2", "4", "5"]
