"""Files end to end: a real oc-server, a real oc-agent whose home is a temp dir, plain httpx calls.

The agent's ``HOME`` is set to a temporary directory, so ``~``, relative paths and the default listing
are checked against files the test made. 403 needs a permission the agent lacks: the tests run as root
here, so that case starts an agent with CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH/CAP_FOWNER dropped from its
capability bounding set (root then obeys file modes like any user); as another user, chmod 000 does it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import hashlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import api, error, rss

from embedded_server.agent import fs as agent_fs
from embedded_server.fs.download import Unsatisfiable, byte_range, content_disposition
from embedded_server.protocol import AGENT_ERROR_STATUS

# --- helpers -----------------------------------------------------------------------------------------

BOUNDARY = "oc-test-boundary-7d1f"


async def fs_host(server: Any, start_agent: Any, tmp_path: Path, name: str = "files") -> tuple[str, Path]:
    """A host whose agent runs with ``HOME`` = a fresh temp dir; ``(host_id, home)``."""
    home = tmp_path / f"home-{name}"
    home.mkdir()
    host = server.register(name)
    start_agent(host["host_key"], HOME=str(home))
    await server.wait_for_status(host["id"], "online")
    return host["id"], home


def multipart(filename: str = "f.bin", fields: dict[str, str] | None = None, after: bool = False) -> tuple:
    """(head, tail) of a multipart body around a file part's bytes; ``fields`` before it, or after."""
    extra = "".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in (fields or {}).items()
    ).encode()
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = b"\r\n" + (extra if after else b"") + f"--{BOUNDARY}--\r\n".encode()
    return (head if after else extra + head), tail


def form_headers(length: int | None = None) -> dict[str, str]:
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    if length is not None:
        headers["Content-Length"] = str(length)
    return headers


async def upload(
    client: httpx.AsyncClient, host_id: str, path: str | None, data: bytes, **params: Any
) -> httpx.Response:
    query = {"path": path, **params} if path is not None else params
    return await client.post(
        f"/hosts/{host_id}/fs/upload", params=query, files={"file": ("upload.bin", data)}
    )


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if agent_fs.UPLOAD_MARK in p.name]


def written(directory: Path) -> int:
    """Bytes in the upload temp files of ``directory`` so far."""
    total = 0
    for name in leftovers(directory):
        with contextlib.suppress(OSError):
            total += (directory / name).stat().st_size
    return total


