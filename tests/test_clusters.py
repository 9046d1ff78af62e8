"""Inference clusters end to end: the API (as MIOSA's Python SDK drives it), and the OpenAI-compatible
endpoint driven by the official ``openai`` package, routed through the real server and real agents to
small engines on the hosts (tests/fake_engine.py, which speaks the OpenAI and Ollama wire formats):
balancing, failover, never routing to a not-ready engine, a client going away, Ollama pulls.

The hosts, their agents and their engines are shared by the module's tests (each test makes its own
clusters); the test that kills an agent has hosts of its own."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from conftest import (
    AgentProcess,
    Server,
    ServerProcess,
    _environ,
    _spawn,
    api,
    error,
    online_host_id,
)
from fake_engine import launch

from oc_tui.api import OpenComputersClient

MODEL = "tiny"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Engine:
    """A tests/fake_engine.py process on a free port of this machine."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.process = launch(self.port, *args)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def control(self, **fields: Any) -> None:
        httpx.post(f"{self.url}/_control", json=fields, timeout=5).raise_for_status()

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.url}/_stats", timeout=5).json()
        return result

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


class Fleet:
    """Two hosts with real agents, each with an OpenAI-compatible engine of its own (ports differ, as
    both hosts are this machine), seen through a tenant of the module."""

    def __init__(self, server: Server, a: str, b: str, engines: tuple[Engine, Engine]) -> None:
        self.server, self.a, self.b, self.engines = server, a, b, engines

    def ports(self) -> dict[str, int]:
        return {self.a: self.engines[0].port, self.b: self.engines[1].port}


