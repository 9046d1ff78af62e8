"""Every host method of the client against the real embedded server, and how failures surface."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from oc_tui.api import OpenComputersClient, errors, models


async def test_health(client: OpenComputersClient) -> None:
    assert (await client.health())["status"] == "ok"


async def test_host_lifecycle(client: OpenComputersClient) -> None:
    reg = await client.register_host("build-box", region="eu-west", labels={"env": "ci"})
    assert isinstance(reg, models.HostRegistration)
    assert reg.id.startswith("host_") and reg.host_key.startswith("hk_")
    assert (reg.name, reg.region, reg.labels, reg.status) == (
        "build-box",
        "eu-west",
        {"env": "ci"},
        "pending",
    )

    host = await client.get_host(reg.id)
    assert "host_key" not in (host.model_extra or {})
    assert (host.id, host.name) == (reg.id, "build-box")

    renamed = await client.update_host(reg.id, name="build-box-2")
    assert (renamed.name, renamed.region, renamed.labels) == ("build-box-2", "eu-west", {"env": "ci"})
    relabelled = await client.update_host(reg.id, labels={"tier": "gold"})
    assert (relabelled.name, relabelled.labels) == ("build-box-2", {"tier": "gold"})

    page = await client.list_hosts()
    assert [h.id for h in page.data] == [reg.id]
    assert page.meta == models.PageMeta(total=1, page=1, per_page=20)

    await client.revoke_host(reg.id)
    assert (await client.get_host(reg.id)).status == "revoked"


async def test_sysinfo_asks_the_agent(client: OpenComputersClient, start_agent: Any) -> None:
    reg = await client.register_host("with-agent")
    with pytest.raises(errors.HostOfflineError) as info:
        await client.host_sysinfo(reg.id)
    assert (info.value.status, info.value.code) == (409, "HOST_OFFLINE")

    await start_agent(reg.host_key)
    for _ in range(100):
        if (await client.get_host(reg.id)).status == "online":
            break
        await asyncio.sleep(0.05)
    sysinfo = await client.host_sysinfo(reg.id)
    assert isinstance(sysinfo, models.HostSysInfo)
    assert sysinfo.hostname and sysinfo.os


async def test_iter_hosts_walks_every_page(client: OpenComputersClient) -> None:
    created = await asyncio.gather(*(client.register_host(f"node-{i:03d}") for i in range(130)))
    first = await client.list_hosts(page=1, per_page=100)
    assert len(first.data) == 100 and first.meta is not None and first.meta.total == 130
    hosts = await client.all_hosts()
    assert sorted(h.id for h in hosts) == sorted(r.id for r in created)
    assert len([h async for h in client.iter_hosts(per_page=7)]) == 130


async def test_wrong_token_is_unauthorized(server: Any) -> None:
    async with OpenComputersClient(server.base_url, "not-a-token") as client:
        with pytest.raises(errors.UnauthorizedError) as info:
            await client.list_hosts()
    assert (info.value.status, info.value.code) == (401, "UNAUTHORIZED")


async def test_unknown_and_foreign_hosts_are_not_found(client: OpenComputersClient, server: Any) -> None:
    with pytest.raises(errors.NotFoundError) as info:
        await client.get_host("host_doesnotexist")
    assert (info.value.status, info.value.code) == (404, "NOT_FOUND")

    _, other_token = server.new_tenant()
    async with OpenComputersClient(server.base_url, other_token) as other:
        theirs = await other.register_host("theirs")
    with pytest.raises(errors.NotFoundError):
        await client.get_host(theirs.id)


@pytest.mark.parametrize("host_id", ["nope", "job_abc123", "host_a b"])
async def test_malformed_ids_are_invalid(client: OpenComputersClient, host_id: str) -> None:
    with pytest.raises(errors.InvalidIdError) as info:
        await client.get_host(host_id)
    assert (info.value.status, info.value.code) == (400, "INVALID_ID")


@pytest.mark.parametrize("host_id", ["events", "..", "../hosts"])
async def test_an_id_can_never_name_another_endpoint(client: OpenComputersClient, host_id: str) -> None:
    with pytest.raises(errors.ApiError):  # not a host list or an event stream
        await client.get_host(host_id)


async def test_bad_fields_are_validation_errors(client: OpenComputersClient) -> None:
    with pytest.raises(errors.ValidationError) as info:
        await client.register_host("", labels={"bad key!": "x"})
    assert (info.value.status, info.value.code) == (400, "VALIDATION_ERROR")
    assert info.value.message


async def test_a_closed_port_is_connection_failed(unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}"
    async with OpenComputersClient(url, "t") as client:
        with pytest.raises(errors.ConnectionFailed) as info:
            await client.list_hosts()
    assert str(info.value) == f"control plane at {url} is unreachable: connection refused"


async def test_a_server_that_never_answers_is_connection_failed() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        async with OpenComputersClient(url, "t", timeout=0.3) as client:
            with pytest.raises(errors.ConnectionFailed) as info:
                await client.list_hosts()
    assert str(info.value) == f"control plane at {url} did not answer GET /hosts within 0.3 s"
