"""Tunnels end to end: the API (CRUD, validation, the SDK), and the proxy against a real web app
(tests/tunnel_app.py) run on the host, through the real server and agent."""

from __future__ import annotations

import asyncio
import base64
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
from conftest import API, AgentProcess, Server, api, error, online_host, rss

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
        assert set(made) >= {"id", "host_id", "slug", "target_port", "auth_mode", "public_url", "enabled",
                             "created_at", "updated_at"}
        assert made["public_url"] == f"{server.base_url}/t/{made['slug']}"
        assert "password" not in made and "password_hash" not in made
        listed = (await http.get(f"/hosts/{host_id}/tunnels")).json()
        assert [t["id"] for t in listed["data"]] == [made["id"]]
        got = (await http.get(f"/hosts/{host_id}/tunnels/{made['id']}")).json()
        assert got["slug"] == made["slug"]
        patched = await http.patch(f"/hosts/{host_id}/tunnels/{made['id']}", json={"target_port": 3001, "enabled": False})
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
    made = await asyncio.to_thread(tunnels.create, box["id"], TunnelCreateParams(target_port=8080, slug="sdk-made"))
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
            headers={"X-Custom": "kept", "Connection": "keep-alive, X-Drop", "X-Drop": "gone",
                     "X-Forwarded-Prefix": "/spoofed", "Authorization": "Bearer app-own"},
        )
        assert response.status_code == 200, response.text
        assert response.headers["x-app"] == "yes"
        seen = response.json()
        headers = dict(seen["headers"])
        assert seen["method"] == "POST" and seen["raw_path"] == "/echo/a%20b/c" and seen["query"] == "x=1&y=%2F"
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