@pytest.fixture(scope="module")
def fleet(server_process: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    server = Server(server_process)
    engines = (Engine("--name", "a", "--model", MODEL), Engine("--name", "b", "--model", MODEL))
    base = tmp_path_factory.mktemp("cluster-agents")
    agents = []
    ids = []
    for n, name in enumerate(("gpu-a", "gpu-b")):
        registration = server.register(name)
        env = _environ(
            OC_SERVER_URL=server.base_url,
            OC_HOST_KEY=registration["host_key"],
            OC_AGENT_STATE_DIR=str(base / f"state-{n}"),
        )
        agents.append(_spawn(["-m", "embedded_server.agent"], env, base / f"agent-{n}.log"))
        ids.append(registration["id"])
    for host_id in ids:
        deadline = time.monotonic() + 15
        while server.get_host(host_id)["status"] != "online":
            assert time.monotonic() < deadline, "agent did not come online"
            time.sleep(0.05)
    yield Fleet(server, ids[0], ids[1], engines)
    for agent in agents:
        agent.kill()
        agent.wait()
    for engine in engines:
        engine.stop()


async def create(server: Server, **fields: Any) -> dict[str, Any]:
    async with api(server) as http:
        response = await http.post("/clusters", json=fields)
    assert response.status_code == 201, response.text
    return response.json()


async def wait_cluster(
    server: Server, cluster_id: str, check: Any, what: str, timeout: float = 15
) -> dict[str, Any]:
    """Poll the cluster until ``check(cluster)`` holds; returns it."""
    deadline = time.monotonic() + timeout
    async with api(server) as http:
        while True:
            cluster = (await http.get(f"/clusters/{cluster_id}")).json()
            if check(cluster):
                return cluster
            if time.monotonic() > deadline:
                raise AssertionError(f"cluster never {what}: {cluster}")
            await asyncio.sleep(0.05)


def health(cluster: dict[str, Any]) -> dict[str, str]:
    return {host["host_id"]: host["health"] for host in cluster["hosts"]}


def host_of(cluster: dict[str, Any], host_id: str) -> dict[str, Any]:
    return next(host for host in cluster["hosts"] if host["host_id"] == host_id)


async def active_cluster(fleet: Fleet, name: str, **fields: Any) -> dict[str, Any]:
    made = await create(
        fleet.server,
        name=name,
        model=MODEL,
        host_ids=[fleet.a, fleet.b],
        engine={"kind": "openai"},
        host_ports=fleet.ports(),
        **fields,
    )
    return await wait_cluster(fleet.server, made["id"], lambda c: c["status"] == "active", "active")


@pytest.fixture
async def llm(fleet: Fleet) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official OpenAI client, unconfigured base URL (each test sets its cluster's)."""
    async with openai.AsyncOpenAI(
        api_key=fleet.server.token, base_url="http://unset/v1", max_retries=0
    ) as client:
        yield client


# --- the API -------------------------------------------------------------------------------------------


async def test_api_with_the_python_sdk(fleet: Fleet) -> None:
    from miosa import AsyncMiosa
    from miosa.resources.open_computers.types import ClusterCreateParams

    server = fleet.server
    async with AsyncMiosa(api_key=server.token, base_url=f"{server.base_url}/api/v1") as sdk:
        clusters = sdk.open_computers.clusters
        made = await clusters.create(ClusterCreateParams(name="My Cluster!", model=MODEL, host_ids=[fleet.a]))
        assert made.id.startswith("cl_") and made.slug == "my-cluster" and made.host_ids == [fleet.a]
        assert made.status.value in ("provisioning", "active", "error")
        assert made.inference_url == f"{server.base_url}/inference/my-cluster/v1"
        twin = await clusters.create(ClusterCreateParams(name="my cluster", model=MODEL, host_ids=[fleet.a]))
        assert twin.slug == "my-cluster-2"
        listed = await clusters.list()
        assert [c.id for c in listed.data] == [made.id, twin.id]
        # Nothing listens on Ollama's port of the host: the cluster ends in error, with the reason.
        failed = await wait_cluster(server, made.id, lambda c: c["status"] == "error", "in error")
        assert "unreachable" in failed["status_reason"] and health(failed) == {fleet.a: "unreachable"}
        stopped = await clusters.stop(made.id)
        assert stopped.status.value == "stopped"
        started = await clusters.start(made.id)
        assert started.status.value == "provisioning"
        events = clusters.events(made.id)
        first = await anext(events)
        assert first.type == "status_change" and first.cluster_id == made.id
        second = await anext(events)
        assert second.type == "host_health" and second.data["host_id"] == fleet.a
        await events.aclose()
        await clusters.delete(twin.id)
        await clusters.delete(made.id)
        assert (await clusters.list()).data == []


async def test_validation_and_tenancy(fleet: Fleet) -> None:
    server = fleet.server
    _, other_token = server.new_tenant()
    async with api(server) as http, api(server, other_token) as other:
        assert error(await http.post("/clusters", json={"name": "x", "model": MODEL, "host_ids": []})) == (
            400,
            "VALIDATION_ERROR",
        )
        bad = await http.post("/clusters", json={"name": "x", "model": MODEL, "host_ids": ["nope"]})
        assert error(bad) == (400, "INVALID_ID")
        theirs = await other.post("/clusters", json={"name": "x", "model": MODEL, "host_ids": [fleet.a]})
        assert error(theirs) == (404, "NOT_FOUND")
        stray = {"name": "x", "model": MODEL, "host_ids": [fleet.a], "host_ports": {fleet.b: 1}}
        assert error(await http.post("/clusters", json=stray)) == (400, "VALIDATION_ERROR")
        assert error(await http.get("/clusters/host_123")) == (400, "INVALID_ID")
        made = await create(server, name="mine", model=MODEL, host_ids=[fleet.a])
        assert error(await other.get(f"/clusters/{made['id']}")) == (404, "NOT_FOUND")
        assert error(await other.post(f"/clusters/{made['id']}/stop")) == (404, "NOT_FOUND")
        assert (await other.get("/clusters")).json() == {"data": []}
        # The endpoint: another tenant's token does not find it either.
        url = f"{server.base_url}/inference/{made['slug']}/v1/models"
        async with httpx.AsyncClient() as raw:
            assert (await raw.get(url, headers=server.headers(other_token))).status_code == 404
            assert (await raw.get(url)).status_code == 401
        assert (await http.delete(f"/clusters/{made['id']}")).status_code == 204
        assert error(await http.get(f"/clusters/{made['id']}")) == (404, "NOT_FOUND")


# --- the endpoint with the official openai client --------------------------------------------------------


async def test_openai_client_chat_stream_models(fleet: Fleet, llm: openai.AsyncOpenAI) -> None:
    cluster = await active_cluster(fleet, "chat")
    assert health(cluster) == {fleet.a: "ready", fleet.b: "ready"}
    client = llm.with_options(base_url=cluster["inference_url"])
    models = await client.models.list()
    assert [m.id for m in models.data] == [MODEL]
    answer = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content and answer.usage is not None
    assert answer.usage.completion_tokens == 5
    stream = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    pieces = [
        chunk.choices[0].delta.content
        async for chunk in stream
        if chunk.choices and chunk.choices[0].delta.content
    ]
    assert len(pieces) == 5
    text = await client.completions.create(model=MODEL, prompt="once")
    assert text.choices[0].text
    vectors = await client.embeddings.create(model=MODEL, input=["a", "b"])
    assert len(vectors.data) == 2
    after = await wait_cluster(
        fleet.server, cluster["id"], lambda c: sum(h["completed"] for h in c["hosts"]) == 4, "counted"
    )
    counted = [h for h in after["hosts"] if h["tokens_per_s_history"]]
    assert counted and all(h["tokens_per_s"] > 0 and h["ttft_ms"] > 0 for h in counted)
    assert all(h["in_flight"] == 0 and h["errors"] == 0 for h in after["hosts"])
    # Without a token, or with a wrong one: refused.
    async with openai.AsyncOpenAI(
        api_key="oc_wrong", base_url=cluster["inference_url"], max_retries=0
    ) as bad:
        with pytest.raises(openai.AuthenticationError):
            await bad.models.list()
    async with httpx.AsyncClient() as raw:
        response = await raw.post(f"{cluster['inference_url']}/chat/completions", json={"model": MODEL})
        assert error(response) == (401, "UNAUTHORIZED")
    # Stopped: refused with a clear body; started again: answers.
    async with api(fleet.server) as http:
        assert (await http.post(f"/clusters/{cluster['id']}/stop")).json()["status"] == "stopped"
        with pytest.raises(openai.APIStatusError) as refused:
            await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert refused.value.status_code == 503 and "stopped" in refused.value.message
        await http.post(f"/clusters/{cluster['id']}/start")
    await wait_cluster(fleet.server, cluster["id"], lambda c: c["status"] == "active", "active again")
    assert (
        await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    ).choices


async def test_balancing_and_engine_errors(fleet: Fleet, llm: openai.AsyncOpenAI) -> None:
    a, b = fleet.engines
    cluster = await active_cluster(fleet, "balance")
    client = llm.with_options(base_url=cluster["inference_url"])
    before = a.stats()["requests"], b.stats()["requests"]
    a.control(delay=0.05)
    b.control(delay=0.05)
    try:

        async def ask() -> str:
            answer = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x"}]
            )
            return answer.choices[0].message.content or ""

        answers = await asyncio.gather(*(ask() for _ in range(8)))
    finally:
        a.control(delay=0.0)
        b.control(delay=0.0)
    by_a = sum(text.startswith("a0") for text in answers)
    assert by_a == 4 and len(answers) == 8, answers  # least outstanding: 4 each
    assert a.stats()["requests"] - before[0] == 4 and b.stats()["requests"] - before[1] == 4
    # An engine that errors before its first byte: the request goes to the other host.
    a.control(fail=100)
    try:
        answers = [await ask() for _ in range(4)]
    finally:
        a.control(fail=0)
    assert all(text.startswith("b0") for text in answers), answers
    after = await wait_cluster(fleet.server, cluster["id"], lambda c: True, "read")
    assert host_of(after, fleet.a)["errors"] >= 1 and host_of(after, fleet.b)["errors"] == 0
    assert health(after)[fleet.a] == "ready"  # a 500 is one request's failure, not "not ready"


async def test_never_routes_to_a_not_ready_engine(fleet: Fleet, llm: openai.AsyncOpenAI) -> None:
    a, b = fleet.engines
    b.control(ready=False)
    try:
        cluster = await active_cluster(fleet, "loading")
        assert health(cluster) == {fleet.a: "ready", fleet.b: "not_ready"}
        assert "Loading model" in host_of(cluster, fleet.b)["detail"]
        client = llm.with_options(base_url=cluster["inference_url"])
        before = b.stats()["requests"]
        for _ in range(4):
            answer = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x"}]
            )
            assert (answer.choices[0].message.content or "").startswith("a0")
        assert b.stats()["requests"] == before
        b.control(ready=True)  # the health rounds notice it
        await wait_cluster(fleet.server, cluster["id"], lambda c: health(c)[fleet.b] == "ready", "b ready")
    finally:
        b.control(ready=True)


