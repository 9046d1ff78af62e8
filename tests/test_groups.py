"""Host groups and server-side fan-out: group CRUD and tag queries in process; fan-out against the real
server and real agents (offline members, batch size, stop on failure, the combined stream, cancel-all);
MIOSA's Python SDK's group methods unchanged."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from conftest import api, error, online_host

API_HOSTS = "/hosts"


async def register(client: Any, name: str, **labels: str) -> str:
    response = await client.post(API_HOSTS, json={"name": name, "labels": labels})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


# --- groups, in process --------------------------------------------------------------------------------


async def test_group_crud_members_and_tag_queries(inprocess) -> None:
    c = inprocess.api
    web1 = await register(c, "web-1", role="web")
    db1 = await register(c, "db-1", role="db", env="prod")

    # a tag query is evaluated when used: a host that gains a label joins
    response = await c.post(
        "/groups", json={"name": "webs", "kind": "tag_query", "tag_query": {"or": ["role=web"]}}
    )
    assert response.status_code == 201, response.text
    webs = response.json()["group"]
    assert (webs["kind"], webs["member_count"], webs["tag_query"]) == ("tag_query", 1, {"or": ["role=web"]})
    await c.patch(f"/hosts/{db1}", json={"labels": {"role": "web", "env": "prod"}})
    detail = (await c.get(f"/groups/{webs['id']}")).json()
    assert [m["name"] for m in detail["members"]] == ["db-1", "web-1"]
    assert detail["group"]["member_count"] == 2 and detail["members"][0]["tags"] == ["env=prod", "role=web"]
    nested = {"and": ["env", {"or": ["role=web", "role=db"]}]}
    prod = (await c.post("/groups", json={"name": "prod", "kind": "tag_query", "tag_query": nested})).json()
    assert prod["group"]["member_count"] == 1

    # explicit: members one by one, many at once, removal
    ex = (await c.post("/groups", json={"name": "mine", "host_ids": [web1]})).json()["group"]
    assert ex["member_count"] == 1
    one = await c.post(f"/groups/{ex['id']}/members/{db1}")
    assert one.json() == {"ok": True, "host_id": db1, "group_id": ex["id"]}
    many = await c.post(f"/groups/{ex['id']}/members", json={"host_ids": [web1, db1]})
    assert many.json()["added"] == 2
    assert (await c.get(f"/groups/{ex['id']}")).json()["group"]["member_count"] == 2
    assert (await c.delete(f"/groups/{ex['id']}/members/{db1}")).status_code == 204
    assert error(await c.delete(f"/groups/{ex['id']}/members/{db1}")) == (404, "NOT_FOUND")

    listed = (await c.get("/groups")).json()
    assert {g["name"]: g["member_count"] for g in listed["groups"]} == {"webs": 2, "prod": 1, "mine": 1}
    renamed = await c.patch(f"/groups/{ex['id']}", json={"name": "yours", "description": "d"})
    assert renamed.json()["group"]["name"] == "yours"

    # errors: taken name, a tag_query group's members, bad query, bad ids, another tenant's
    assert error(await c.post("/groups", json={"name": "webs"})) == (409, "CONFLICT")
    assert error(await c.post(f"/groups/{webs['id']}/members/{web1}")) == (409, "CONFLICT")
    bad = await c.post("/groups", json={"name": "x", "kind": "tag_query", "tag_query": {"xor": []}})
    assert error(bad) == (400, "VALIDATION_ERROR")
    assert error(await c.post("/groups", json={"name": "y", "kind": "nope"})) == (400, "VALIDATION_ERROR")
    assert error(await c.get("/groups/grp_")) == (400, "INVALID_ID")
    assert error(await c.post(f"/groups/{ex['id']}/members", json={"host_ids": ["host_nope1234"]})) == (
        404,
        "NOT_FOUND",
    )
    other = inprocess.other
    assert error(await other.get(f"/groups/{webs['id']}")) == (404, "NOT_FOUND")
    assert (await other.get("/groups")).json() == {"groups": []}
    other_host = await register(other, "theirs")
    assert error(await c.post(f"/groups/{ex['id']}/members/{other_host}")) == (404, "NOT_FOUND")
    assert (await c.delete(f"/groups/{ex['id']}")).status_code == 204
    assert error(await c.get(f"/groups/{ex['id']}")) == (404, "NOT_FOUND")


async def test_fan_out_requests_are_validated(inprocess) -> None:
    c = inprocess.api
    host = await register(c, "a")
    assert error(await c.post("/fanouts", json={"command": "true"})) == (400, "VALIDATION_ERROR")  # no hosts
    both = {"command": "true", "host_ids": [host], "tag_query": {"or": ["a"]}}
    assert error(await c.post("/fanouts", json=both)) == (400, "VALIDATION_ERROR")
    assert error(await c.post("/fanouts", json={"host_ids": [host]})) == (400, "VALIDATION_ERROR")
    assert error(await c.post("/fanouts", json={"command": "true", "host_ids": ["host_x1234"]})) == (
        404,
        "NOT_FOUND",
    )
    batch = {"command": "true", "host_ids": [host], "batch_size": 0}
    assert error(await c.post("/fanouts", json=batch)) == (400, "VALIDATION_ERROR")
    assert error(await c.get("/fanouts/fo_nothere123")) == (404, "NOT_FOUND")
    # an offline member is reported at once, in the SDK's shape
    answer = (await c.post("/fanouts", json={"command": "true", "host_ids": [host]})).json()
    assert answer["fan_out"] == [{"host_id": host, "host_name": "a", "error": "offline — not run"}]
    assert error(await inprocess.other.get(f"/fanouts/{answer['id']}")) == (404, "NOT_FOUND")


# --- fan-out against real agents -----------------------------------------------------------------------


async def read_stream(client: Any, fanout_id: str) -> list[dict[str, Any]]:
    """Every event of a fan-out's combined stream (the data JSON), up to ``[DONE]``."""
    events = []
    async with client.stream("GET", f"/fanouts/{fanout_id}/stream") as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                if line == "data: [DONE]":
                    break
                events.append(json.loads(line[6:]))
    return events


