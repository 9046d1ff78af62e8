"""The binary framing of a job's output stream (docs/api.md, "Binary frames"): our client asks for it,
the server answers it, and what arrives is exactly the job's output — nothing lost, nothing twice, in
order — also when resumed inside a frame, past the output cap and across a server restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from typing import Any

import pytest
from conftest import api, online_host

from oc_tui.api import OpenComputersClient, frames, models
from oc_tui.api.streams import JobExit, OutputChunk, OutputTruncated, job_output_bytes

# Numbered lines on stdout, and now and then one on stderr: any byte lost, doubled or moved shows.
PATTERN = (
    "import sys\n"
    "for i in range({n}):\n"
    "    sys.stdout.write('out %07d ' % i + 'x' * 90 + '\\n')\n"
    "    if i % 997 == 0:\n"
    "        sys.stdout.flush(); sys.stderr.write('err %07d\\n' % i); sys.stderr.flush()\n"
)


def expected(n: int) -> tuple[bytes, bytes]:
    """The stdout and stderr of :data:`PATTERN` with ``n`` lines."""
    out = "".join(f"out {i:07d} " + "x" * 90 + "\n" for i in range(n))
    err = "".join(f"err {i:07d}\n" for i in range(0, n, 997))
    return out.encode(), err.encode()


async def read_output(client: OpenComputersClient, host_id: str, job_id: str, **options: Any) -> list[Any]:
    """Every item of the job's output (binary frames: our client's default)."""
    async with client.job_output(host_id, job_id, **options) as output:
        return [item async for item in output]


def by_stream(items: list[Any]) -> dict[str, bytes]:
    out = {"stdout": b"", "stderr": b"", "all": b""}
    for item in items:
        if isinstance(item, OutputChunk):
            out[item.stream] += item.data
            out["all"] += item.data
    return out


def test_decoder_takes_frames_split_anywhere() -> None:
    """Frames fed in random pieces (empty payloads too) come out whole and in order; a head that is not
    a frame of ours is refused."""
    rng = random.Random(18)
    sent = [
        (rng.choice((frames.OUTPUT, frames.EVENT, frames.KEEPALIVE)), rng.randint(0, 5000))
        for _ in range(400)
    ]
    blob = b"".join(
        frames.HEAD.pack(kind, 1, i + 1, 0 if kind == frames.KEEPALIVE else n)
        + (b"" if kind == frames.KEEPALIVE else bytes([i % 251]) * n)
        for i, (kind, n) in enumerate(sent)
    )
    for _ in range(20):
        decoder, got, pos = frames.FrameDecoder(), [], 0
        while pos < len(blob):
            step = rng.choice((1, 13, 14, 15, 4096, 70000))
            got += decoder.feed(blob[pos : pos + step])
            pos += step
        assert decoder.pending == 0 and [g[2] for g in got] == list(range(1, len(sent) + 1))
        for i, ((kind, n), (gkind, _, _, payload)) in enumerate(zip(sent, got, strict=True)):
            assert gkind == kind and payload == (b"" if kind == frames.KEEPALIVE else bytes([i % 251]) * n)
    with pytest.raises(frames.FrameError):
        frames.FrameDecoder().feed(frames.HEAD.pack(9, 0, 0, 0))
    with pytest.raises(frames.FrameError):
        frames.FrameDecoder().feed(frames.HEAD.pack(frames.OUTPUT, 1, 0, frames.MAX_PAYLOAD + 1))


async def test_frames_carry_exactly_the_output_sse_carries(
    client: OpenComputersClient, host: dict[str, Any], server: Any
) -> None:
    """2 MiB of numbered lines: through frames the bytes are exact per stream and, both streams
    together, in the same order and with the same end ids as the SSE stream gives every other client;
    resuming at an id inside a frame gives exactly the rest; after the exit id only the end."""
    n = 20_000
    job = await client.run_job(host["id"], "python3", args=["-c", PATTERN.format(n=n)], wait=30)
    assert job.status == "completed"
    items = await read_output(client, host["id"], job.id)
    got = by_stream(items)
    assert (got["stdout"], got["stderr"]) == expected(n)
    assert isinstance(items[-1], JobExit) and items[-1].exit_code == 0
    async with client.job_events(host["id"], job.id) as events:  # the frames themselves: raw bytes
        assert "bytes" in (await anext(events)).data
    # the same stream as SSE (what MIOSA's SDKs read, and any client that does not ask for frames)
    sse_all, sse_ids = b"", []
    async with api(server) as http:
        response = await http.get(f"/hosts/{host['id']}/exec/{job.id}/stream")
    assert response.headers["content-type"].startswith("text/event-stream")
    for block in response.text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if fields.get("data", "[DONE]") != "[DONE]":
            sse_all += job_output_bytes(models.JobEvent.model_validate(json.loads(fields["data"])))
            sse_ids.append(fields.get("id"))
    assert sse_all == got["all"] and sse_ids[-1] == items[-1].event_id == str(len(got["all"]) + 1)
    chunk_ids = [item.event_id for item in items if isinstance(item, OutputChunk)]
    assert chunk_ids == sorted(chunk_ids, key=int) and chunk_ids[-1] == str(len(got["all"]))
    # resume inside the second frame: exactly the bytes after that offset, then the exit
    middle = int(chunk_ids[0]) + 12_345
    rest = await read_output(client, host["id"], job.id, last_event_id=str(middle))
    assert by_stream(rest)["all"] == got["all"][middle:] and isinstance(rest[-1], JobExit)
    assert await read_output(client, host["id"], job.id, last_event_id=items[-1].event_id) == []
    # connections cut mid-frame (twice): the client reconnects at its last id; nothing lost or doubled
    port, proxy = await cutting_proxy(server.base_url, [300_001, 777_777])
    async with proxy, OpenComputersClient(f"http://127.0.0.1:{port}", server.token) as through:
        states: list[Any] = []
        cut = await read_output(through, host["id"], job.id, on_state=states.append)
    assert by_stream(cut) == got and isinstance(cut[-1], JobExit)
    assert [state.connected for state in states].count(False) == 2


async def cutting_proxy(base_url: str, budgets: list[int]) -> tuple[int, asyncio.Server]:
    """A TCP proxy to ``base_url`` whose first connections are cut after ``budgets`` bytes each to the
    client (the rest pass whole); returns its port and the server (``async with`` it)."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)

    async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, budget: int | None) -> None:
        try:
            while data := await src.read(65536):
                if budget is not None and len(data) >= budget:
                    dst.write(data[:budget])
                    break
                budget = None if budget is None else budget - len(data)
                dst.write(data)
                await dst.drain()
        finally:
            dst.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        budget = budgets.pop(0) if budgets else None
        with contextlib.suppress(OSError):
            await asyncio.gather(pump(reader, up_writer, None), pump(up_reader, writer, budget))

    proxy = await asyncio.start_server(handle, "127.0.0.1", 0)
    return proxy.sockets[0].getsockname()[1], proxy


async def test_frames_past_the_cap(extra_server: Any, start_agent: Any) -> None:
    """Past the output cap the live output comes as frames without ids, once, after one ``truncated``."""
    capped = extra_server(OC_JOB_OUTPUT_CAP=str(1 << 20))
    host = await online_host(capped, start_agent, "frames", OC_SERVER_URL=capped.base_url)
    async with OpenComputersClient(capped.base_url, capped.token) as client:
        job = await client.run_job(host["id"], "head -c 3000000 /dev/zero | tr '\\0' 'z'; echo end >&2")
        items = await read_output(client, host["id"], job.id)
        assert by_stream(items)["stdout"] == b"z" * 3_000_000 and by_stream(items)["stderr"] == b"end\n"
        assert [type(item) for item in items].count(OutputTruncated) == 1
        live = [item for item in items if isinstance(item, OutputChunk) and item.event_id is None]
        assert sum(len(item.data) for item in live) == 3_000_004 - (1 << 20)