async def test_client_going_away_cancels_upstream(fleet: Fleet) -> None:
    a, b = fleet.engines
    cluster = await active_cluster(fleet, "cancel")
    for engine in (a, b):
        engine.control(delay=0.1, tokens=100)
    cancelled = a.stats()["cancelled"] + b.stats()["cancelled"]
    try:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": True}
        async with httpx.AsyncClient(headers=fleet.server.headers(), timeout=10) as raw:
            async with raw.stream(
                "POST", f"{cluster['inference_url']}/chat/completions", json=body
            ) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        assert json.loads(line[6:])["choices"][0]["delta"]["content"]
                        break
        deadline = time.monotonic() + 5
        while a.stats()["cancelled"] + b.stats()["cancelled"] == cancelled:
            assert time.monotonic() < deadline, "the engine never saw the client go away"
            await asyncio.sleep(0.05)
        await wait_cluster(
            fleet.server, cluster["id"], lambda c: sum(h["in_flight"] for h in c["hosts"]) == 0, "idle"
        )
    finally:
        for engine in (a, b):
            engine.control(delay=0.0, tokens=5)


async def test_agent_killed_mid_stream_fails_over(
    server: Server, start_agent: Any, llm: openai.AsyncOpenAI, fleet: Fleet
) -> None:
    a_engine, b_engine = fleet.engines
    agents: list[AgentProcess] = []

    def starter(key: str, **env: str) -> AgentProcess:
        agent: AgentProcess = start_agent(key, **env)
        agents.append(agent)
        return agent

    a = await online_host_id(server, starter, "left")
    b = await online_host_id(server, starter, "right")
    made = await create(
        server,
        name="failover",
        model=MODEL,
        host_ids=[a, b],
        engine={"kind": "openai"},
        host_ports={a: a_engine.port, b: b_engine.port},
    )
    await wait_cluster(server, made["id"], lambda c: c["status"] == "active", "active")
    for engine in (a_engine, b_engine):
        engine.control(delay=0.05, tokens=20)
    try:
        client = llm.with_options(base_url=made["inference_url"], api_key=server.token)
        streams = [
            await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
            )
            for _ in range(2)
        ]  # one on each host
        agents[0].send_signal(signal.SIGKILL)
        outcomes = []
        for stream in streams:
            try:
                outcomes.append(len([c async for c in stream]))
            except (openai.APIError, httpx.HTTPError):
                outcomes.append(-1)
        assert -1 in outcomes or min(outcomes) < 21  # the killed host's answer broke off
        for engine in (a_engine, b_engine):
            engine.control(delay=0.0, tokens=5)
        for _ in range(3):  # the next requests still answer, from the other host
            answer = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "y"}]
            )
            assert (answer.choices[0].message.content or "").startswith("b0")
        down = await wait_cluster(server, made["id"], lambda c: health(c)[a] == "offline", "a offline")
        assert health(down)[b] == "ready" and down["status"] == "active"
    finally:
        for engine in (a_engine, b_engine):
            engine.control(delay=0.0, tokens=5)


