"""The hosts API of the real embedded server over HTTP: behaviour, errors, isolation and event streams."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import error as api_error

from embedded_server.app import create_app
from embedded_server.settings import Settings


def error(response: httpx.Response) -> tuple[int, str]:
    """``(status, code)`` of an error whose object holds exactly ``code`` and ``message``."""
    return api_error(response, exact=True)


@pytest.fixture
def api(server: Any) -> Any:
    with server.client() as client:
        yield client


# --- auth --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer oc_wrong"}, {"Authorization": "Basic abc"}]
)
def test_requests_without_a_valid_token_are_401(server: Any, headers: dict[str, str]) -> None:
    for method, path in [
        ("GET", "/hosts"),
        ("POST", "/hosts"),
        ("GET", "/hosts/events"),
        ("GET", "/hosts/host_abc"),
    ]:
        response = httpx.request(method, server.api_url + path, headers=headers)
        assert error(response) == (401, "UNAUTHORIZED")


def test_healthz_needs_no_token(server: Any) -> None:
    """Liveness without a token; it also says where others reach this plane and which plane it is."""
    body = httpx.get(f"{server.base_url}/healthz").json()
    assert body == {
        "status": "ok",
        "version": "0.1.0",
        "public_url": server.base_url,
        "plane_id": (server.data_dir / "plane-id").read_text().strip(),
    }
    assert body["plane_id"].startswith("cp_") and len(body["plane_id"]) == 33


def test_only_hashes_of_tokens_and_host_keys_are_stored(server: Any) -> None:
    host = server.register("secretive")
    raw = b"".join(p.read_bytes() for p in server.data_dir.glob("oc-server.db*"))
    assert host["id"].encode() in raw  # the search works: the file holds what it should
    for secret in (server.token, server.admin_token, host["host_key"]):
        assert secret.encode() not in raw


def test_state_files_are_private(server: Any) -> None:
    assert stat.S_IMODE(server.data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((server.data_dir / "admin-token").stat().st_mode) == 0o600
    state = server.data_dir / "server.json"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert json.loads(state.read_text()) == {
        "pid": server.process.pid,
        "port": int(server.base_url.rsplit(":", 1)[1]),
        "base_url": server.base_url,
    }


def test_cli_prints_the_admin_token_and_adds_tenants(server: Any) -> None:
    def cli(*args: str) -> str:
        cmd = [sys.executable, "-m", "embedded_server", *args, "--data-dir", str(server.data_dir)]
        return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=30).stdout.strip()

    assert cli("token") == server.admin_token
    tenant_id, token = cli("tenant", "add", "acme").split()
    assert tenant_id.startswith("t_") and token.startswith("oc_")
    hosts = httpx.get(f"{server.api_url}/hosts", headers=server.headers(token)).json()
    assert hosts == {"data": [], "meta": {"total": 0, "page": 1, "per_page": 20}}


def test_a_fresh_server_bootstraps_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    cmd = [sys.executable, "-m", "embedded_server", "serve", "--data-dir", str(data_dir), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("oc-server listening on http://127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        token = (data_dir / "admin-token").read_text().strip()
        assert (
            httpx.get(
                f"http://127.0.0.1:{port}/api/v1/opencomputers/hosts",
                headers={"Authorization": f"Bearer {token}"},
            ).status_code
            == 200
        )

        taken = subprocess.run([*cmd[:-1], str(port)], capture_output=True, text=True, timeout=30)
        assert taken.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in taken.stderr
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    assert not (data_dir / "server.json").exists()


# --- register, get, list -----------------------------------------------------------------------------


def test_register_returns_the_host_key_once(server: Any, api: httpx.Client) -> None:
    response = api.post("/hosts", json={"name": "my-mac", "region": "us-east", "labels": {"env": "prod"}})
    assert response.status_code == 201
    reg = response.json()
    assert reg["id"].startswith("host_") and len(reg["id"]) == 25
    assert reg["host_key"].startswith("hk_") and len(reg["host_key"]) >= 32
    assert (reg["name"], reg["region"], reg["labels"], reg["status"]) == (
        "my-mac",
        "us-east",
        {"env": "prod"},
        "pending",
    )
    assert reg["tenant_id"] == server.tenant_id
    assert reg["created_at"] == reg["updated_at"] and reg["created_at"].endswith("Z")

    shown = api.get(f"/hosts/{reg['id']}").json()
    assert "host_key" not in shown
    assert shown == {k: v for k, v in reg.items() if k != "host_key"}
    assert "host_key" not in api.get("/hosts").json()["data"][0]


def test_list_paginates_newest_first_across_pages(server: Any, api: httpx.Client) -> None:
    ids = [api.post("/hosts", json={"name": f"node-{i:03d}"}).json()["id"] for i in range(130)]
    newest_first = ids[::-1]

    first = api.get("/hosts", params={"per_page": 100}).json()
    assert first["meta"] == {"total": 130, "page": 1, "per_page": 100}
    second = api.get("/hosts", params={"per_page": 100, "page": 2}).json()
    assert second["meta"] == {"total": 130, "page": 2, "per_page": 100}
    assert [h["id"] for h in first["data"] + second["data"]] == newest_first

    default = api.get("/hosts").json()
    assert default["meta"] == {"total": 130, "page": 1, "per_page": 20}
    assert [h["id"] for h in default["data"]] == newest_first[:20]
    assert api.get("/hosts", params={"page": 99}).json()["data"] == []


@pytest.mark.parametrize(
    "params", [{"per_page": 101}, {"per_page": 0}, {"page": 0}, {"page": -1}, {"page": "two"}]
)
def test_out_of_range_pagination_is_a_validation_error(api: httpx.Client, params: dict[str, Any]) -> None:
    response = api.get("/hosts", params=params)
    assert error(response) == (400, "VALIDATION_ERROR")
    assert next(iter(params)) in response.json()["error"]["message"]


# --- update and revoke -------------------------------------------------------------------------------


def test_patch_changes_only_the_given_fields(server: Any, api: httpx.Client) -> None:
    host = server.register("old", region="eu-west", labels={"a": "1", "b": "2"})
    renamed = api.patch(f"/hosts/{host['id']}", json={"name": "new"}).json()
    assert (renamed["name"], renamed["region"], renamed["labels"]) == ("new", "eu-west", {"a": "1", "b": "2"})
    assert renamed["updated_at"] >= host["updated_at"]

    relabelled = api.patch(f"/hosts/{host['id']}", json={"labels": {"c": "3"}}).json()
    assert relabelled["labels"] == {"c": "3"}  # the map is replaced, not merged

    cleared = api.patch(f"/hosts/{host['id']}", json={"region": None}).json()
    assert cleared["region"] is None and cleared["name"] == "new"
    assert api.patch(f"/hosts/{host['id']}", json={}).json() == cleared

    response = api.patch(f"/hosts/{host['id']}", json={"name": None})
    assert error(response) == (400, "VALIDATION_ERROR") and "name" in response.json()["error"]["message"]


def test_revoke_is_204_final_and_idempotent(server: Any, api: httpx.Client) -> None:
    host = server.register("gone")
    response = api.delete(f"/hosts/{host['id']}")
    assert response.status_code == 204 and response.content == b""
    revoked = api.get(f"/hosts/{host['id']}").json()
    assert revoked["status"] == "revoked" and revoked["status_changed_at"] >= host["created_at"]
    assert api.delete(f"/hosts/{host['id']}").status_code == 204
    assert error(api.patch(f"/hosts/{host['id']}", json={"name": "zombie"})) == (409, "HOST_REVOKED")
    assert error(api.get(f"/hosts/{host['id']}/sysinfo")) == (409, "HOST_REVOKED")


# --- errors ------------------------------------------------------------------------------------------


def test_another_tenants_host_is_404_everywhere(server: Any, api: httpx.Client) -> None:
    _, other_token = server.new_tenant()
    theirs = server.register("theirs", token=other_token)
    hid = theirs["id"]
    for method, path in [
        ("GET", f"/hosts/{hid}"),
        ("PATCH", f"/hosts/{hid}"),
        ("DELETE", f"/hosts/{hid}"),
        ("GET", f"/hosts/{hid}/events"),
        ("GET", f"/hosts/{hid}/sysinfo"),
    ]:
        response = api.request(method, path, json={} if method == "PATCH" else None)
        assert error(response) == (404, "NOT_FOUND"), (method, path)
    assert api.get("/hosts").json()["meta"]["total"] == 0
    assert server.get_host(hid, token=other_token)["status"] == "pending"  # untouched by the DELETE


@pytest.mark.parametrize(
    "host_id", ["nope", "host_", "host_a-b", "job_abcdef", "HOST_abcdef", "host_" + "a" * 65]
)
def test_malformed_ids_are_invalid_id(api: httpx.Client, host_id: str) -> None:
    for method, suffix in [("GET", ""), ("DELETE", ""), ("GET", "/events"), ("GET", "/sysinfo")]:
        assert error(api.request(method, f"/hosts/{host_id}{suffix}")) == (400, "INVALID_ID")


def test_json_sent_as_a_form_says_which_content_type_to_use(api: httpx.Client) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}  # what `curl -d` sends
    resp = api.post("/hosts", content=b'{"name": "x"}', headers=headers)
    assert error(resp) == (400, "VALIDATION_ERROR")
    assert "Content-Type: application/json" in resp.json()["error"]["message"]


def test_malformed_json_is_invalid_json(api: httpx.Client) -> None:
    headers = {"Content-Type": "application/json"}
    for body in [b'{"name":', b"not json", b'{"name": "x",}']:
        assert error(api.post("/hosts", content=body, headers=headers)) == (400, "INVALID_JSON")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": 5}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": "ok", "gpu": "m3"}, "gpu"),
        ({"name": "ok", "labels": ["a"]}, "labels"),
        ({"name": "ok", "labels": {"k": 1}}, "labels"),
        ({"name": "ok", "labels": {f"k{i}": "v" for i in range(65)}}, "labels"),
        ({"name": "ok", "labels": {"k": "v" * 257}}, "labels"),
        ({"name": "ok", "labels": {"bad key!": "v"}}, "labels"),
        ({"name": "ok", "region": "Not A Slug"}, "region"),
        ([], "object"),
    ],
)
def test_bad_fields_are_validation_errors_naming_the_field(api: httpx.Client, body: Any, field: str) -> None:
    response = api.post("/hosts", json=body)
    assert error(response) == (400, "VALIDATION_ERROR")
    assert field in response.json()["error"]["message"]


def test_patch_validates_like_register(server: Any, api: httpx.Client) -> None:
    host = server.register("v")
    response = api.patch(f"/hosts/{host['id']}", json={"status": "online"})
    assert error(response) == (400, "VALIDATION_ERROR") and "status" in response.json()["error"]["message"]


def test_unknown_routes_and_methods(api: httpx.Client, server: Any) -> None:
    assert error(api.get("/nothing-here")) == (404, "NOT_FOUND")
    assert error(httpx.get(f"{server.base_url}/nothing")) == (404, "NOT_FOUND")
    response = api.put("/hosts")
    assert error(response) == (405, "METHOD_NOT_ALLOWED")
    assert "GET" in response.headers["allow"]
    assert error(api.post("/hosts/events")) == (405, "METHOD_NOT_ALLOWED")


def test_bodies_over_one_mebibyte_are_413(api: httpx.Client) -> None:
    big = json.dumps({"name": "x", "labels": {"k": "v" * (1024 * 1024)}}).encode()
    assert error(api.post("/hosts", content=big, headers={"Content-Type": "application/json"})) == (
        413,
        "PAYLOAD_TOO_LARGE",
    )

    def chunks() -> Any:  # no Content-Length: the limit is enforced while reading
        for _ in range(20):
            yield b" " * 65536

    response = api.post("/hosts", content=chunks(), headers={"Content-Type": "application/json"})
    assert error(response) == (413, "PAYLOAD_TOO_LARGE")


async def test_unexpected_failures_are_500_without_details(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/boom")
    assert error(response) == (500, "INTERNAL_ERROR")
    assert "secret" not in response.text and "Traceback" not in response.text


# --- event streams -----------------------------------------------------------------------------------


class Sse:
    """A real SSE connection: frames as dicts with ``id``, ``event``, ``data`` (JSON) or ``comment``."""

    def __init__(self, lines: AsyncIterator[str]) -> None:
        self._lines = lines

    async def next(self, timeout: float = 5.0, comments: bool = False) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                frame: dict[str, Any] = {}
                async for line in self._lines:
                    if not line:
                        break
                    field, _, value = line.partition(":")
                    frame[field or "comment"] = value.strip()
                if "data" in frame:
                    frame["data"] = json.loads(frame["data"])
                    return frame
                if comments and "comment" in frame:
                    return frame

    async def events(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        return [await self.next(timeout) for _ in range(count)]


@asynccontextmanager
async def sse(
    server: Any, path: str, token: str | None = None, last_id: str | None = None
) -> AsyncIterator[Sse]:
    headers = server.headers(token) | ({"Last-Event-ID": last_id} if last_id else {})
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client:
        async with client.stream("GET", server.api_url + path, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            yield Sse(response.aiter_lines())


async def test_tenant_stream_carries_events_as_they_happen(server: Any, api: httpx.Client) -> None:
    async with sse(server, "/hosts/events") as stream:
        host = server.register("live")
        registered = await stream.next()
        assert registered["event"] == "host_registered" and registered["id"].isdigit()
        data = registered["data"]
        assert (data["type"], data["host_id"]) == ("host_registered", host["id"])
        assert data["data"]["host"]["name"] == "live" and "host_key" not in data["data"]["host"]
        assert data["timestamp"].endswith("Z")

        api.patch(f"/hosts/{host['id']}", json={"labels": {"x": "y"}})
        updated = await stream.next()
        assert (updated["event"], updated["data"]["data"]["host"]["labels"]) == ("host_updated", {"x": "y"})

        api.delete(f"/hosts/{host['id']}")
        change = await stream.next()
        assert change["event"] == "status_change"
        assert change["data"]["data"] == {"status": "revoked", "previous": "pending"}
        assert int(registered["id"]) < int(updated["id"]) < int(change["id"])


async def test_streams_send_keepalives(server: Any) -> None:
    async with sse(server, "/hosts/events") as stream:
        frame = await stream.next(timeout=5, comments=True)
        assert frame["comment"] in ("connected", "keepalive")
        assert (await stream.next(timeout=5, comments=True))["comment"] == "keepalive"


async def test_host_stream_only_carries_that_host(server: Any, api: httpx.Client) -> None:
    mine, other = server.register("mine"), server.register("other")
    async with sse(server, f"/hosts/{mine['id']}/events") as stream:
        api.patch(f"/hosts/{other['id']}", json={"name": "other-2"})
        api.patch(f"/hosts/{mine['id']}", json={"name": "mine-2"})
        event = await stream.next()
        assert (event["data"]["host_id"], event["event"]) == (mine["id"], "host_updated")


async def test_streams_never_leak_another_tenants_events(server: Any) -> None:
    _, other_token = server.new_tenant()
    async with (
        sse(server, "/hosts/events") as mine,
        sse(server, "/hosts/events", token=other_token) as theirs,
    ):
        server.register("theirs", token=other_token)
        ours = server.register("ours")
        assert (await mine.next())["data"]["host_id"] == ours["id"]
        assert (await theirs.next())["data"]["data"]["host"]["name"] == "theirs"


async def test_last_event_id_resumes_without_loss_or_duplicates(server: Any, api: httpx.Client) -> None:
    host = server.register("resume")
    async with sse(server, "/hosts/events") as stream:
        for i in range(3):
            api.patch(f"/hosts/{host['id']}", json={"name": f"n{i}"})
        seen = await stream.events(3)
    for i in range(3, 6):  # written while no stream is open
        api.patch(f"/hosts/{host['id']}", json={"name": f"n{i}"})
    async with sse(server, "/hosts/events", last_id=seen[1]["id"]) as stream:
        replayed = await stream.events(4)  # n2 (after id n1) plus the three missed
        api.patch(f"/hosts/{host['id']}", json={"name": "n6"})
        live = await stream.next()
    names = [e["data"]["data"]["host"]["name"] for e in replayed + [live]]
    assert names == ["n2", "n3", "n4", "n5", "n6"]
    ids = [int(e["id"]) for e in replayed + [live]]
    assert ids == sorted(set(ids)) and ids[0] == int(seen[2]["id"])


async def test_a_burst_during_replay_is_delivered_once_each(server: Any, api: httpx.Client) -> None:
    host = server.register("burst")
    async with sse(server, f"/hosts/{host['id']}/events") as stream:
        api.patch(f"/hosts/{host['id']}", json={"name": "first"})
        first = await stream.next()

    async def writer() -> None:
        async with httpx.AsyncClient(base_url=server.api_url, headers=server.headers()) as client:
            for i in range(40):
                await client.patch(f"/hosts/{host['id']}", json={"name": f"b{i}"})

    writing = asyncio.create_task(writer())
    async with sse(server, f"/hosts/{host['id']}/events", last_id=first["id"]) as stream:
        events = await stream.events(40, timeout=10)
    await writing
    assert [e["data"]["data"]["host"]["name"] for e in events] == [f"b{i}" for i in range(40)]


def test_events_is_never_taken_for_a_host_id(api: httpx.Client) -> None:
    assert error(api.patch("/hosts/events", json={})) == (400, "INVALID_ID")
    assert error(api.delete("/hosts/events")) == (400, "INVALID_ID")
