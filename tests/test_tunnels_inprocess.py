"""Tunnel routes in-process (no server process, no agent): validation, paging, tenants, password storage,
and the proxy's own answers that need no agent (unknown slug, disabled, host offline, auth refusals)."""

from __future__ import annotations

from typing import Any

import httpx
from conftest import InProcess, error

from embedded_server.tunnels.store import check_password, hash_password


async def host_id(inprocess: InProcess) -> str:
    response = await inprocess.api.post("/hosts", json={"name": "box"})
    assert response.status_code == 201
    value: str = response.json()["id"]
    return value


def proxy(inprocess: InProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=inprocess.app), base_url="http://inprocess")


async def test_paging_and_tenants(inprocess: InProcess) -> None:
    box = await host_id(inprocess)
    made: list[dict[str, Any]] = []
    for port in range(3000, 3005):
        response = await inprocess.api.post(f"/hosts/{box}/tunnels", json={"target_port": port})
        assert response.status_code == 201
        made.append(response.json())
    page = (await inprocess.api.get(f"/hosts/{box}/tunnels", params={"page": 2, "per_page": 2})).json()
    assert [t["target_port"] for t in page["data"]] == [3002, 3003]
    assert page["meta"] == {"total": 5, "page": 2, "per_page": 2}
    assert len({t["slug"] for t in made}) == 5
    assert all(len(t["slug"]) == 10 and t["status"] == "enabled" for t in made)
    assert error(await inprocess.other.get(f"/hosts/{box}/tunnels/{made[0]['id']}")) == (404, "NOT_FOUND")
    assert error(await inprocess.other.delete(f"/hosts/{box}/tunnels/{made[0]['id']}")) == (404, "NOT_FOUND")
    assert error(await inprocess.api.patch(f"/hosts/{box}/tunnels/{made[0]['id']}", json={"slug": "x"})) == (
        400,
        "VALIDATION_ERROR",
    )


async def test_password_is_hashed_and_never_returned(inprocess: InProcess) -> None:
    box = await host_id(inprocess)
    made = await inprocess.api.post(
        f"/hosts/{box}/tunnels", json={"target_port": 80, "auth_mode": "password", "password": "hunter2"}
    )
    assert made.status_code == 201 and "hunter2" not in made.text and "password" not in made.json()
    stored = inprocess.app.state.db.one(
        "SELECT password_hash FROM tunnels WHERE id = ?", (made.json()["id"],)
    )
    assert stored["password_hash"].startswith("scrypt$") and "hunter2" not in stored["password_hash"]
    assert check_password(stored["password_hash"], "hunter2") and not check_password(
        stored["password_hash"], "x"
    )
    assert not check_password("garbage", "hunter2")
    assert hash_password("a") != hash_password("a")  # salted
    # switching away from password mode and back keeps the stored password
    tunnel = f"/hosts/{box}/tunnels/{made.json()['id']}"
    assert (await inprocess.api.patch(tunnel, json={"auth_mode": "public"})).status_code == 200
    assert (await inprocess.api.patch(tunnel, json={"auth_mode": "password"})).status_code == 200


async def test_proxy_answers_without_an_agent(inprocess: InProcess) -> None:
    box = await host_id(inprocess)
    public = (
        await inprocess.api.post(f"/hosts/{box}/tunnels", json={"target_port": 80, "slug": "pub"})
    ).json()
    secret = await inprocess.api.post(
        f"/hosts/{box}/tunnels",
        json={"target_port": 80, "slug": "sec", "auth_mode": "password", "password": "p"},
    )
    assert secret.status_code == 201
    async with proxy(inprocess) as web:
        assert error(await web.get("/t/nope/")) == (404, "NOT_FOUND")
        offline = await web.get("/t/pub/")
        assert error(offline) == (502, "HOST_OFFLINE") and "box" in offline.json()["error"]["message"]
        page = await web.get("/t/pub/", headers={"Accept": "text/html"})
        assert page.status_code == 502 and page.headers["content-type"].startswith("text/html")
        await inprocess.api.patch(f"/hosts/{box}/tunnels/{public['id']}", json={"enabled": False})
        assert error(await web.get("/t/pub/x")) == (503, "TUNNEL_DISABLED")
        assert (await web.get("/t/sec/")).status_code == 401
        assert error(await web.get("/t/sec/", auth=("u", "p"))) == (502, "HOST_OFFLINE")  # past the auth