async def test_fan_out_to_real_agents(server, start_agent) -> None:
    hosts = {}
    for name in ("fo-a", "fo-b", "fo-c"):
        hosts[name] = (await online_host(server, start_agent, name))["id"]
    gone = server.register("fo-d", labels={"role": "web"})
    async with api(server) as c:
        for name, role in (("fo-a", "web"), ("fo-b", "web"), ("fo-c", "db")):
            await c.patch(f"/hosts/{hosts[name]}", json={"labels": {"role": role}})
        group = (
            await c.post(
                "/groups", json={"name": "web", "kind": "tag_query", "tag_query": {"or": ["role=web"]}}
            )
        ).json()
        gid = group["group"]["id"]

        # the group's exec: one request; the offline member is reported at once
        run = await c.post(f"/groups/{gid}/exec", json={"cmd": "echo out-$((20+1)); echo err >&2; exit 3"})
        assert run.status_code == 201, run.text
        body = run.json()
        by_name = {entry["host_name"]: entry for entry in body["fan_out"]}
        assert by_name["fo-d"] == {"host_id": gone["id"], "host_name": "fo-d", "error": "offline — not run"}
        assert {by_name[n]["job_id"][:4] for n in ("fo-a", "fo-b")} == {"job_"}
        events = await read_stream(c, body["id"])
        out = {(e["host_id"], e["type"]): e for e in events if e["type"] != "fanout_end"}
        for name in ("fo-a", "fo-b"):
            assert out[(hosts[name], "exec_chunk")]["fanout_id"] == body["id"]
            assert out[(hosts[name], "exec_result")]["exit_code"] == 3
        texts = sorted(e["data"] for e in events if e["type"] == "exec_chunk")
        assert texts == ["err\n", "err\n", "out-21\n", "out-21\n"]
        assert out[(gone["id"], "member")]["error"] == "offline — not run"
        end = events[-1]
        assert end["type"] == "fanout_end" and end["summary"] == {"exit 3": 2, "not run": 1}
        record = (await c.get(f"/fanouts/{body['id']}")).json()
        assert record["status"] == "completed"
        assert {e["host_name"]: e.get("exit_code") for e in record["fan_out"]} == {
            "fo-a": 3,
            "fo-b": 3,
            "fo-d": None,
        }

        # batch size 1 and stop on the first failure: the first host fails, the others never start
        ids = [hosts["fo-a"], hosts["fo-b"], hosts["fo-c"]]
        stop = {"command": "exit 1", "host_ids": ids, "batch_size": 1, "stop_on_failure": True}
        body = (await c.post("/fanouts", json=stop)).json()
        assert [e.get("status") for e in body["fan_out"]][1:] == ["pending", "pending"]
        events = await read_stream(c, body["id"])
        assert events[-1]["summary"] == {"exit 1": 1, "skipped": 2}
        assert events[-1]["status"] == "stopped"

        # batch size 2 without stop: everything runs, at most two at a time
        body = (
            await c.post(
                "/fanouts", json={**stop, "stop_on_failure": False, "batch_size": 2, "command": "true"}
            )
        ).json()
        events = await read_stream(c, body["id"])
        assert events[-1]["summary"] == {"exit 0": 3}

        # cancel-all: running jobs are cancelled, the pending one is skipped
        body = (
            await c.post("/fanouts", json={"command": "sleep 30", "host_ids": ids, "batch_size": 2})
        ).json()
        reading = asyncio.create_task(read_stream(c, body["id"]))
        cancelled = await c.delete(f"/fanouts/{body['id']}")
        assert cancelled.status_code == 200
        assert sorted(e.get("status") for e in cancelled.json()["fan_out"]) == [
            "cancelled",
            "cancelled",
            "skipped",
        ]
        events = await asyncio.wait_for(reading, 15)
        assert events[-1]["status"] == "cancelled"
        assert events[-1]["summary"] == {"cancelled": 2, "skipped": 1}


