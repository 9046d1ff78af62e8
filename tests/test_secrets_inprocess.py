"""Secret routes in-process (no server process, no agent): every endpoint and error, scopes and
shadowing through ``app.state.secrets.values``, tenants, encryption at rest (no plaintext in the SQLite
file, a ciphertext moved to another row does not decrypt) and key rotation while the app reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import InProcess, error
from cryptography.exceptions import InvalidTag

from embedded_server.errors import ApiProblem
from embedded_server.secrets.store import decrypt, rotate

VALUE = "ghp_s3cr3t-VALUE-4f9a"  # searched for wherever it must not be


async def new_host(inprocess: InProcess) -> str:
    response = await inprocess.api.post("/hosts", json={"name": "box"})
    assert response.status_code == 201
    value: str = response.json()["id"]
    return value


async def make(inprocess: InProcess, path: str, **body: Any) -> dict[str, Any]:
    response = await inprocess.api.post(path, json=body)
    assert response.status_code == 201, response.text
    assert VALUE not in response.text
    result: dict[str, Any] = response.json()
    return result


async def test_tenant_secrets_crud_and_errors(inprocess: InProcess) -> None:
    api = inprocess.api
    made = await make(inprocess, "/secrets", name="GITHUB_TOKEN", value=VALUE, description="CI token")
    assert set(made) == {"id", "name", "description", "host_id", "tenant_id", "created_at", "updated_at"}
    assert made["id"].startswith("sec_") and made["host_id"] is None
    assert made["tenant_id"] == inprocess.tenant_id and made["created_at"].endswith("Z")
    await make(inprocess, "/secrets", name="A_FIRST", value="x" * 10)
    listed = (await api.get("/secrets")).json()
    assert [s["name"] for s in listed["data"]] == ["A_FIRST", "GITHUB_TOKEN"]
    assert listed["meta"] == {"total": 2, "page": 1, "per_page": 20}
    page2 = (await api.get("/secrets", params={"page": 2, "per_page": 1})).json()
    assert [s["name"] for s in page2["data"]] == ["GITHUB_TOKEN"]
    assert error(await api.get("/secrets", params={"per_page": 101})) == (400, "VALIDATION_ERROR")
    # validation: names, values, unknown fields; the message never repeats a value
    for body in (
        {"name": "1BAD", "value": VALUE},
        {"name": "BAD-NAME", "value": VALUE},
        {"name": "N" * 129, "value": VALUE},
        {"name": "EMPTY", "value": ""},
        {"name": "NUL", "value": VALUE + "\0"},
        {"name": "BIG", "value": VALUE + "x" * 65536},
        {"name": "X", "value": VALUE, "extra": 1},
        {"value": VALUE},
    ):
        response = await api.post("/secrets", json=body)
        assert error(response, exact=True) == (400, "VALIDATION_ERROR"), body
        assert VALUE not in response.text
    clash = await api.post("/secrets", json={"name": "GITHUB_TOKEN", "value": "other"})
    assert error(clash) == (409, "CONFLICT") and "GITHUB_TOKEN" in clash.json()["error"]["message"]
    exact = await make(inprocess, "/secrets", name="SPACED", value="  kept as sent \n")
    # update, get, reveal, delete
    sid = made["id"]
    changed = (await api.patch(f"/secrets/{sid}", json={"description": "new"})).json()
    assert changed["description"] == "new" and changed["updated_at"] >= made["updated_at"]
    same = (await api.patch(f"/secrets/{sid}", json={})).json()
    assert same["updated_at"] == changed["updated_at"]
    assert error(await api.patch(f"/secrets/{sid}", json={"value": None})) == (400, "VALIDATION_ERROR")
    assert (await api.patch(f"/secrets/{sid}", json={"value": VALUE + "2"})).status_code == 200
    assert (await api.get(f"/secrets/{sid}")).json()["name"] == "GITHUB_TOKEN"
    reveal = await api.post(f"/secrets/{sid}/reveal")
    assert error(reveal) == (403, "FORBIDDEN") and "never returned" in reveal.json()["error"]["message"]
    assert error(await api.get("/secrets/nope")) == (400, "INVALID_ID")
    assert error(await api.get("/secrets/sec_abcdefabcdef")) == (404, "NOT_FOUND")
    # another tenant: 404 everywhere, and its own list is empty
    other = inprocess.other
    assert (await other.get("/secrets")).json()["data"] == []
    for response in (
        await other.get(f"/secrets/{sid}"),
        await other.patch(f"/secrets/{sid}", json={"description": "x"}),
        await other.delete(f"/secrets/{sid}"),
        await other.post(f"/secrets/{sid}/reveal"),
    ):
        assert error(response) == (404, "NOT_FOUND")
    store = inprocess.app.state.secrets
    values = await store.values(inprocess.tenant_id, None, ["GITHUB_TOKEN", "SPACED"])
    assert values == {"GITHUB_TOKEN": VALUE + "2", "SPACED": "  kept as sent \n"}
    assert exact["name"] == "SPACED"
    assert (await api.delete(f"/secrets/{sid}")).status_code == 204
    assert error(await api.delete(f"/secrets/{sid}")) == (404, "NOT_FOUND")


async def test_host_secrets_scope_shadowing_and_revoked_hosts(inprocess: InProcess) -> None:
    api, store, tenant = inprocess.api, inprocess.app.state.secrets, inprocess.tenant_id
    box, other_box = await new_host(inprocess), await new_host(inprocess)
    await make(inprocess, "/secrets", name="TOKEN", value="tenant-value")
    await make(inprocess, "/secrets", name="SHARED", value="shared-value")
    own = await make(inprocess, f"/hosts/{box}/secrets", name="TOKEN", value="host-value", description="d")
    assert own["host_id"] == box and own["tenant_id"] == tenant
    assert [s["name"] for s in (await api.get(f"/hosts/{box}/secrets")).json()["data"]] == ["TOKEN"]
    assert (await api.get(f"/hosts/{other_box}/secrets")).json()["data"] == []
    clash = await api.post(f"/hosts/{box}/secrets", json={"name": "TOKEN", "value": "v"})
    assert error(clash) == (409, "CONFLICT")
    # a host secret is reached only through its host
    sid = own["id"]
    assert error(await api.get(f"/secrets/{sid}")) == (404, "NOT_FOUND")
    assert error(await api.get(f"/hosts/{other_box}/secrets/{sid}")) == (404, "NOT_FOUND")
    assert error(await inprocess.other.get(f"/hosts/{box}/secrets")) == (404, "NOT_FOUND")
    updated = (await api.patch(f"/hosts/{box}/secrets/{sid}", json={"value": "host-value-2"})).json()
    assert updated["id"] == sid
    assert error(await api.post(f"/hosts/{box}/secrets/{sid}/reveal")) == (403, "FORBIDDEN")
    # shadowing: the host's TOKEN wins on its host; other hosts get the tenant's
    assert await store.values(tenant, box, ["TOKEN", "SHARED"]) == {
        "TOKEN": "host-value-2",
        "SHARED": "shared-value",
    }
    assert await store.values(tenant, other_box, ["TOKEN"]) == {"TOKEN": "tenant-value"}
    with pytest.raises(ApiProblem) as unknown:
        await store.values(tenant, box, ["TOKEN", "NO_SUCH", "NOR_THIS"])
    assert (unknown.value.status, unknown.value.code) == (400, "VALIDATION_ERROR")
    assert "NO_SUCH" in unknown.value.message and "NOR_THIS" in unknown.value.message
    with pytest.raises(ApiProblem) as foreign:
        await store.values("t_someoneelse000", box, ["TOKEN"])
    assert foreign.value.status == 404
    # a revoked host: its secrets are listed and deleted, never delivered or created
    assert (await api.delete(f"/hosts/{box}")).status_code == 204
    with pytest.raises(ApiProblem) as revoked:
        await store.values(tenant, box, ["TOKEN"])
    assert (revoked.value.status, revoked.value.code) == (409, "HOST_REVOKED")
    assert error(await api.post(f"/hosts/{box}/secrets", json={"name": "N", "value": "v"})) == (
        409,
        "HOST_REVOKED",
    )
    assert len((await api.get(f"/hosts/{box}/secrets")).json()["data"]) == 1
    assert (await api.delete(f"/hosts/{box}/secrets/{sid}")).status_code == 204


async def test_at_rest_moved_ciphertext_and_rotation(inprocess: InProcess) -> None:
    app, store, tenant = inprocess.app, inprocess.app.state.secrets, inprocess.tenant_id
    first = await make(inprocess, "/secrets", name="ONE", value=VALUE)
    second = await make(inprocess, "/secrets", name="TWO", value="second-value")
    settings = app.state.settings
    assert (settings.secret_key_path.stat().st_mode & 0o777) == 0o600
    app.state.db.execute("PRAGMA wal_checkpoint(FULL)")
    for path in settings.data_dir.glob("oc-server.db*"):
        assert VALUE.encode() not in path.read_bytes(), path
    # a ciphertext copied onto another row does not decrypt
    rows = {r["id"]: r for r in app.state.db.all("SELECT * FROM secrets")}
    moved = {**rows[second["id"]], "nonce": rows[first["id"]]["nonce"]}
    moved["ciphertext"] = rows[first["id"]]["ciphertext"]
    with pytest.raises(InvalidTag):
        decrypt(store.ring, moved)
    app.state.db.update("secrets", second["id"], {"nonce": moved["nonce"], "ciphertext": moved["ciphertext"]})
    with pytest.raises(ApiProblem) as broken:
        await store.values(tenant, None, ["TWO"])
    assert broken.value.status == 500 and VALUE not in broken.value.message
    app.state.db.update(
        "secrets",
        second["id"],
        {"nonce": rows[second["id"]]["nonce"], "ciphertext": rows[second["id"]]["ciphertext"]},
    )
    # rotation (as `oc-server secrets rotate-key` does it, from another connection) while the app reads
    old_key = store.ring.current
    new_key, count = rotate(type(app.state.db)(settings.db_path), settings.secret_key_path)
    assert count == 2 and new_key != old_key
    assert await store.values(tenant, None, ["ONE", "TWO"]) == {"ONE": VALUE, "TWO": "second-value"}
    assert {r["key_id"] for r in app.state.db.all("SELECT key_id FROM secrets")} == {new_key}
    await make(inprocess, "/secrets", name="THREE", value="after")  # writes take the new key
    assert app.state.db.one("SELECT key_id FROM secrets WHERE name = 'THREE'") == {"key_id": new_key}
    assert old_key not in settings.secret_key_path.read_text()


def test_masking_whatever_the_chunks() -> None:
    """A value is masked wherever chunks split it; the result equals masking the whole output at once."""
    import random
    import re

    from embedded_server.agent.masking import MASK, Masker

    def masked(values: list[str], chunks: list[bytes]) -> bytes:
        masker = Masker(values)
        return b"".join(masker.feed(chunk) for chunk in chunks) + masker.flush()

    assert masked(["secret"], [b"a sec", b"ret b"]) == b"a *** b"
    assert masked(["abcd", "abcdef"], [b"xabcd", b"efx"]) == b"x***x"  # the longer value wins
    assert masked(["abc"], [b"abc"]) == b"abc"  # shorter than 4 bytes: not masked
    assert masked(["line-one\nline-two"], [b"line-two\n"]) == b"***\n"  # each line of a value
    rng = random.Random(13)
    for _ in range(500):
        value = "".join(rng.choice("ab") for _ in range(rng.randint(4, 8)))
        text = "".join(rng.choice(["a", "b", "c", value]) for _ in range(20)).encode()
        cuts = sorted(rng.sample(range(len(text)), min(5, len(text))))
        chunks = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        assert masked([value], chunks) == re.sub(re.escape(value.encode()), MASK, text)


def test_no_secret_value_in_screenshots() -> None:
    """The value typed in the screenshot scenes' secret form is on no picture (only its dots are)."""
    root = Path(__file__).resolve().parent.parent
    pictures = [*root.glob("screenshots/*.svg"), *root.glob("tests/__snapshots__/*/*.svg")]
    assert any("secret-form" in p.name for p in pictures)
    assert [p.name for p in pictures if b"npm_s3cret" in p.read_bytes()] == []
