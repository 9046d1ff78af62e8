"""Route logic in-process (``httpx.ASGITransport`` against ``create_app``): validation, paging, tenants,
IDs and "host must be online" — no server process and no agent, so each test takes milliseconds.
The wire (real server + real agent) is tested by the other server modules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from conftest import InProcess

from embedded_server.db import Database


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def register(api: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    response = await api.post("/hosts", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_validation_errors_are_400_with_the_field_named(inprocess: InProcess) -> None:
    api = inprocess.api
    response = await api.post("/hosts", json={})
    assert error(response) == (400, "VALIDATION_ERROR")
    assert "name" in response.json()["error"]["message"]
    assert error(await api.post("/hosts", json={"name": "a", "colour": "red"})) == (400, "VALIDATION_ERROR")
    bad_json = await api.post("/hosts", content=b"{", headers={"Content-Type": "application/json"})
    assert error(bad_json) == (400, "INVALID_JSON")
    assert error(await api.get("/hosts", params={"per_page": 101})) == (400, "VALIDATION_ERROR")


async def test_paging_newest_first_with_meta(inprocess: InProcess) -> None:
    for n in range(5):
        await register(inprocess.api, f"h{n}")
    page = (await inprocess.api.get("/hosts", params={"page": 2, "per_page": 2})).json()
    assert [h["name"] for h in page["data"]] == ["h2", "h1"]
    assert page["meta"] == {"total": 5, "page": 2, "per_page": 2}
    empty = (await inprocess.api.get("/hosts", params={"page": 9, "per_page": 2})).json()
    assert empty["data"] == [] and empty["meta"]["total"] == 5


async def test_another_tenants_host_is_404_everywhere(inprocess: InProcess) -> None:
    host = await register(inprocess.api, "mine")
    other = inprocess.other
    for method, path in [
        ("GET", f"/hosts/{host['id']}"),
        ("PATCH", f"/hosts/{host['id']}"),
        ("DELETE", f"/hosts/{host['id']}"),
        ("GET", f"/hosts/{host['id']}/exec"),
        ("GET", f"/hosts/{host['id']}/fs/list"),
        ("POST", f"/hosts/{host['id']}/terminal/ticket"),
    ]:
        body = {"name": "x"} if method == "PATCH" else None
        assert error(await other.request(method, path, json=body)) == (404, "NOT_FOUND"), (method, path)
    assert (await other.get("/hosts")).json()["meta"]["total"] == 0
    assert (await inprocess.api.get(f"/hosts/{host['id']}")).json()["status"] == "pending"


async def test_malformed_ids_are_invalid_id(inprocess: InProcess) -> None:
    api = inprocess.api
    assert error(await api.get("/hosts/not-a-host")) == (400, "INVALID_ID")
    assert error(await api.get("/hosts/job_abcdef")) == (400, "INVALID_ID")
    host = await register(api, "h")
    assert error(await api.get(f"/hosts/{host['id']}/exec/host_abcdef")) == (400, "INVALID_ID")
    assert error(await api.get(f"/hosts/{host['id']}/exec/job_abcdef")) == (404, "NOT_FOUND")


async def test_a_host_without_its_agent_is_409(inprocess: InProcess) -> None:
    api = inprocess.api
    host = await register(api, "h")
    assert error(await api.post(f"/hosts/{host['id']}/exec", json={"command": "true"})) == (
        409,
        "HOST_OFFLINE",
    )
    assert error(await api.get(f"/hosts/{host['id']}/fs/list")) == (409, "HOST_OFFLINE")
    assert error(await api.post(f"/hosts/{host['id']}/desktop/ticket")) == (409, "HOST_OFFLINE")
    assert (await api.delete(f"/hosts/{host['id']}")).status_code == 204
    assert error(await api.get(f"/hosts/{host['id']}/fs/stat", params={"path": "/"})) == (409, "HOST_REVOKED")


async def test_body_limit_is_a_property_of_the_route(inprocess: InProcess) -> None:
    api = inprocess.api
    big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    too_big = await api.post("/hosts", content=big, headers={"Content-Type": "application/json"})
    assert error(too_big) == (413, "PAYLOAD_TOO_LARGE")
    host = await register(api, "h")
    upload = await api.post(
        f"/hosts/{host['id']}/fs/upload",
        params={"path": "/tmp/x"},
        content=big,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert error(upload) == (409, "HOST_OFFLINE")  # upload has no body limit: refused for another reason


def test_a_section_migrates_its_own_tables(tmp_path: Path) -> None:
    scripts = ["CREATE TABLE widgets (id TEXT PRIMARY KEY)", "ALTER TABLE widgets ADD COLUMN size INTEGER"]
    db = Database(tmp_path / "oc.db")
    db.migrate_section("widgets", scripts[:1])
    db.migrate_section("widgets", scripts)  # only the new script runs
    db.migrate_section("widgets", scripts)  # nothing to do
    db.insert("widgets", {"id": "w1", "size": 3})
    assert db.one("SELECT * FROM widgets") == {"id": "w1", "size": 3}
    assert db.one("SELECT version FROM section_schema WHERE section = 'widgets'") == {"version": 2}
    db.close()


async def test_numbers_and_headers_the_client_controls_are_range_checked(inprocess: InProcess) -> None:
    """A page past SQLite's integers and a Last-Event-ID no id of ours can have are 400, not 500."""
    api = inprocess.api
    assert error(await api.get("/hosts", params={"page": 2**62})) == (400, "VALIDATION_ERROR")
    assert (await api.get("/hosts", params={"page": 2**31 - 1})).json()["data"] == []
    host = await register(api, "events")
    stream = f"/hosts/{host['id']}/events"
    for bad in ("9" * 5000, str(2**63)):
        response = await api.get(stream, headers={"Last-Event-ID": bad})
        assert error(response) == (400, "VALIDATION_ERROR")
        assert "Last-Event-ID" in response.json()["error"]["message"]