def test_python_sdk_group_methods(server) -> None:
    miosa = pytest.importorskip("miosa")
    oc = miosa.Miosa(api_key=server.token, base_url=server.base_url + "/api/v1").open_computers
    a = server.register("sdk-g1", labels={"tier": "a"})
    b = server.register("sdk-g2")
    group = oc.groups.create(name="sdk", description="by the SDK")
    assert group.name == "sdk" and group.kind.value == "explicit" and group.member_count == 0
    added = oc.groups.add_member(group.id, a["id"])
    assert (added.ok, added.host_id, added.group_id) == (True, a["id"], group.id)
    assert oc.groups.add_members(group.id, [b["id"]])["ok"] is True
    detail = oc.groups.get(group.id)
    assert sorted(m.name for m in detail.members) == ["sdk-g1", "sdk-g2"] and detail.group.member_count == 2
    oc.groups.remove_member(group.id, b["id"])
    tagged = oc.groups.create(name="tier-a", kind="tag_query", tag_query={"and": ["tier=a"]})
    assert tagged.member_count == 1
    assert oc.groups.update(tagged.id, description="A").description == "A"
    assert {g.name: g.member_count for g in oc.groups.list().groups} == {"sdk": 1, "tier-a": 1}
    fan = oc.groups.exec(group.id, cmd="true")
    assert fan.fan_out == [{"host_id": a["id"], "host_name": "sdk-g1", "error": "offline — not run"}]
    oc.groups.delete(tagged.id)
    assert [g.name for g in oc.groups.list().groups] == ["sdk"]


async def test_tui_saves_the_filter_as_a_group_lists_groups_and_opens_one(server) -> None:
    from conftest import SIZE, make_app, rows, wait_until

    from oc_tui.screens.resource import ResourceScreen
    from oc_tui.widgets.resource_table import ResourceTable

    server.register("sv-web-1", labels={"role": "web"})
    server.register("sv-db-1", labels={"role": "db"})
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(rows(app)) == 2, "two hosts")
        app.fleet.table.focus()
        await pilot.press("slash", *"role=web", "enter", "v")
        await wait_until(pilot, lambda: app.screen.query("#name"), "the save dialog")
        await pilot.press(*"webs", "enter")
        await wait_until(pilot, lambda: app.screen is app.fleet, "saved")
        async with api(server) as c:
            saved = (await c.get("/groups")).json()["groups"]
        assert [(g["name"], g["kind"], g["tag_query"], g["member_count"]) for g in saved] == [
            ("webs", "tag_query", {"and": ["role=web"]}, 1)
        ]
        await pilot.press("escape", "colon", *"groups", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ResourceScreen), ":groups")
        table = app.screen.query_one(ResourceTable)
        await wait_until(pilot, lambda: table.row_count == 1, "the group listed")
        assert [str(cell) for cell in table.get_row_at(0)] == ["webs", "tag_query", "1", "role=web"]
        server.register("sv-web-2", labels={"role": "web"})  # joins by its label
        await pilot.press("colon", *"hosts group=webs", "enter")
        await wait_until(
            pilot,
            lambda: app.screen is app.fleet and rows(app) == {"sv-web-1": "pending", "sv-web-2": "pending"},
            "the group's hosts",
            timeout=15,
        )
        assert "group webs" in str(app.fleet.query_one("#fleet-info").render())
