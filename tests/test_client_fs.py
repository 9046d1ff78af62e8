"""The client's file system methods against the REAL embedded server and a REAL agent working in a
temporary directory (tests/conftest.py): uploads from bytes, a path and async streams with progress,
downloads to a path with resume, cancelled transfers leaving no half file, and errors as exceptions."""

from __future__ import annotations

import asyncio
import os
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import online_host_id as online

from oc_tui.api import OpenComputersClient, errors
from oc_tui.api.transfers import CHUNK, SourceSizeMismatch, TransferMeter, part_path
from oc_tui.widgets.formatting import host_text


def client_for(server) -> OpenComputersClient:
    return OpenComputersClient(server.base_url, server.token)


class Progress:
    """Records every ``progress(done, total)`` call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))

    @property
    def last(self) -> tuple[int, int | None]:
        return self.calls[-1]


async def test_list_stat_mkdir_delete(server, start_agent, tmp_path: Path) -> None:
    host_id = await online(server, start_agent, "fs-basics")
    root = tmp_path / "remote dir ü"  # a space and a non-ASCII name all the way through
    async with client_for(server) as client:
        made = await client.mkdir(host_id, str(root / "a" / "b"))
        assert made is not None and made.is_dir and made.path == str(root / "a" / "b")
        (root / "a" / "file.txt").write_text("hello")

        listing = await client.list_dir(host_id, str(root / "a"))
        assert listing.path == str(root / "a")
        assert [(e.name, e.is_dir, e.size) for e in listing.entries] == [
            ("b", True, made.size),
            ("file.txt", False, 5),
        ]

        stat = await client.stat(host_id, str(root / "a" / "file.txt"))
        assert (stat.size, stat.is_dir, stat.is_symlink) == (5, False, False)
        assert stat.permissions == "-rw-r--r--" or (stat.permissions or "").startswith("-rw")
        assert stat.mode is not None and stat.mode & 0o600 == 0o600

        home = await client.list_dir(host_id, "")
        assert home.path == str(Path.home())

        # a name that is not UTF-8 (its byte comes as \udcff): the directory still lists, shown as \xff
        Path(os.fsdecode(os.fsencode(root / "a") + b"/bad\xffbyte")).write_text("")
        names = [entry.name for entry in (await client.list_dir(host_id, str(root / "a"))).entries]
        assert "bad\udcffbyte" in names and host_text("bad\udcffbyte") == "bad\\xffbyte"

        with pytest.raises(errors.ConflictError) as exc:
            await client.mkdir(host_id, str(root / "a"))
        assert exc.value.code == "ALREADY_EXISTS"
        with pytest.raises(errors.NotFoundError):
            await client.mkdir(host_id, str(root / "x" / "y"), parents=False)
        with pytest.raises(errors.ConflictError) as exc:
            await client.delete_path(host_id, str(root / "a"))
        assert exc.value.code == "DIRECTORY_NOT_EMPTY"
        with pytest.raises(errors.BadRequestError) as exc:
            await client.list_dir(host_id, str(root / "a" / "file.txt"))
        assert exc.value.code == "NOT_A_DIRECTORY"

        await client.delete_path(host_id, str(root / "a"), recursive=True)
        assert not (root / "a").exists()
        with pytest.raises(errors.NotFoundError):
            await client.stat(host_id, str(root / "a"))


async def test_upload_from_bytes_path_and_streams_with_progress(server, start_agent, tmp_path: Path) -> None:
    host_id = await online(server, start_agent, "fs-upload")
    remote = tmp_path / "up"
    remote.mkdir()
    data = os.urandom(3 * CHUNK + 123)
    async with client_for(server) as client:
        progress = Progress()
        stat = await client.upload(host_id, str(remote / "from bytes.bin"), data, progress=progress)
        assert stat is not None and stat.size == len(data)
        assert (remote / "from bytes.bin").read_bytes() == data
        assert progress.calls[0] == (0, len(data)) and progress.last == (len(data), len(data))
        assert len(progress.calls) >= 4  # one per MiB at least

        local = tmp_path / "local naïve file.bin"
        local.write_bytes(data[::-1])
        progress = Progress()
        await client.upload(host_id, str(remote / "from path ü.bin"), local, progress=progress)
        assert (remote / "from path ü.bin").read_bytes() == data[::-1]
        assert progress.last == (len(data), len(data))
        await client.upload(host_id, str(remote / "from str.bin"), str(local))
        assert (remote / "from str.bin").read_bytes() == data[::-1]

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(data), 100_000):
                yield data[start : start + 100_000]
                await asyncio.sleep(0)

        progress = Progress()  # unknown size: chunked transfer encoding, total None
        await client.upload(host_id, str(remote / "streamed.bin"), chunks(), progress=progress)
        assert (remote / "streamed.bin").read_bytes() == data
        assert progress.last == (len(data), None)
        await client.upload(host_id, str(remote / "sized.bin"), chunks(), size=len(data))
        assert (remote / "sized.bin").read_bytes() == data

        # replacing a file is atomic; missing parents only with mkdir=True
        await client.upload(host_id, str(remote / "sized.bin"), b"new")
        assert (remote / "sized.bin").read_bytes() == b"new"
        with pytest.raises(errors.NotFoundError):
            await client.upload(host_id, str(remote / "no" / "dir.bin"), b"x")
        stat = await client.upload(host_id, str(remote / "no" / "dir.bin"), b"x", mkdir=True)
        assert stat is not None and stat.size == 1 and (remote / "no" / "dir.bin").read_bytes() == b"x"
        with pytest.raises(SourceSizeMismatch):
            await client.upload(host_id, str(remote / "short.bin"), chunks(), size=len(data) + 1)
    await asyncio.sleep(0.3)
    assert not (remote / "short.bin").exists()
    assert sorted(p.name for p in remote.iterdir() if ".oc-upload-" in p.name) == []


async def test_download_whole_ranges_and_resume(server, start_agent, tmp_path: Path) -> None:
    host_id = await online(server, start_agent, "fs-download")
    data = os.urandom(5 * CHUNK + 7)
    source = tmp_path / "remote file ü.bin"
    source.write_bytes(data)
    async with client_for(server) as client:
        assert await client.download(host_id, str(source), length=1000) == data[:1000]
        assert await client.download(host_id, str(source), offset=len(data) - 10) == data[-10:]
        async with client.download_stream(host_id, str(source), offset=CHUNK) as stream:
            assert (stream.size, stream.offset, stream.length) == (len(data), CHUNK, len(data) - CHUNK)
            assert b"".join([chunk async for chunk in stream]) == data[CHUNK:]

        dest = tmp_path / "local" / "copy.bin"
        dest.parent.mkdir()
        progress = Progress()
        assert await client.download_to(host_id, str(source), dest, progress=progress) == len(data)
        assert dest.read_bytes() == data and not part_path(dest).exists()
        assert progress.calls[0] == (0, len(data)) and progress.last == (len(data), len(data))

        # a download that stopped half way leaves a .part stamped with the file's version (mtime)
        resumed = tmp_path / "local" / "resumed.bin"
        mtime = source.stat().st_mtime

        def half_done(part: Path, content: bytes, stamp: float = mtime) -> None:
            part.write_bytes(content)
            os.utime(part, (stamp, stamp))

        # resume: a .part holding the first 2 MiB of this version is continued from there
        half_done(part_path(resumed), data[: 2 * CHUNK])
        progress = Progress()
        await client.download_to(host_id, str(source), resumed, resume=True, progress=progress)
        assert resumed.read_bytes() == data
        assert progress.calls[0] == (2 * CHUNK, len(data))

        # a .part of another version (the file changed since): If-Range gets the whole file again
        stale = tmp_path / "local" / "stale.bin"
        half_done(part_path(stale), b"x" * (2 * CHUNK), stamp=mtime - 3600)
        progress = Progress()
        await client.download_to(host_id, str(source), stale, resume=True, progress=progress)
        assert stale.read_bytes() == data
        assert progress.calls[0] == (0, len(data))

        # a complete .part (the server answers 416 to a range from its end) is just renamed
        complete = tmp_path / "local" / "complete.bin"
        half_done(part_path(complete), data)
        await client.download_to(host_id, str(source), complete, resume=True)
        assert complete.read_bytes() == data
        assert int(complete.stat().st_mtime) == int(mtime)  # the copy keeps the remote file's time
        # a .part longer than the file starts again
        longer = tmp_path / "local" / "longer.bin"
        part_path(longer).write_bytes(data + b"junk")
        await client.download_to(host_id, str(source), longer, resume=True)
        assert longer.read_bytes() == data

        # into a directory: the file keeps its name
        await client.download_to(host_id, str(source), tmp_path / "local")
        assert (tmp_path / "local" / source.name).read_bytes() == data

        # an empty file
        (tmp_path / "empty").write_bytes(b"")
        assert await client.download(host_id, str(tmp_path / "empty")) == b""
        await client.download_to(host_id, str(tmp_path / "empty"), tmp_path / "local" / "empty")
        assert (tmp_path / "local" / "empty").read_bytes() == b""


def _change(source: Path, how: str) -> None:
    """Change ``source`` the way a writer on the host would while it is being downloaded."""
    size = source.stat().st_size
    if how == "rewrite in place":  # same size, new bytes where the download has not read yet
        with open(source, "r+b") as out:
            out.seek(size - 4 * CHUNK)
            out.write(b"N" * 4 * CHUNK)
    elif how == "shrink":
        os.truncate(source, size // 2)
    elif how == "grow":
        with open(source, "ab") as out:
            out.write(b"more")
    elif how == "replace":  # an editor's save: a new file renamed over the old one
        fresh = source.with_name("fresh.bin")
        with open(fresh, "wb") as out:
            out.truncate(size)
        os.replace(fresh, source)
    elif how == "same mtime":  # rewritten in place, then its time put back (rsync, touch -r)
        st = source.stat()
        with open(source, "r+b") as out:
            out.seek(size - 4 * CHUNK)
            out.write(b"M" * 4 * CHUNK)
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("resume", [False, True], ids=["fresh", "resumed"])
@pytest.mark.parametrize("how", ["rewrite in place", "shrink", "grow", "replace", "same mtime"])
async def test_a_file_changed_during_download_fails_and_saves_nothing(
    server, start_agent, tmp_path: Path, how: str, resume: bool
) -> None:
    host_id = await online(server, start_agent, "fs-changing")
    source = tmp_path / "changing.bin"
    with open(source, "wb") as out:
        out.truncate(64 * CHUNK)  # 64 MiB, sparse
    dest = tmp_path / "copy.bin"
    if resume:  # the first 2 MiB of this very version, as a stopped download leaves them
        part_path(dest).write_bytes(b"\0" * 2 * CHUNK)
        stamp = source.stat().st_mtime
        os.utime(part_path(dest), (stamp, stamp))
    changed: list[int] = []

    def progress(done: int, total: int | None) -> None:
        if not changed and done >= (3 if resume else 1) * CHUNK:
            changed.append(done)
            _change(source, how)

    async with client_for(server) as client:
        with pytest.raises(errors.SourceChangedError, match="changed while it was downloaded"):
            await client.download_to(host_id, str(source), dest, resume=resume, progress=progress)
        assert changed and changed[0] < 32 * CHUNK  # the change really came in the middle
        assert not dest.exists() and not part_path(dest).exists()
        # downloading again gets the new version, whole
        assert await client.download_to(host_id, str(source), dest) == source.stat().st_size
        assert dest.read_bytes() == source.read_bytes()


async def test_cancelled_transfers_leave_no_half_file(server, start_agent, tmp_path: Path) -> None:
    host_id = await online(server, start_agent, "fs-cancel")
    source = tmp_path / "big.bin"
    with open(source, "wb") as out:
        out.truncate(256 * CHUNK)  # 256 MiB, sparse: cheap to make, slow enough to cancel
    dest = tmp_path / "dest.bin"
    async with client_for(server) as client:
        started = asyncio.Event()

        def progress(done: int, total: int | None) -> None:
            if done >= 2 * CHUNK:
                started.set()

        task = asyncio.create_task(client.download_to(host_id, str(source), dest, progress=progress))
        await asyncio.wait_for(started.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not dest.exists() and not part_path(dest).exists()

        # an upload cancelled half way leaves neither the target nor the temporary file on the host
        target = tmp_path / "remote" / "up.bin"
        target.parent.mkdir()
        sent = asyncio.Event()

        async def slow() -> AsyncIterator[bytes]:
            yield b"x" * CHUNK
            sent.set()
            await asyncio.sleep(60)
            yield b"never"

        upload = asyncio.create_task(client.upload(host_id, str(target), slow(), size=10 * CHUNK))
        await asyncio.wait_for(sent.wait(), 10)
        await asyncio.sleep(0.3)
        upload.cancel()
        with pytest.raises(asyncio.CancelledError):
            await upload
        for _ in range(50):
            if not list(target.parent.iterdir()):
                break
            await asyncio.sleep(0.1)
        assert list(target.parent.iterdir()) == []


async def test_errors_map_to_exceptions(server, start_agent, tmp_path: Path) -> None:
    host_id = await online(server, start_agent, "fs-errors")
    (tmp_path / "f").write_bytes(b"12345")
    offline = server.register("fs-offline")["id"]
    async with client_for(server) as client:
        with pytest.raises(errors.NotFoundError):
            await client.download(host_id, str(tmp_path / "missing"))
        with pytest.raises(errors.NotFoundError):
            await client.download_to(host_id, str(tmp_path / "missing"), tmp_path / "out")
        assert not (tmp_path / "out").exists() and not part_path(tmp_path / "out").exists()
        with pytest.raises(errors.BadRequestError) as exc:
            await client.download(host_id, str(tmp_path))
        assert exc.value.code == "IS_A_DIRECTORY"
        with pytest.raises(errors.RangeNotSatisfiableError):
            await client.download(host_id, str(tmp_path / "f"), offset=10)
        with pytest.raises(errors.NotFoundError):
            await client.delete_path(host_id, str(tmp_path / "missing"))
        with pytest.raises(errors.ValidationError):
            await client.stat(host_id, "bad\0path")
        with pytest.raises(errors.HostOfflineError):
            await client.list_dir(offline, "/")
        with pytest.raises(errors.HostOfflineError):
            await client.upload(offline, "/tmp/x", b"x")
        with pytest.raises(errors.HostOfflineError):
            async with client.download_stream(offline, "/etc/hostname"):
                pass
        if os.geteuid() != 0:
            locked = tmp_path / "locked"
            locked.mkdir(mode=0)
            with pytest.raises(errors.ForbiddenError):
                await client.list_dir(host_id, str(locked))
            locked.chmod(0o700)


def test_transfer_meter_rate_and_eta() -> None:
    meter = TransferMeter(1000, window=3.0, clock=lambda: 0.0, started=0.0)
    assert meter.rate is None and meter.eta is None
    meter.update(0, now=0.0)
    meter.update(100, now=1.0)
    meter.update(200, now=2.0)
    assert meter.rate == pytest.approx(100.0)
    assert meter.eta == pytest.approx(8.0)
    assert meter.fraction == pytest.approx(0.2)
    meter.update(800, now=6.0)  # the window forgets the old, slower samples
    assert meter.rate is not None and meter.rate > 100.0


async def test_big_transfers_hold_little_memory(server, start_agent, tmp_path: Path) -> None:
    """256 MiB up and down: the client's own allocations stay a few MiB (chunks, not the file)."""
    host_id = await online(server, start_agent, "fs-memory")
    source = tmp_path / "big.bin"
    with open(source, "wb") as out:
        out.truncate(256 * CHUNK)
    async with client_for(server) as client:
        tracemalloc.start()
        try:
            stat = await client.upload(host_id, str(tmp_path / "up.bin"), source)
            up_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            size = await client.download_to(host_id, str(tmp_path / "up.bin"), tmp_path / "down.bin")
            down_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert stat is not None and stat.size == size == 256 * CHUNK
    assert (tmp_path / "down.bin").stat().st_size == 256 * CHUNK
    print(f"peaks: upload {up_peak / CHUNK:.1f} MiB, download {down_peak / CHUNK:.1f} MiB")
    assert up_peak < 16 * CHUNK and down_peak < 16 * CHUNK, (up_peak, down_peak)