class PeakRss:
    """Samples the VmRSS of some processes every 20 ms in a thread; ``growth`` is peak − start."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = {name: rss(pid) for name, pid in pids.items()}
        self.peak = dict(self.start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], rss(pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def growth(self) -> dict[str, int]:
        return {name: self.peak[name] - self.start[name] for name in self.pids}


# --- unit: paths, errno mapping, ranges ---------------------------------------------------------------


def test_errno_mapping_covers_every_documented_code() -> None:
    cases = {
        errno.ENOENT: ("NOT_FOUND", 404),
        errno.EACCES: ("FORBIDDEN", 403),
        errno.EPERM: ("FORBIDDEN", 403),
        errno.ENOTDIR: ("NOT_A_DIRECTORY", 400),
        errno.EISDIR: ("IS_A_DIRECTORY", 400),
        errno.ENOTEMPTY: ("DIRECTORY_NOT_EMPTY", 409),
        errno.EEXIST: ("ALREADY_EXISTS", 409),
        errno.ENOSPC: ("NO_SPACE", 507),
    }
    for number, (code, status) in cases.items():
        error = agent_fs.fs_error(OSError(number, os.strerror(number)), "/x/y")
        assert (error.code, AGENT_ERROR_STATUS[error.code]) == (code, status)
        assert error.message.endswith(": /x/y")
    other = agent_fs.fs_error(OSError(errno.EIO, "Input/output error"), "/x")
    assert other.code not in AGENT_ERROR_STATUS  # an unexpected failure is the API's 502


def test_paths_resolve_against_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    home = str(tmp_path)
    assert agent_fs.resolve("~") == home
    assert agent_fs.resolve("~/a b/../c") == f"{home}/c"
    assert agent_fs.resolve("rel/x") == f"{home}/rel/x"
    assert agent_fs.resolve("/etc//hosts/.") == "/etc/hosts"
    assert agent_fs.resolve(None, default_home=True) == home
    assert agent_fs.resolve("  ", default_home=True) == home
    for bad in ("", "  ", "a\0b", "x" * 5000, 5):
        with pytest.raises(agent_fs.AgentError) as caught:
            agent_fs.resolve(bad)
        assert caught.value.code == "VALIDATION_ERROR"


def test_byte_ranges() -> None:
    assert byte_range("bytes=0-9", 100) == (0, 9)
    assert byte_range("bytes=90-", 100) == (90, 99)
    assert byte_range("bytes=90-500", 100) == (90, 99)
    assert byte_range("bytes=-10", 100) == (90, 99)
    assert byte_range("bytes=-500", 100) == (0, 99)
    for ignored in (None, "", "bytes=0-1,5-6", "items=0-1", "bytes=9-3", "bytes=-", "nonsense"):
        assert byte_range(ignored, 100) is None
    for unsatisfiable in ("bytes=100-", "bytes=100-200", "bytes=-0"):
        with pytest.raises(Unsatisfiable):
            byte_range(unsatisfiable, 100)
    assert content_disposition("a b é.txt") == (
        "attachment; filename=\"a b _.txt\"; filename*=UTF-8''a%20b%20%C3%A9.txt"
    )


# --- list and stat -----------------------------------------------------------------------------------


async def test_list_home_relative_tilde_and_alias(server: Any, start_agent: Any, tmp_path: Path) -> None:
    host_id, home = await fs_host(server, start_agent, tmp_path)
    (home / "b dir").mkdir()
    (home / "a.txt").write_bytes(b"12345")
    (home / "héllo 日本.txt").write_text("é")
    (home / "link-to-file").symlink_to("a.txt")
    (home / "link-to-dir").symlink_to("b dir")
    (home / "dangling").symlink_to("nowhere")
    (home / "b dir" / "inner").write_text("x")
    (home / os.fsdecode(b"not-utf8-\xff")).write_text("x")
    async with api(server) as client:
        response = await client.get(f"/hosts/{host_id}/fs/list")
        assert response.status_code == 200, response.text
        body = response.json()
        assert "not-utf8-\udcff" in [e["name"] for e in body["entries"]]  # escaped, not a 500
        assert body["path"] == str(home)
        names = [e["name"] for e in body["entries"]]
        assert names == sorted(names)
        by_name = {e["name"]: e for e in body["entries"]}
        assert set(by_name) >= {"a.txt", "b dir", "héllo 日本.txt", "link-to-file", "link-to-dir", "dangling"}
        a = by_name["a.txt"]
        assert a == {
            "name": "a.txt",
            "path": f"{home}/a.txt",
            "size": 5,
            "is_dir": False,
            "modified_at": a["modified_at"],
            "is_symlink": False,
            "mode": 0o100644,
            "mode_string": "-rw-r--r--",
        }
        assert a["modified_at"].endswith("Z") and len(a["modified_at"]) == 24
        assert by_name["b dir"]["is_dir"] is True and by_name["b dir"]["mode_string"].startswith("d")
        assert by_name["link-to-dir"] | {"modified_at": None} == {
            "name": "link-to-dir",
            "path": f"{home}/link-to-dir",
            "size": by_name["b dir"]["size"],
            "is_dir": True,  # follows the link, so browsing can enter it
            "modified_at": None,
            "is_symlink": True,
            "mode": 0o120777,
            "mode_string": "lrwxrwxrwx",
        }
        assert by_name["link-to-file"]["is_dir"] is False and by_name["link-to-file"]["size"] == 5
        assert by_name["dangling"]["is_symlink"] is True and by_name["dangling"]["is_dir"] is False

        for path in ("~/b dir", "b dir", f"{home}/b dir", "~/link-to-dir/../b dir", "~/b dir/"):
            response = await client.get(f"/hosts/{host_id}/fs/list", params={"path": path})
            assert response.status_code == 200, (path, response.text)
            assert [e["name"] for e in response.json()["entries"]] == ["inner"]
        linked = await client.get(f"/hosts/{host_id}/fs/list", params={"path": "~/link-to-dir"})
        assert linked.json()["path"] == f"{home}/link-to-dir"  # the path the user followed
        assert linked.json()["entries"][0]["path"] == f"{home}/link-to-dir/inner"
        alias = await client.get(f"/hosts/{host_id}/fs", params={"path": "~"})
        assert alias.status_code == 200 and alias.json() == body
        root = await client.get(f"/hosts/{host_id}/fs/list", params={"path": "/"})
        assert root.json()["path"] == "/" and any(e["path"] == "/etc" for e in root.json()["entries"])


async def test_stat_reports_symlinks_and_names(server: Any, start_agent: Any, tmp_path: Path) -> None:
    host_id, home = await fs_host(server, start_agent, tmp_path)
    (home / "some dir").mkdir()
    target = home / "data ünï.bin"
    target.write_bytes(b"x" * 300)
    (home / "ln").symlink_to("data ünï.bin")
    async with api(server) as client:
        got = (await client.get(f"/hosts/{host_id}/fs/stat", params={"path": "~/data ünï.bin"})).json()
        assert got | {"modified_at": None} == {
            "path": str(target),
            "name": "data ünï.bin",
            "size": 300,
            "mode": 0o100644,
            "mode_string": "-rw-r--r--",
            "is_dir": False,
            "is_symlink": False,
            "symlink_target": None,
            "modified_at": None,
        }
        link = (await client.get(f"/hosts/{host_id}/fs/stat", params={"path": "ln"})).json()
        assert link["is_symlink"] is True and link["symlink_target"] == "data ünï.bin"
        assert (
            link["mode_string"] == "lrwxrwxrwx"
            and link["mode"] == 0o120777
            and link["size"] == 300
            and link["name"] == "ln"
        )
        folder = (await client.get(f"/hosts/{host_id}/fs/stat", params={"path": "some dir"})).json()
        assert (
            folder["is_dir"] is True
            and folder["mode_string"].startswith("drwx")
            and stat.S_ISDIR(folder["mode"])
        )
        missing = await client.get(f"/hosts/{host_id}/fs/stat", params={"path": "nope"})
        assert (
            error(missing) == (404, "NOT_FOUND") and str(home / "nope") in missing.json()["error"]["message"]
        )


async def test_large_directory_lists_in_one_answer(server: Any, start_agent: Any, tmp_path: Path) -> None:
    host_id, home = await fs_host(server, start_agent, tmp_path)
    big = home / "many"
    big.mkdir()
    count = 20_000
    await asyncio.to_thread(lambda: [(big / f"file-{i:06d}-{'x' * 40}").touch() for i in range(count)])
    async with api(server) as client:
        started = time.monotonic()
        response = await client.get(f"/hosts/{host_id}/fs/list", params={"path": "many"})
        elapsed = time.monotonic() - started
        assert response.status_code == 200, response.text
        entries = response.json()["entries"]
        assert len(entries) == count and "truncated" not in response.json()
        assert entries[0]["name"] == f"file-000000-{'x' * 40}" and entries[-1]["path"].startswith(str(big))
        assert elapsed < 5, elapsed


# --- errors ------------------------------------------------------------------------------------------


async def test_errors_and_statuses(server: Any, start_agent: Any, tmp_path: Path) -> None:
    host_id, home = await fs_host(server, start_agent, tmp_path)
    (home / "file").write_text("x")
    (home / "full").mkdir()
    (home / "full" / "child").write_text("x")
    base = f"/hosts/{host_id}/fs"
    async with api(server) as client:
        assert error(await client.get(f"{base}/list", params={"path": "file"})) == (400, "NOT_A_DIRECTORY")
        assert error(await client.get(f"{base}/list", params={"path": "file/x"})) == (400, "NOT_A_DIRECTORY")
        assert error(await client.get(f"{base}/list", params={"path": "nope"})) == (404, "NOT_FOUND")
        assert error(await client.get(f"{base}/download", params={"path": "full"})) == (400, "IS_A_DIRECTORY")
        assert error(await client.get(f"{base}/download", params={"path": "nope"})) == (404, "NOT_FOUND")
        not_empty = await client.delete(f"{base}/delete", params={"path": "full"})
        assert error(not_empty) == (409, "DIRECTORY_NOT_EMPTY")
        assert (home / "full" / "child").exists()
        exists = await client.post(f"{base}/mkdir", json={"path": "full"})
        assert error(exists) == (409, "ALREADY_EXISTS")
        for bad in ("", "   ", "a\0b", "x" * 4097):
            for method, url in (("GET", "stat"), ("GET", "download"), ("DELETE", "delete")):
                response = await client.request(method, f"{base}/{url}", params={"path": bad})
                assert error(response) == (400, "VALIDATION_ERROR"), (url, bad[:10])
        assert error(await client.get(f"{base}/stat")) == (400, "VALIDATION_ERROR")
        assert error(await client.post(f"{base}/mkdir", json={"path": "  "})) == (400, "VALIDATION_ERROR")
        assert error(await client.post(f"{base}/mkdir", json={"paths": "x"})) == (400, "VALIDATION_ERROR")
        assert error(await client.get(f"{base}/list", params={"path": "a\0b"})) == (400, "VALIDATION_ERROR")
        assert error(await client.get("/hosts/nothost/fs/list")) == (400, "INVALID_ID")
        assert error(await client.get("/hosts/host_abcdefghijklmnopqrst/fs/list")) == (404, "NOT_FOUND")

    _, other_token = server.new_tenant()
    async with api(server, other_token) as stranger:
        for method, url in (("GET", "list"), ("GET", "stat?path=x"), ("GET", "download?path=x"),
                            ("DELETE", "delete?path=x"), ("POST", "upload?path=x")):  # fmt: skip
            assert error(await stranger.request(method, f"{base}/{url}")) == (404, "NOT_FOUND")

    offline = server.register("offline")
    async with api(server) as client:
        gone = f"/hosts/{offline['id']}/fs"
        assert error(await client.get(f"{gone}/list")) == (409, "HOST_OFFLINE")
        assert error(await client.get(f"{gone}/download", params={"path": "x"})) == (409, "HOST_OFFLINE")
        assert error(await upload(client, offline["id"], "x", b"data")) == (409, "HOST_OFFLINE")
        assert error(await client.post(f"{gone}/mkdir", json={"path": "x"})) == (409, "HOST_OFFLINE")
        await client.delete(f"/hosts/{offline['id']}")
        assert error(await client.get(f"{gone}/list")) == (409, "HOST_REVOKED")


def _drop_file_capabilities() -> None:
    """In the agent's child before exec: root loses the capabilities that bypass file modes."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


