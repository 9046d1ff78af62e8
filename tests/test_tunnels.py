"""Tunnels end to end: the API (CRUD, validation, the SDK), and the proxy against a real web app
(tests/tunnel_app.py) run on the host, through the real server and agent."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from conftest import AgentProcess, Server, api, error, online_host, rss

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def app_port() -> Iterator[int]:
    """tests/tunnel_app.py running on a free port of 127.0.0.1 (the host's app)."""
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "tunnel_app.py"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/status/200", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    yield port
    child.kill()
    child.wait()


@pytest.fixture
async def box(server: Server, start_agent: Callable[..., AgentProcess]) -> dict[str, Any]:
    return await online_host(server, start_agent, "web-box")


async def create(server: Server, host_id: str, **fields: Any) -> dict[str, Any]:
    async with api(server) as http:
        response = await http.post(f"/hosts/{host_id}/tunnels", json=fields)
    assert response.status_code == 201, response.text
    return response.json()


def tunnel_client(timeout: float = 30) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=timeout)


# --- API -------------------------------------------------------------------------------------------


async def test_crud_and_validation(server: Server, box: dict[str, Any]) -> None:
    host_id = box["id"]
    async with api(server) as http:
        made = (await http.post(f"/hosts/{host_id}/tunnels", json={"target_port": 3000})).json()
        assert made["id"].startswith("tun_") and made["auth_mode"] == "public" and made["enabled"] is True
        assert set(made) >= {
            "id",
            "host_id",
            "slug",
            "target_port",
            "auth_mode",
            "public_url",
            "enabled",
            "created_at",
            "updated_at",
        }
        assert made["public_url"] == f"{server.base_url}/t/{made['slug']}"
        assert "password" not in made and "password_hash" not in made
        listed = (await http.get(f"/hosts/{host_id}/tunnels")).json()
        assert [t["id"] for t in listed["data"]] == [made["id"]]
        got = (await http.get(f"/hosts/{host_id}/tunnels/{made['id']}")).json()
        assert got["slug"] == made["slug"]
        patched = await http.patch(
            f"/hosts/{host_id}/tunnels/{made['id']}", json={"target_port": 3001, "enabled": False}
        )
        assert patched.status_code == 200 and patched.json()["target_port"] == 3001
        assert patched.json()["enabled"] is False
        for body in (
            {"target_port": 0},
            {"target_port": 65536},
            {"target_port": "80"},
            {"target_port": 80, "auth_mode": "secret"},
            {"target_port": 80, "slug": "Not_A_Label"},
            {"target_port": 80, "slug": "-x"},
            {"target_port": 80, "slug": "x" * 64},
            {"target_port": 80, "auth_mode": "password"},
            {"target_port": 80, "colour": "red"},
        ):
            response = await http.post(f"/hosts/{host_id}/tunnels", json=body)
            assert error(response) == (400, "VALIDATION_ERROR"), body
        response = await http.patch(f"/hosts/{host_id}/tunnels/{made['id']}", json={"auth_mode": "password"})
        assert error(response) == (400, "VALIDATION_ERROR")
        named = await http.post(f"/hosts/{host_id}/tunnels", json={"target_port": 80, "slug": "my-app-dev"})
        assert named.status_code == 201 and named.json()["slug"] == "my-app-dev"
        clash = await http.post(f"/hosts/{host_id}/tunnels", json={"target_port": 81, "slug": "my-app-dev"})
        assert error(clash) == (409, "CONFLICT")
        assert error(await http.get(f"/hosts/{host_id}/tunnels/tun_nosuchtunnel00")) == (404, "NOT_FOUND")
        assert error(await http.get(f"/hosts/{host_id}/tunnels/nope")) == (400, "INVALID_ID")
        _, other = server.new_tenant()
        async with api(server, other) as stranger:
            assert error(await stranger.get(f"/hosts/{host_id}/tunnels")) == (404, "NOT_FOUND")
        assert (await http.delete(f"/hosts/{host_id}/tunnels/{made['id']}")).status_code == 204
        assert error(await http.get(f"/hosts/{host_id}/tunnels/{made['id']}")) == (404, "NOT_FOUND")
        async with tunnel_client() as web:
            assert (await web.get(f"{server.base_url}/t/{made['slug']}/")).status_code == 404


