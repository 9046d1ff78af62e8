"""Secrets end to end against the real server and a real agent: a job gets the secrets it names as
environment variables, their values are masked (``***``) in its stored output and its stream (also when
split across chunks, on stdout and stderr), never appear in the server's or agent's log, the SQLite file
or the agent's state dir; key rotation by ``oc-server secrets rotate-key`` while the server runs keeps
them readable by jobs; an unknown name is 400 naming it; MIOSA's Python SDK's secrets methods work."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ROOT, api, error, online_host

from oc_tui.api import OpenComputersClient

VALUE = "ghp_Zq8v1TOKENvalue0123456789abcdef"
HOST_VALUE = "host-only-Value-7d1c55"
# prints the value split across two writes (two chunks), on stdout and then stderr
SPLIT = (
    'printf %s "$(printf %s "$GITHUB_TOKEN" | cut -c1-10)"; sleep 0.3; '
    'printf "%s\\n" "$(printf %s "$GITHUB_TOKEN" | cut -c11-)"; echo "err:$GITHUB_TOKEN" >&2'
)


def files_holding(root: Path, needle: bytes) -> list[Path]:
    """Every file under ``root`` whose bytes contain ``needle``."""
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


async def run(client: httpx.AsyncClient, host_id: str, command: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/hosts/{host_id}/exec?wait=20", json={"command": command, **body})
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    assert job["status"] in ("completed", "failed"), job
    return job


async def test_jobs_get_masked_secrets(server: Any, start_agent: Any, tmp_path: Path) -> None:
    host = await online_host(server, start_agent, "secret-box")
    host_id = host["id"]
    async with OpenComputersClient(server.base_url, server.token) as oc, api(server) as client:
        await oc.create_secret("GITHUB_TOKEN", VALUE, description="CI token")
        await oc.create_secret("SHADOWED", "tenant-Value-99")
        await oc.create_secret("SHADOWED", HOST_VALUE, host_id=host_id)
        # the length is right, the value is masked (split across chunks, on both streams)
        job = await oc.run_job(
            host_id, 'printf %s "$GITHUB_TOKEN" | wc -c', secrets=["GITHUB_TOKEN"], wait=20
        )
        assert job.stdout.strip() == str(len(VALUE))
        job_json = await run(client, host_id, SPLIT, secrets=["GITHUB_TOKEN"])
        assert job_json["stdout"] == "***\n" and job_json["stderr"] == "err:***\n"
        stream = await client.get(f"/hosts/{host_id}/exec/{job_json['id']}/stream")
        assert "***" in stream.text and VALUE[:10] not in stream.text
        # shadowing: the host's secret wins
        shadow = await run(client, host_id, "echo ${#SHADOWED}; echo $SHADOWED", secrets=["SHADOWED"])
        assert shadow["stdout"] == f"{len(HOST_VALUE)}\n***\n"
        # without naming it, a job does not get it
        plain = await run(client, host_id, 'echo "[$GITHUB_TOKEN]"')
        assert plain["stdout"] == "[]\n"
        # unknown names: 400 naming them, nothing recorded; env clash: 400
        before = (await client.get(f"/hosts/{host_id}/exec")).json()["meta"]["total"]
        unknown = await client.post(f"/hosts/{host_id}/exec", json={"command": "true", "secrets": ["NOPE"]})
        assert error(unknown) == (400, "VALIDATION_ERROR") and "NOPE" in unknown.json()["error"]["message"]
        clash = await client.post(
            f"/hosts/{host_id}/exec",
            json={"command": "true", "secrets": ["GITHUB_TOKEN"], "env": ["GITHUB_TOKEN=x"]},
        )
        assert error(clash) == (400, "VALIDATION_ERROR")
        assert (await client.get(f"/hosts/{host_id}/exec")).json()["meta"]["total"] == before
        # the Python SDK's dialect (cmd, stream: false) takes the extension too
        hosted = await client.post(
            f"/hosts/{host_id}/exec",
            json={"cmd": "echo $GITHUB_TOKEN", "stream": False, "secrets": ["GITHUB_TOKEN"]},
        )
        assert hosted.json()["stdout"] == "***\n"
        # rotate the key while the server runs: jobs still get the value
        rotated = subprocess.run(
            [
                sys.executable,
                "-m",
                "embedded_server",
                "secrets",
                "rotate-key",
                "--data-dir",
                str(server.data_dir),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert rotated.returncode == 0, rotated.stderr
        after = await oc.run_job(
            host_id, 'printf %s "$GITHUB_TOKEN" | wc -c', secrets=["GITHUB_TOKEN"], wait=20
        )
        assert after.stdout.strip() == str(len(VALUE))
        await oc.update_secret((await oc.list_secrets())[0].id, value=VALUE + "X")
        longer = await run(client, host_id, "echo ${#GITHUB_TOKEN} $GITHUB_TOKEN", secrets=["GITHUB_TOKEN"])
        assert longer["stdout"] == f"{len(VALUE) + 1} ***\n"
        # another tenant cannot name them
        _, other = server.new_tenant()
        async with api(server, other) as stranger:
            response = await stranger.post(
                f"/hosts/{host_id}/exec", json={"command": "true", "secrets": ["GITHUB_TOKEN"]}
            )
            assert error(response) == (404, "NOT_FOUND")
    # the value is nowhere: server log, agent logs and state dirs, the server's data dir
    await asyncio.sleep(0)
    for needle in (VALUE.encode(), HOST_VALUE.encode(), VALUE[:16].encode()):
        assert needle not in server.log.read_bytes()
        assert files_holding(tmp_path, needle) == []
        assert files_holding(server.data_dir, needle) == []


async def test_python_sdk_secrets_methods(server: Any) -> None:
    miosa = pytest.importorskip("miosa")
    from miosa.errors import MiosaError
    from miosa.resources.open_computers.types import SecretCreateParams, SecretUpdateParams

    host = server.register("sdk-secrets")
    oc = miosa.Miosa(api_key=server.token, base_url=server.base_url + "/api/v1").open_computers

    def drive() -> None:
        made = oc.secrets.create_for_tenant(SecretCreateParams(name="T", value=VALUE, description="d"))
        assert made.id.startswith("sec_") and made.host_id is None and made.description == "d"
        assert [s.name for s in oc.secrets.list_for_tenant()] == ["T"]
        own = oc.secrets.create_for_host(host["id"], SecretCreateParams(name="H", value=HOST_VALUE))
        assert own.host_id == host["id"]
        assert [s.id for s in oc.secrets.list_for_host(host["id"])] == [own.id]
        updated = oc.secrets.update_for_host(host["id"], own.id, SecretUpdateParams(description="new"))
        assert updated.description == "new" and updated.id == own.id
        with pytest.raises(MiosaError) as refused:
            oc.secrets.reveal(host["id"], own.id)
        assert getattr(refused.value, "status_code", 403) == 403 and VALUE not in str(refused.value)
        oc.secrets.delete_for_host(host["id"], own.id)
        assert oc.secrets.list_for_host(host["id"]) == []

    await asyncio.to_thread(drive)