async def test_ollama_pull_progress(server: Server, start_agent: Any) -> None:
    engine = Engine("--kind", "ollama", "--model", "llama3:8b", "--no-model", "--name", "o")
    try:
        host_id = await online_host_id(server, start_agent, "ollama-box")
        async with OpenComputersClient(server.base_url, server.token) as client:
            engines = await client.host_engines(host_id, ports=[engine.port])
            assert any(e.port == engine.port and e.ready for e in engines)
        async with api(server) as http:
            made = (
                await http.post(
                    "/clusters",
                    json={
                        "name": "pulled",
                        "model": "llama3:8b",
                        "host_ids": [host_id],
                        "engine": {"kind": "ollama", "port": engine.port},
                    },
                )
            ).json()
            seen: list[dict[str, Any]] = []
            async with http.stream("GET", f"/clusters/{made['id']}/events") as events:
                async for line in events.aiter_lines():
                    if line.startswith("data: "):
                        seen.append(json.loads(line[6:]))
                        if seen[-1]["type"] == "status_change" and seen[-1]["data"]["status"] == "active":
                            break
        progress = [e["data"] for e in seen if e["type"] == "pull_progress"]
        assert progress and progress[-1]["status"] == "success"
        assert any(0 < p["completed"] < p["total"] for p in progress) or len(progress) >= 2
        assert any(e["type"] == "host_health" and e["data"]["health"] == "pulling" for e in seen)
        async with openai.AsyncOpenAI(
            api_key=server.token, base_url=made["inference_url"], max_retries=0
        ) as llm:
            answer = await llm.chat.completions.create(
                model="llama3:8b", messages=[{"role": "user", "content": "x"}]
            )
            assert (answer.choices[0].message.content or "").startswith("o0")
    finally:
        engine.stop()