async def test_miosa_sdk_tunnels(server: Server, box: dict[str, Any]) -> None:
    from miosa import Miosa
    from miosa.resources.open_computers.types import TunnelCreateParams, TunnelUpdateParams

    sdk = Miosa(api_key=server.token, base_url=f"{server.base_url}/api/v1")
    tunnels = sdk.open_computers.tunnels
    made = await asyncio.to_thread(
        tunnels.create, box["id"], TunnelCreateParams(target_port=8080, slug="sdk-made")
    )
    assert made.slug == "sdk-made" and made.id.startswith("tun_") and made.auth_mode.value == "public"
    listed = await asyncio.to_thread(tunnels.list, box["id"])
    assert [t.id for t in listed.data] == [made.id]
    got = await asyncio.to_thread(tunnels.get, box["id"], made.id)
    assert got.public_url.endswith("/t/sdk-made")
    changed = await asyncio.to_thread(
        tunnels.update, box["id"], made.id, TunnelUpdateParams(auth_mode="tenant_only", enabled=False)
    )
    assert changed.auth_mode.value == "tenant_only" and changed.enabled is False
    await asyncio.to_thread(tunnels.delete, box["id"], made.id)
    assert (await asyncio.to_thread(tunnels.list, box["id"])).data == []


# --- the proxy -------------------------------------------------------------------------------------


async def test_proxy_request_headers_and_prefix(server: Server, box: dict[str, Any], app_port: int) -> None:
    tunnel = await create(server, box["id"], target_port=app_port, slug="echo-app")
    async with tunnel_client() as web:
        response = await web.post(
            f"{tunnel['public_url']}/echo/a%20b/c?x=1&y=%2F",
            content=b"hello",
            headers={
                "X-Custom": "kept",
                "Connection": "keep-alive, X-Drop",
                "X-Drop": "gone",
                "X-Forwarded-Prefix": "/spoofed",
                "Authorization": "Bearer app-own",
            },
        )
        assert response.status_code == 200, response.text
        assert response.headers["x-app"] == "yes"
        assert len(response.headers.get_list("date")) == 1 and len(response.headers.get_list("server")) == 1
        seen = response.json()
        headers = dict(seen["headers"])
        assert (
            seen["method"] == "POST" and seen["raw_path"] == "/echo/a%20b/c" and seen["query"] == "x=1&y=%2F"
        )
        assert seen["size"] == 5 and seen["sha256"] == hashlib.sha256(b"hello").hexdigest()
        assert headers["x-custom"] == "kept" and "x-drop" not in headers
        assert headers["x-forwarded-for"] == "127.0.0.1"
        assert headers["x-forwarded-proto"] == "http"
        assert headers["x-forwarded-host"] == f"127.0.0.1:{server.base_url.rsplit(':', 1)[1]}"
        assert headers["x-forwarded-prefix"] == "/t/echo-app"
        assert headers["authorization"] == "Bearer app-own"  # a public tunnel leaves the app's own auth
        for method in ("GET", "PUT", "PATCH", "DELETE", "OPTIONS"):
            assert (await web.request(method, f"{tunnel['public_url']}/echo/m")).json()["method"] == method
        head = await web.head(f"{tunnel['public_url']}/echo/m")
        assert head.status_code == 200 and head.content == b""
        for code in (404, 418, 500, 503):
            answered = await web.get(f"{tunnel['public_url']}/status/{code}")
            assert answered.status_code == code and answered.text == f"the app says {code}"
        bare = await web.get(tunnel["public_url"] + "?q=1")
        assert bare.status_code == 308 and bare.headers["location"] == "/t/echo-app/?q=1"