async def test_permission_denied_is_403(server: Any, start_agent: Any, tmp_path: Path) -> None:
    home = tmp_path / "home-locked"
    (home / "locked").mkdir(parents=True)
    (home / "locked" / "secret").write_text("s")
    (home / "readonly").mkdir()
    host = server.register("locked")
    if os.geteuid() == 0:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OC_", "MIOSA_"))}
        env |= {"OC_SERVER_URL": server.base_url, "OC_HOST_KEY": host["host_key"], "HOME": str(home),
                "OC_AGENT_STATE_DIR": str(tmp_path / "locked-state"), "OC_HEARTBEAT_INTERVAL": "0.5"}  # fmt: skip
        log = open(tmp_path / "locked-agent.log", "wb")  # noqa: SIM115 - closed below
        agent = subprocess.Popen(
            [sys.executable, "-m", "embedded_server.agent"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_drop_file_capabilities,
        )
    else:
        agent = start_agent(host["host_key"], HOME=str(home)).process
        log = None
    (home / "locked").chmod(0)
    (home / "readonly").chmod(0o555)
    try:
        await server.wait_for_status(host["id"], "online")
        base = f"/hosts/{host['id']}/fs"
        async with api(server) as client:
            assert error(await client.get(f"{base}/list", params={"path": "locked"})) == (403, "FORBIDDEN")
            denied = await client.get(f"{base}/download", params={"path": "locked/secret"})
            assert error(denied) == (403, "FORBIDDEN")
            assert error(await client.get(f"{base}/stat", params={"path": "locked/secret"})) == (
                403,
                "FORBIDDEN",
            )
            assert error(await upload(client, host["id"], "readonly/new", b"x")) == (403, "FORBIDDEN")
            mkdir = await client.post(f"{base}/mkdir", json={"path": "readonly/sub"})
            assert error(mkdir) == (403, "FORBIDDEN")
    finally:
        (home / "locked").chmod(0o755)
        (home / "readonly").chmod(0o755)
        agent.send_signal(signal.SIGKILL)
        agent.wait()
        if log is not None:
            log.close()


# --- mkdir and delete --------------------------------------------------------------------------------


async def test_mkdir_and_delete(server: Any, start_agent: Any, tmp_path: Path) -> None:
    host_id, home = await fs_host(server, start_agent, tmp_path)
    base = f"/hosts/{host_id}/fs"
    async with api(server) as client:
        made = await client.post(f"{base}/mkdir", json={"path": "~/a b/ç/d"})
        assert made.status_code == 201, made.text
        assert made.json()["path"] == f"{home}/a b/ç/d" and made.json()["is_dir"] is True
        assert made.json()["name"] == "d"
        assert (home / "a b" / "ç" / "d").is_dir()
        no_parent = await client.post(f"{base}/mkdir", json={"path": "x/y", "parents": False})
        assert error(no_parent) == (404, "NOT_FOUND")
        (home / "plain").write_text("p")
        assert error(await client.post(f"{base}/mkdir", json={"path": "plain/sub"})) == (
            400,
            "NOT_A_DIRECTORY",
        )
        spaced = await client.post(f"{base}/mkdir", json={"path": " lead", "parents": False})
        assert spaced.status_code == 201 and (home / " lead").is_dir()

        (home / "target.txt").write_text("keep me")
        (home / "ln").symlink_to("target.txt")
        (home / "dirlink").symlink_to("a b")
        assert (await client.delete(f"{base}/delete", params={"path": "ln"})).status_code == 204
        assert not (home / "ln").is_symlink() and (home / "target.txt").read_text() == "keep me"
        gone = await client.delete(f"{base}/delete", params={"path": "dirlink", "recursive": "true"})
        assert gone.status_code == 204  # the link goes, never what it points to
        assert (home / "a b" / "ç" / "d").is_dir()
        assert (await client.delete(f"{base}/delete", params={"path": "target.txt"})).status_code == 204
        assert not (home / "target.txt").exists()
        assert error(await client.delete(f"{base}/delete", params={"path": "target.txt"})) == (
            404,
            "NOT_FOUND",
        )
        empty = await client.delete(f"{base}/delete", params={"path": "a b/ç/d"})
        assert empty.status_code == 204 and not (home / "a b" / "ç" / "d").exists()
        (home / "a b" / "ç" / "f").write_text("x")
        tree = await client.delete(f"{base}", params={"path": "~/a b", "recursive": "true"})
        assert tree.status_code == 204 and not (home / "a b").exists()
        assert error(await client.delete(f"{base}/delete", params={"path": "/"})) == (400, "VALIDATION_ERROR")


# --- download ----------------------------------------------------------------------------------------


async def test_download_headers_and_ranges(server: Any, start_agent: Any, tmp_path: Path) -> None:
    host_id, home = await fs_host(server, start_agent, tmp_path)
    data = os.urandom(3 * 1024 * 1024 + 17)  # several frames
    (home / "file name é.bin").write_bytes(data)
    (home / "empty").write_bytes(b"")
    url = f"/hosts/{host_id}/fs/download"
    params = {"path": "~/file name é.bin"}
    async with api(server) as client:
        full = await client.get(url, params=params)
        assert full.status_code == 200 and full.content == data
        headers = full.headers
        assert headers["content-type"] == "application/octet-stream"
        assert headers["content-length"] == str(len(data)) and headers["accept-ranges"] == "bytes"
        assert headers["last-modified"].endswith("GMT")
        assert headers["content-disposition"].endswith("filename*=UTF-8''file%20name%20%C3%A9.bin")

        part = await client.get(url, params=params, headers={"Range": "bytes=1000-"})
        assert part.status_code == 206 and part.content == data[1000:]
        assert part.headers["content-range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
        assert part.headers["content-length"] == str(len(data) - 1000)
        middle = await client.get(url, params=params, headers={"Range": "bytes=5-1048580"})
        assert middle.status_code == 206 and middle.content == data[5:1048581]
        tail = await client.get(url, params=params, headers={"Range": "bytes=-100"})
        assert tail.status_code == 206 and tail.content == data[-100:]

        beyond = await client.get(url, params=params, headers={"Range": f"bytes={len(data)}-"})
        assert error(beyond) == (416, "RANGE_NOT_SATISFIABLE")
        assert beyond.headers["content-range"] == f"bytes */{len(data)}"
        several = await client.get(url, params=params, headers={"Range": "bytes=0-1,4-5"})
        assert several.status_code == 200 and several.content == data  # ignored: the whole file
        stale = await client.get(
            url, params=params, headers={"Range": "bytes=10-", "If-Range": "Mon, 01 Jan 2001 00:00:00 GMT"}
        )
        assert stale.status_code == 200 and len(stale.content) == len(data)
        fresh = await client.get(
            url, params=params, headers={"Range": "bytes=10-", "If-Range": headers["last-modified"]}
        )
        assert fresh.status_code == 206 and fresh.content == data[10:]

        empty = await client.get(url, params={"path": "empty"})
        assert empty.status_code == 200 and empty.content == b""
        proc = await client.get(url, params={"path": "/proc/self/status"})  # size 0, read to its end
        assert proc.status_code == 200 and b"VmRSS" in proc.content


def open_files(pid: int, path: Path) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            count += os.readlink(fd) == str(path)
    return count


async def test_abandoned_download_stops_the_agent(server: Any, start_agent: Any, tmp_path: Path) -> None:
    """A client that reads a little and hangs up: the agent closes the file instead of reading on."""
    home = tmp_path / "home-abandon"
    home.mkdir()
    big = home / "big.bin"
    with open(big, "wb") as out:
        out.truncate(256 * 1024 * 1024)  # sparse: cheap to make, 256 MiB to read
    host = server.register("abandon")
    agent = start_agent(host["host_key"], HOME=str(home))
    await server.wait_for_status(host["id"], "online")
    async with api(server) as client:
        async with client.stream("GET", f"/hosts/{host['id']}/fs/download", params={"path": "big.bin"}) as r:
            assert r.status_code == 200
            got = 0
            async for data in r.aiter_raw():
                got += len(data)
                if got > 2 * 1024 * 1024:
                    break
            assert open_files(agent.pid, big) == 1
    deadline = time.monotonic() + 5
    while open_files(agent.pid, big) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert open_files(agent.pid, big) == 0
    async with api(server) as client:  # and the host serves the next request as usual
        assert (
            await client.get(f"/hosts/{host['id']}/fs/stat", params={"path": "big.bin"})
        ).status_code == 200


# --- upload ------------------------------------------------------------------------------------------


async def test_upload_paths_fields_and_atomic_replace(server: Any, start_agent: Any, tmp_path: Path) -> None:
    host_id, home = await fs_host(server, start_agent, tmp_path)
    url = f"/hosts/{host_id}/fs/upload"
    async with api(server) as client:
        data = os.urandom(2 * 1024 * 1024 + 5)  # over the 1 MiB body limit of other routes
        made = await upload(client, host_id, "~/up loads/ñame 日本.bin", data, mkdir="true")
        assert made.status_code == 201, made.text
        assert made.json() | {"modified_at": None} == {
            "path": f"{home}/up loads/ñame 日本.bin",
            "name": "ñame 日本.bin",
            "size": len(data),
            "mode": 0o100644,
            "mode_string": "-rw-r--r--",
            "is_dir": False,
            "is_symlink": False,
            "symlink_target": None,
            "modified_at": None,
        }
        assert (home / "up loads" / "ñame 日本.bin").read_bytes() == data

        no_parent = await upload(client, host_id, "missing/x.bin", b"x")
        assert error(no_parent) == (404, "NOT_FOUND") and not (home / "missing").exists()
        big_refused = await upload(client, host_id, "missing/x.bin", os.urandom(24 * 1024 * 1024))
        assert error(big_refused) == (404, "NOT_FOUND")  # answered, not a broken pipe mid-body
        assert error(await upload(client, host_id, "up loads", b"x")) == (400, "IS_A_DIRECTORY")
        (home / "plain").write_text("p")
        assert error(await upload(client, host_id, "plain/x", b"x")) == (400, "NOT_A_DIRECTORY")

        existing = home / "script.sh"
        existing.write_text("old")
        existing.chmod(0o750)
        (home / "script-link").symlink_to("script.sh")
        replaced = await upload(client, host_id, "script-link", b"#!/bin/sh\necho new\n")
        assert replaced.status_code == 201, replaced.text
        assert existing.read_text() == "#!/bin/sh\necho new\n" and (home / "script-link").is_symlink()
        assert existing.stat().st_mode & 0o777 == 0o750  # a replaced file keeps its mode

        head, tail = multipart(fields={"path": "~/field-before.txt"})
        before = await client.post(url, content=head + b"before" + tail, headers=form_headers())
        assert before.status_code == 201 and (home / "field-before.txt").read_bytes() == b"before"
        head, tail = multipart(fields={"path": "field-after.txt"}, after=True)
        after = await client.post(url, content=head + b"after" * 300_000 + tail, headers=form_headers())
        assert after.status_code == 201, after.text  # spooled until the path arrived
        assert (home / "field-after.txt").read_bytes() == b"after" * 300_000
        raw = await client.post(
            url,
            params={"path": "raw.bin"},
            content=b"raw",
            headers={"Content-Type": "application/octet-stream"},
        )
        assert raw.status_code == 201 and (home / "raw.bin").read_bytes() == b"raw"
        empty = await upload(client, host_id, "empty.bin", b"")
        assert empty.status_code == 201 and (home / "empty.bin").read_bytes() == b""

        head, tail = multipart()
        nowhere = await client.post(url, content=head + b"x" + tail, headers=form_headers())
        assert error(nowhere) == (400, "VALIDATION_ERROR") and "path" in nowhere.json()["error"]["message"]
        no_file = await client.post(url, params={"path": "x"}, data={"a": "b"}, files={"f": (None, "v")})
        assert error(no_file) == (400, "VALIDATION_ERROR")
        json_body = await client.post(url, params={"path": "x"}, json={"a": 1})
        assert error(json_body) == (400, "VALIDATION_ERROR")
        assert not leftovers(home) and not leftovers(home / "up loads")


async def test_upload_form_fields_and_spool_are_bounded(
    server: Any, start_agent: Any, tmp_path: Path
) -> None:
    """Many small fields, long part headers and a big file part before ``path`` are refused, not kept."""
    from embedded_server.fs import upload as server_upload

    host_id, home = await fs_host(server, start_agent, tmp_path)
    url = f"/hosts/{host_id}/fs/upload"
    async with api(server) as client:
        head, tail = multipart(fields={f"f{n}": "v" for n in range(server_upload.MAX_FIELDS + 1)})
        many = await client.post(
            url, params={"path": "many"}, content=head + b"x" + tail, headers=form_headers()
        )
        assert error(many) == (400, "VALIDATION_ERROR") and "form fields" in many.json()["error"]["message"]
        long_header = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\nX-Pad: {"p" * 20000}\r\n\r\nv\r\n'
        ).encode()
        head, tail = multipart()
        padded = await client.post(
            url, params={"path": "pad"}, content=long_header + head + b"x" + tail, headers=form_headers()
        )
        assert error(padded) == (400, "VALIDATION_ERROR")  # python-multipart's own header size limit
        assert "header size" in padded.json()["error"]["message"]
        head, tail = multipart(fields={"path": "late.bin"}, after=True)
        body = head + b"z" * (server_upload.MAX_SPOOL + 1) + tail
        late = await client.post(url, content=body, headers=form_headers())
        assert error(late) == (413, "PAYLOAD_TOO_LARGE") and "?path=" in late.json()["error"]["message"]
        assert (
            not (home / "many").exists() and not (home / "pad").exists() and not (home / "late.bin").exists()
        )
        spool = server.data_dir / "spool"
        assert not spool.exists() or not any(spool.iterdir())


async def test_interrupted_upload_leaves_no_file(server: Any, start_agent: Any, tmp_path: Path) -> None:
    """A client that goes away mid-body: the target keeps its old content and no temp file stays."""
    host_id, home = await fs_host(server, start_agent, tmp_path)
    (home / "keep.bin").write_bytes(b"original")
    head, tail = multipart()
    total = len(head) + 8 * 1024 * 1024 + len(tail)
    for target in ("keep.bin", "new.bin"):
        request = (
            f"POST /api/v1/opencomputers/hosts/{host_id}/fs/upload?path={target} HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: Bearer {server.token}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {total}\r\n\r\n"
        ).encode()
        sock = socket.create_connection(("127.0.0.1", int(server.base_url.rsplit(":", 1)[1])))
        try:
            sock.sendall(request + head)
            chunk = os.urandom(256 * 1024)
            for _ in range(12):  # 3 MiB of 8
                sock.sendall(chunk)
            deadline = time.monotonic() + 5
            while not written(home) and time.monotonic() < deadline:  # the agent is writing
                await asyncio.sleep(0.02)
            assert written(home), "the upload's bytes never reached the agent"
        finally:
            sock.close()
        deadline = time.monotonic() + 5
        while leftovers(home) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert not leftovers(home)
    assert (home / "keep.bin").read_bytes() == b"original"
    assert not (home / "new.bin").exists()


async def test_agent_killed_mid_upload_cleans_up_when_it_starts(
    server: Any, start_agent: Any, tmp_path: Path
) -> None:
    """The temporary file of an upload the agent died in is hidden from listings and deleted on restart."""
    home, state = tmp_path / "home-killed", tmp_path / "state-killed"
    home.mkdir()
    host = server.register("killed")
    agent = start_agent(host["host_key"], HOME=str(home), OC_AGENT_STATE_DIR=str(state))
    await server.wait_for_status(host["id"], "online")
    head, tail = multipart()
    request = (
        f"POST /api/v1/opencomputers/hosts/{host['id']}/fs/upload?path=big.bin HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {server.token}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(head) + 8 * 1024 * 1024 + len(tail)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", int(server.base_url.rsplit(":", 1)[1])))
    try:
        sock.sendall(request + head + os.urandom(1024 * 1024))
        deadline = time.monotonic() + 5
        while not written(home) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert written(home), "the upload's bytes never reached the agent"
        async with api(server) as client:
            listing = await client.get(f"/hosts/{host['id']}/fs/list", params={"path": "~"})
            assert listing.status_code == 200 and listing.json()["entries"] == []  # the temp file is hidden
        agent.stop(signal.SIGKILL)
    finally:
        sock.close()
    assert leftovers(home), "kill -9 leaves the temporary file (nothing could delete it)"
    start_agent(host["host_key"], HOME=str(home), OC_AGENT_STATE_DIR=str(state))
    await server.wait_for_status(host["id"], "online")
    assert not leftovers(home) and not (home / "big.bin").exists()