# --- the TUI ---------------------------------------------------------------------------------------------


async def test_tui_create_topology_and_chat(fleet: Fleet) -> None:
    """``:clusters`` against the real server: the form finds the hosts' engines and creates a cluster over
    both, the topology shows them ready, and the chat box streams an answer with its tokens/s."""
    from conftest import make_app, wait_until
    from textual.widgets import Input, Select, SelectionList, Static

    from oc_tui.screens.cluster_topology import ClusterScreen, HostCard
    from oc_tui.screens.clusters import ClusterForm, ClustersScreen

    app = make_app(fleet.server)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon", *"clusters", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ClustersScreen), ":clusters")
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, ClusterForm), "the form")
        form = app.screen
        assert isinstance(form, ClusterForm)
        await wait_until(pilot, lambda: len(form.hosts) >= 2, "the hosts and their engines")
        found = {host.id: engines for host, engines in form.hosts}
        assert fleet.engines[0].port not in [e.port for e in found[fleet.a]]  # not a usual port: not probed
        await pilot.press(*"tui chat", "tab", *MODEL)
        form.query_one("#engine", Select).value = "openai"
        picker = form.query_one("#hosts", SelectionList)
        picker.select(fleet.a)
        picker.select(fleet.b)
        ports = " ".join(f"gpu-{x}={engine.port}" for x, engine in zip("ab", fleet.engines, strict=True))
        form.query_one("#ports", Input).value = ports
        form.query_one("#ports", Input).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ClustersScreen), "the form closed")
        screen = app.screen
        assert isinstance(screen, ClustersScreen)
        await wait_until(pilot, lambda: any(c.name == "tui chat" for c in screen.table.items), "the new row")
        row = next(i for i, c in enumerate(screen.table.items) if c.name == "tui chat")
        screen.table.move_cursor(row=row)  # the module's other tests made clusters of this tenant too
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ClusterScreen), "the topology")
        topology = app.screen
        assert isinstance(topology, ClusterScreen)

        def cards() -> dict[str, str]:
            return {card.host.host_id: card.host.health for card in topology.query(HostCard)}

        await wait_until(pilot, lambda: cards() == {fleet.a: "ready", fleet.b: "ready"}, "both hosts ready")
        await pilot.press("c", *"hello", "enter")
        stats = topology.query_one("#chat-stats", Static)
        await wait_until(pilot, lambda: "done · 5 tokens" in str(stats.render()), "the answer", timeout=15)
        answer = str(topology.query_one("#chat-answer", Static).render())
        assert answer.startswith(("a0", "b0")) and "tok/s" in str(stats.render())
        await wait_until(
            pilot, lambda: sum(c.host.completed for c in topology.query(HostCard)) == 1, "the counters"
        )