async def test_405_names_every_method_of_the_path(inprocess: InProcess) -> None:
    response = await inprocess.api.put("/hosts")
    assert error(response) == (405, "METHOD_NOT_ALLOWED")
    assert set(response.headers["allow"].split(", ")) >= {"GET", "POST"}


def test_an_error_naming_a_non_utf8_file_name_is_still_json() -> None:
    """The agent hands names that are not UTF-8 on surrogate-escaped; the error body shows the bytes."""
    from embedded_server.errors import error_response

    response = error_response(409, "CONFLICT", "directory not empty: /tmp/caf\udce9")
    assert json.loads(response.body)["error"]["message"] == "directory not empty: /tmp/caf\\xe9"


async def test_rename_and_purge_a_revoked_host(inprocess: InProcess) -> None:
    api = inprocess.api
    host = await register(api, "old-name")
    path = f"/hosts/{host['id']}"
    renamed = await api.patch(path, json={"name": "new-name"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "new-name"
    secret = await api.post(f"{path}/secrets", json={"name": "TOKEN", "value": "v"})
    assert secret.status_code == 201, secret.text

    # only a revoked host can be purged, and only by its tenant
    assert error(await api.delete(path, params={"purge": "true"})) == (409, "CONFLICT")
    assert (await api.delete(path)).status_code == 204
    assert error(await inprocess.other.delete(path, params={"purge": "true"})) == (404, "NOT_FOUND")
    assert (await api.delete(path, params={"purge": "true"})).status_code == 204

    # gone: from the list, by id, and with it what was kept about it; the event says so
    assert error(await api.get(path)) == (404, "NOT_FOUND")
    assert error(await api.delete(path, params={"purge": "true"})) == (404, "NOT_FOUND")
    assert (await api.get("/hosts")).json()["meta"]["total"] == 0
    db = inprocess.app.state.db
    assert db.all("SELECT id FROM secrets WHERE host_id = ?", (host["id"],)) == []
    events = db.all("SELECT type FROM events WHERE host_id = ? ORDER BY id", (host["id"],))
    assert events[-1]["type"] == "host_deleted"