async def test_deep_trees_and_planted_symlinks(server: Any, start_agent: Any, tmp_path: Path) -> None:
    """1,200 levels are created and deleted (no recursion); an upload never writes through another
    user's symlink (Linux's protected_symlinks rule), but does through the agent user's own."""
    host_id, home = await fs_host(server, start_agent, tmp_path)
    deep = "/".join(["d"] * 1200)
    async with api(server) as client:
        made = await client.post(f"/hosts/{host_id}/fs/mkdir", json={"path": f"~/tree/{deep}"})
        assert made.status_code == 201, made.text
        uploaded = await upload(client, host_id, f"~/tree/{deep}/leaf.txt", b"leaf")
        assert uploaded.status_code == 201, uploaded.text
        gone = await client.delete(f"/hosts/{host_id}/fs", params={"path": "~/tree", "recursive": "true"})
        assert gone.status_code == 204, gone.text
        assert not (home / "tree").exists()

        if os.geteuid() != 0:
            pytest.skip("planting another user's symlink needs root (lchown)")
        secret = home / "root-only"
        secret.write_text("untouched")
        secret.chmod(0o600)
        shared = home / "shared"
        shared.mkdir(mode=0o1777)
        os.chown(shared, 0, 0)
        (shared / "planted").symlink_to(secret)
        os.lchown(shared / "planted", 4242, 4242)  # another user's link in a directory of root's
        refused = await upload(client, host_id, "shared/planted", b"pwned")
        assert (
            error(refused) == (403, "FORBIDDEN")
            and "symlink of another user" in refused.json()["error"]["message"]
        )
        assert secret.read_text() == "untouched" and (shared / "planted").is_symlink()
        assert not leftovers(shared)
        os.lchown(shared / "planted", 0, 0)  # the agent user's own link is followed, as cp does
        followed = await upload(client, host_id, "shared/planted", b"mine")
        assert followed.status_code == 201 and secret.read_text() == "mine"


