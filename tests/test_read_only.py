"""Read-only tokens: every mutating route of the app refuses them with 403 FORBIDDEN — found by walking
the app's route table, so a route added later (by any section) cannot be forgotten — while reads work;
``oc-server token --read-only`` mints one."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from conftest import API
from fastapi.routing import APIRoute, APIWebSocketRoute

from embedded_server import auth
from embedded_server.auth import READ_METHODS, create_token, token_scope
from embedded_server.cli import main as server_main
from embedded_server.db import Database
from oc_tui.api.models import ID_PREFIXES

# Routes that no API token opens, with what keeps a read-only token's holder out of them instead.
NOT_TOKEN_ROUTES = {
    "/opencomputers/ws/agent": "a host key, not an API token",
    "/opencomputers/ws/agent/stream": "a host key, not an API token",
    "/opencomputers/ws/terminal": "a ticket, which only a POST (refused) mints",
    "/opencomputers/ws/desktop": "a ticket, which only a POST (refused) mints",
    "/t/{slug}": "a tunnel's own auth (the host's app), not the API",
    "/t/{slug}/{path:path}": "a tunnel's own auth (the host's app), not the API",
}


def walk(routes: list[Any]) -> list[tuple[str, Any]]:
    """``(path, route)`` of every route of the app, included routers' (FastAPI's lazy ones) too."""
    found: list[tuple[str, Any]] = []
    for route in routes:
        if hasattr(route, "effective_candidates"):  # an included router (fastapi >= 0.16x)
            for candidate in route.effective_candidates():
                if hasattr(candidate, "effective_candidates"):
                    found.extend(walk([candidate]))
                else:
                    original = candidate.original_route
                    found.append((candidate.path or getattr(original, "path", ""), original))
        else:
            found.append((route.path, route))
    return found


def fill(path: str, host_id: str) -> str:
    """The path with a well-formed value for each parameter (IDs with their prefix)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        if name == "host_id":
            return host_id
        kind = name.removesuffix("_id")
        return ID_PREFIXES[kind] + "abcdef123" if name.endswith("_id") and kind in ID_PREFIXES else "x"

    return re.sub(r"\{([^}]+)\}", value, path)


async def test_every_mutating_route_refuses_a_read_only_token(inprocess) -> None:
    app = inprocess.app
    host = (await inprocess.api.post("/hosts", json={"name": "ro-box"})).json()
    token = create_token(app.state.db, inprocess.tenant_id, "ro", read_only=True)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {token}"}
    checked, reads = 0, 0
    async with httpx.AsyncClient(transport=transport, base_url="http://inprocess", headers=headers) as client:
        for path, route in walk(app.routes):
            if path in NOT_TOKEN_ROUTES or isinstance(route, APIWebSocketRoute):
                assert path in NOT_TOKEN_ROUTES, f"new WebSocket route {path}: say what keeps read-only out"
                continue
            if not isinstance(route, APIRoute):
                continue  # the OpenAPI document
            for method in sorted(route.methods - READ_METHODS):
                url = fill(path, host["id"])
                response = await client.request(method, url, json={})
                if getattr(route.endpoint, "__oc_reads_only__", False):
                    assert response.status_code != 403, (method, path)
                    continue
                assert response.status_code == 403, (method, path, response.text)
                assert response.json()["error"]["code"] == "FORBIDDEN"
                checked += 1
        assert checked >= 25  # the walk found the routes (hosts, jobs, fs, sessions, tunnels, groups …)
        for path in ("/hosts", f"/hosts/{host['id']}", "/groups", "/fanouts", "/tags", "/token"):
            response = await client.get(API + path)
            assert response.status_code == 200, (path, response.text)
            reads += 1
        assert (await client.get(API + "/token")).json()["read_only"] is True
    assert (await inprocess.api.get("/token")).json()["read_only"] is False
    assert reads == 6


def test_server_cli_mints_a_read_only_token(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert server_main(["token", "--read-only", "--data-dir", str(tmp_path)]) == 0
    token = capsys.readouterr().out.strip()
    db = Database(tmp_path / "oc-server.db")
    try:
        scope = token_scope(db, token)
        admin = (tmp_path / "admin-token").read_text().strip()
        assert scope is not None and scope[1] is True
        assert scope[0] == auth.tenant_for_token(db, admin)  # the admin's tenant, reading only
        assert token_scope(db, admin) == (scope[0], False)
    finally:
        db.close()


async def test_tui_on_a_read_only_token_disables_every_mutating_key(server) -> None:
    from conftest import SIZE, notifications, rows, wait_until

    from oc_tui.app import OcTuiApp
    from oc_tui.config import Profile
    from oc_tui.screens.run_command import RunCommandScreen

    server.register("look-only")
    db = Database(server.data_dir / "oc-server.db")
    try:
        with db.transaction():
            token = create_token(db, server.tenant_id, "ro", read_only=True)
    finally:
        db.close()
    for app in (
        OcTuiApp(Profile(name="test", base_url=server.base_url, token=token, embedded=False)),
        OcTuiApp(
            Profile(name="test", base_url=server.base_url, token=server.token, embedded=False), read_only=True
        ),
    ):
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: rows(app) == {"look-only": "pending"}, "the host")  # noqa: B023
            await wait_until(pilot, lambda: app.read_only is not None, "read-only known")  # noqa: B023
            fleet = app.fleet
            fleet.table.focus()
            await pilot.press("space", "x", "n", "l")
            await pilot.pause()
            assert app.screen is fleet and not isinstance(app.screen, RunCommandScreen)
            for action in ("run_on_marked", "register", "edit_labels", "revoke"):
                assert fleet.check_action(action, ()) is None  # disabled: greyed out in the footer
            assert fleet.check_action("filter", ()) is True
            info = str(fleet.query_one("#fleet-info").render())
            assert "read-only (token)" in info or "read-only (--read-only)" in info
            assert any("are off" in message for _, message in notifications(app))  # noqa: B023
            for view, actions in (
                ("secrets", ("new_secret", "edit_secret", "delete_secret")),
                ("agents", ("cancel_session",)),
                ("clusters", ("new_cluster", "start_cluster", "stop_cluster", "delete_cluster")),
            ):
                await pilot.press("colon", *view, "enter")
                await wait_until(pilot, lambda: app.screen is not fleet, f":{view}")  # noqa: B023
                for action in actions:
                    assert app.screen.check_action(action, ()) is None, (view, action)
                await pilot.press("escape")
                await wait_until(pilot, lambda: app.screen is fleet, "back on the fleet")  # noqa: B023