async def test_streaming_and_sse_arrive_as_sent(server: Server, box: dict[str, Any], app_port: int) -> None:
    tunnel = await create(server, box["id"], target_port=app_port)
    async with tunnel_client() as web:
        for path, marker in (("/chunks?n=3&delay=0.4", b"chunk"), ("/sse?n=3&delay=0.4", b"data:")):
            times = []
            async with web.stream("GET", tunnel["public_url"] + path) as response:
                assert response.status_code == 200
                async for piece in response.aiter_raw():
                    if marker in piece:
                        times.append(time.monotonic())
            assert len(times) == 3, (path, times)
            assert times[2] - times[0] > 0.6, f"{path}: arrived together, not as sent: {times}"
        async with web.stream("GET", tunnel["public_url"] + "/sse?n=3&delay=0.1") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            text = (await response.aread()).decode()
        assert [json.loads(line[6:])["n"] for line in text.splitlines() if line.startswith("data: ")] == [
            0,
            1,
            2,
        ]


async def test_websocket_echo(server: Server, box: dict[str, Any], app_port: int) -> None:
    tunnel = await create(server, box["id"], target_port=app_port)
    url = tunnel["public_url"].replace("http://", "ws://") + "/ws"
    async with websockets.connect(url, subprotocols=["chat"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "chat"
        await ws.send("hello")
        assert await ws.recv() == "echo: hello"
        await ws.send(b"\x00\x01binary")
        assert await ws.recv() == b"\x00\x01binary"


async def test_auth_modes(server: Server, box: dict[str, Any], app_port: int) -> None:
    host_id = box["id"]
    tenant = await create(server, host_id, target_port=app_port, auth_mode="tenant_only")
    secret = await create(server, host_id, target_port=app_port, auth_mode="password", password="s3cret")
    _, other_token = server.new_tenant()
    async with tunnel_client() as web:
        url = tenant["public_url"] + "/echo/x"
        assert error(await web.get(url)) == (401, "UNAUTHORIZED")
        assert (await web.get(url, headers={"Authorization": f"Bearer {other_token}"})).status_code == 401
        ok = await web.get(url, headers={"Authorization": f"Bearer {server.token}", "Cookie": "a=1"})
        assert ok.status_code == 200
        headers = dict(ok.json()["headers"])
        assert "authorization" not in headers and headers["cookie"] == "a=1"
        # a browser is sent to the login page; the right token sets a cookie that opens the tunnel
        browser = {"Accept": "text/html"}
        redirect = await web.get(url, headers=browser)
        assert redirect.status_code == 303 and redirect.headers["location"].endswith("/__oc_login")
        login = tenant["public_url"] + "/__oc_login"
        assert "<form" in (await web.get(login)).text
        wrong = await web.post(login, data={"token": other_token})
        assert wrong.status_code == 401
        right = await web.post(login, data={"token": server.token})
        assert right.status_code == 303
        cookie = right.cookies["oc_tunnel"]
        seen = await web.get(url, headers={**browser, "Cookie": f"oc_tunnel={cookie}; b=2"})
        assert seen.status_code == 200 and dict(seen.json()["headers"])["cookie"] == "b=2"
        tampered = cookie[:-1] + ("1" if cookie.endswith("0") else "0")  # always differs from the real one
        forged = await web.get(url, headers={"Cookie": f"oc_tunnel={tampered}"})
        assert forged.status_code == 401

        url = secret["public_url"] + "/echo/x"
        challenge = await web.get(url)
        assert challenge.status_code == 401 and challenge.headers["www-authenticate"].startswith("Basic")
        ok = await web.get(url, auth=("anyone", "s3cret"))
        assert ok.status_code == 200 and "authorization" not in dict(ok.json()["headers"])
        assert (await web.get(url, auth=("anyone", "wrong"))).status_code == 401
        for _ in range(10):
            await web.get(url, auth=("anyone", "wrong"))
        limited = await web.get(url, auth=("anyone", "s3cret"))
        assert limited.status_code == 429 and "retry-after" in limited.headers


async def test_disabled_offline_and_nothing_listening(
    server: Server, start_agent: Callable[..., AgentProcess], app_port: int
) -> None:
    registration = server.register("quiet-box")
    host_id = registration["id"]
    agent = start_agent(registration["host_key"])
    await server.wait_for_status(host_id, "online", timeout=15)
    live = await create(server, host_id, target_port=app_port)
    dead = await create(server, host_id, target_port=free_port())
    async with tunnel_client() as web, api(server) as http:
        assert (await web.get(live["public_url"] + "/echo/x")).status_code == 200
        nothing = await web.get(dead["public_url"] + "/")
        assert nothing.status_code == 502 and "nothing is listening" in nothing.json()["error"]["message"]
        assert "quiet-box" in nothing.json()["error"]["message"]
        await http.patch(f"/hosts/{host_id}/tunnels/{live['id']}", json={"enabled": False})
        disabled = await web.get(live["public_url"] + "/echo/x", headers={"Accept": "text/html"})
        assert disabled.status_code == 503 and "disabled" in disabled.text and "<h1>" in disabled.text
        await http.patch(f"/hosts/{host_id}/tunnels/{live['id']}", json={"enabled": True})
        assert (await web.get(live["public_url"] + "/echo/x")).status_code == 200
        agent.stop()
        await server.wait_for_status(host_id, "offline")
        offline = await web.get(live["public_url"] + "/echo/x")
        assert offline.status_code == 502 and "quiet-box" in offline.json()["error"]["message"]
        assert "offline" in offline.json()["error"]["message"]


async def test_delete_and_revoke_end_open_connections(
    server: Server, box: dict[str, Any], app_port: int
) -> None:
    host_id = box["id"]
    tunnel = await create(server, host_id, target_port=app_port)
    url = tunnel["public_url"].replace("http://", "ws://") + "/ws"
    async with tunnel_client() as web, api(server) as http:
        async with web.stream("GET", tunnel["public_url"] + "/sse?n=100&delay=0.2") as response:
            ws = await websockets.connect(url)
            await ws.send("x")
            assert await ws.recv() == "echo: x"
            pieces = response.aiter_raw()
            await anext(pieces)
            assert (await http.delete(f"/hosts/{host_id}/tunnels/{tunnel['id']}")).status_code == 204
            with pytest.raises(httpx.HTTPError):
                async with asyncio.timeout(5):
                    async for _ in pieces:
                        pass
            async with asyncio.timeout(5):
                with pytest.raises(websockets.ConnectionClosed):
                    while True:
                        await ws.recv()
        again = await create(server, host_id, target_port=app_port)
        async with web.stream("GET", again["public_url"] + "/sse?n=100&delay=0.2") as response:
            pieces = response.aiter_raw()
            await anext(pieces)
            assert (await http.delete(f"/hosts/{host_id}")).status_code == 204
            with pytest.raises(httpx.HTTPError):
                async with asyncio.timeout(5):
                    async for _ in pieces:
                        pass
        gone = (await http.get(f"/hosts/{host_id}/tunnels/{again['id']}")).json()
        assert gone["enabled"] is False
        assert (await web.get(again["public_url"] + "/echo/x")).status_code in (502, 503)


async def test_large_upload_and_download_in_bounded_memory(
    server: Server, start_agent: Callable[..., AgentProcess], app_port: int
) -> None:
    registration = server.register("bulk-box")
    agent = start_agent(registration["host_key"])
    await server.wait_for_status(registration["id"], "online", timeout=15)
    tunnel = await create(server, registration["id"], target_port=app_port)
    size = 100 * 1024 * 1024
    assert server.process is not None
    pids = {"server": server.process.pid, "agent": agent.pid}
    before = {name: rss(pid) for name, pid in pids.items()}
    peak = dict(before)
    sampling = True

    async def sample() -> None:
        while sampling:
            for name, pid in pids.items():
                peak[name] = max(peak[name], rss(pid))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    block = bytes(range(256)) * 4096  # 1 MiB
    expected = hashlib.sha256()
    for _ in range(size // len(block)):
        expected.update(block)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(size // len(block)):
            yield block

    async with tunnel_client(timeout=120) as web:
        uploaded = await web.post(tunnel["public_url"] + "/echo/up", content=body())
        assert uploaded.status_code == 200, uploaded.text
        assert uploaded.json()["size"] == size and uploaded.json()["sha256"] == expected.hexdigest()
        received = 0
        async with web.stream("GET", tunnel["public_url"] + f"/big?size={size}") as response:
            assert response.headers["content-length"] == str(size)
            async for chunk in response.aiter_raw():
                received += len(chunk)
        assert received == size
    sampling = False
    await sampler
    for name in pids:
        grown = peak[name] - before[name]
        assert grown < 40 * 1024 * 1024, f"{name} grew by {grown / 2**20:.1f} MiB moving 100 MiB"


async def test_many_requests_while_a_large_download_runs(
    server: Server, box: dict[str, Any], app_port: int
) -> None:
    tunnel = await create(server, box["id"], target_port=app_port)
    async with tunnel_client(timeout=60) as web:
        async with web.stream("GET", tunnel["public_url"] + f"/big?size={1024 * 2**20}") as big:
            pieces = big.aiter_raw()
            await anext(pieces)  # the download is under way; its reader now stalls on purpose

            async def one(i: int) -> float:
                started = time.monotonic()
                response = await web.get(tunnel["public_url"] + f"/echo/{i}")
                assert response.status_code == 200 and response.json()["path"] == f"/echo/{i}"
                return time.monotonic() - started

            async with asyncio.timeout(30):
                durations = await asyncio.gather(*(one(i) for i in range(50)))
        assert max(durations) < 20, f"slowest of 50 requests took {max(durations):.1f} s"


async def test_inspector_records_streams_live_and_replays(
    server: Server, box: dict[str, Any], app_port: int
) -> None:
    host_id = box["id"]
    tunnel = await create(server, host_id, target_port=app_port)
    base = f"/hosts/{host_id}/tunnels/{tunnel['id']}/requests"
    async with tunnel_client() as web, api(server) as http:
        live: list[dict[str, Any]] = []

        async def follow() -> None:
            async with http.stream("GET", base + "/stream") as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    if line.startswith("data: {"):
                        live.append(json.loads(line[6:])["data"])

        follower = asyncio.create_task(follow())
        await asyncio.sleep(0.3)
        body = json.dumps({"hello": "world"}).encode()
        sent = await web.post(
            tunnel["public_url"] + "/echo/inspect?q=1",
            content=body,
            headers={
                "Content-Type": "application/json",
                "Authorization": "Bearer app-secret",
                "Cookie": "s=1",
            },
        )
        assert sent.status_code == 200
        await web.get(tunnel["public_url"] + f"/big?size={64 * 1024}")
        async with asyncio.timeout(10):
            while sum(1 for r in live if r["complete"]) < 2:
                await asyncio.sleep(0.05)
        follower.cancel()

        records = (await http.get(base)).json()["data"]
        assert [r["target"] for r in records] == [f"/big?size={64 * 1024}", "/echo/inspect?q=1"]
        big, posted = records
        assert posted["method"] == "POST" and posted["status"] == 200 and posted["complete"]
        assert posted["request_body"] == body.decode() and posted["request_bytes"] == len(body)
        headers = dict(posted["request_headers"])
        assert headers["authorization"] == "Bearer ***" and headers["cookie"] == "***"
        assert json.loads(posted["response_body"])["size"] == len(body)
        assert posted["client"] == "127.0.0.1" and posted["duration_ms"] >= 0
        assert (
            big["response_bytes"] == 64 * 1024
            and len(big["response_body"].encode("utf-8", "replace")) >= 10240
        )
        assert big["response_body_truncated"] is True

        replayed = await http.post(f"{base}/{posted['id']}/replay")
        assert replayed.status_code == 201, replayed.text
        again = replayed.json()
        assert again["replay_of"] == posted["id"] and again["status"] == 200
        assert json.loads(again["response_body"])["sha256"] == hashlib.sha256(body).hexdigest()
        assert (await http.get(base)).json()["data"][0]["id"] == again["id"]
        assert error(await http.post(f"{base}/999999/replay")) == (404, "NOT_FOUND")