# --- 1 GiB both ways, bounded memory -----------------------------------------------------------------

GIB = 1 << 30
BLOCK = 1 << 20


def block(i: int, seed: bytes) -> bytes:
    """Block ``i`` of the test file: a repeated random 1 MiB with its number in front (not compressible
    by accident, reproducible on both ends without holding the file)."""
    return i.to_bytes(8, "big") + seed[8:]


async def test_one_gib_upload_and_download_with_bounded_memory(
    server: Any, start_agent: Any, tmp_path: Path
) -> None:
    shm = Path("/dev/shm")
    fast = shm.is_dir() and os.statvfs(shm).f_bavail * os.statvfs(shm).f_frsize > 3 * GIB
    work = Path(os.environ.get("OC_TEST_BIG_DIR") or (shm if fast else tmp_path))
    host = server.register("big")
    home = Path(await asyncio.to_thread(lambda: tempfile.mkdtemp(dir=work, prefix="oc-fs-")))
    agent = start_agent(host["host_key"], HOME=str(home))
    await server.wait_for_status(host["id"], "online")
    seed = os.urandom(BLOCK)
    head, tail = multipart("big.bin")
    sent = hashlib.sha1()

    async def body() -> AsyncIterator[bytes]:
        yield head
        for i in range(GIB // BLOCK):
            data = block(i, seed)
            sent.update(data)
            yield data
        yield tail

    try:
        with PeakRss({"server": server.process.pid, "agent": agent.pid}) as memory:
            async with api(server) as client:
                started = time.monotonic()
                response = await client.post(
                    f"/hosts/{host['id']}/fs/upload",
                    params={"path": "big.bin"},
                    content=body(),
                    headers=form_headers(len(head) + GIB + len(tail)),
                    timeout=120,
                )
                up = time.monotonic() - started
                assert response.status_code == 201, response.text
                assert response.json()["size"] == GIB
                received = hashlib.sha1()
                count = 0
                started = time.monotonic()
                async with client.stream(
                    "GET", f"/hosts/{host['id']}/fs/download", params={"path": "big.bin"}, timeout=120
                ) as download:
                    assert download.status_code == 200
                    assert download.headers["content-length"] == str(GIB)
                    async for data in download.aiter_raw():
                        received.update(data)
                        count += len(data)
                down = time.monotonic() - started
        assert count == GIB and received.hexdigest() == sent.hexdigest()
        growth = memory.growth()
        print(f"\n1 GiB: upload {GIB / up / 1e6:.0f} MB/s, download {GIB / down / 1e6:.0f} MB/s; "
              f"RSS growth {({k: f'{v >> 20} MiB' for k, v in growth.items()})}")  # fmt: skip
        assert growth["server"] < 100 << 20 and growth["agent"] < 100 << 20, growth
    finally:
        await asyncio.to_thread(shutil.rmtree, home, True)
