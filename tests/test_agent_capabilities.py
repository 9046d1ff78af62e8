"""The agent's capability registry and durable spool, in process: typed params, errors, stream-id guard,
the hello's method list, and resuming a spool from any payload offset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from embedded_server import protocol
from embedded_server.agent import durable, fs, system, vnc
from embedded_server.agent.capabilities import Capability, Registry
from embedded_server.agent.job_runner import JobManager
from embedded_server.agent.streams import StreamDialer

UNUSED_URL = "ws://127.0.0.1:9/opencomputers/ws/agent/stream"  # nothing here dials


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    streams = StreamDialer(UNUSED_URL)
    jobs = JobManager(tmp_path / "state", streams)
    target = vnc.VncTarget.parse(None, None)
    return Registry(
        [system.capability(), jobs.capability(), fs.capability(), vnc.capability(target)], streams
    )


def error_of(reply: dict[str, Any]) -> tuple[str, str]:
    return reply["error"]["code"], reply["error"]["message"]


def test_hello_lists_the_methods_the_capabilities_serve(registry: Registry) -> None:
    assert registry.methods() == sorted(
        ["sys.info", "job.start", "job.cancel", "job.list", "vnc.open"]
        + ["fs.list", "fs.stat", "fs.mkdir", "fs.delete", "fs.read", "fs.write"]
    )
    assert system.hello(registry.methods())["capabilities"] == registry.methods()


def test_a_method_served_twice_is_refused() -> None:
    again = Capability("again", {protocol.SysInfo: system.sys_info})
    with pytest.raises(ValueError, match="sys.info"):
        Registry([system.capability(), again], StreamDialer(UNUSED_URL))


async def test_handlers_get_typed_calls(registry: Registry, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    reply = await registry.answer("fs.stat", {"path": str(tmp_path / "f"), "newer_field": 1})
    assert reply["result"]["size"] == 1 and reply["result"]["is_dir"] is False
    assert await registry.answer("job.list", None) == {"result": {"jobs": []}}
    assert (await registry.answer("sys.info", {}))["result"]["cpu_count"]


async def test_bad_params_are_a_validation_error_naming_the_field(registry: Registry) -> None:
    code, message = error_of(await registry.answer("fs.stat", {}))
    assert code == "VALIDATION_ERROR" and "path" in message
    code, message = error_of(await registry.answer("job.cancel", {"job_id": 5}))
    assert code == "VALIDATION_ERROR" and "job_id" in message
    code, _ = error_of(await registry.answer("fs.list", ["not", "an", "object"]))
    assert code == "VALIDATION_ERROR"
    code, message = error_of(await registry.answer("job.start", {"job_id": "../x", "command": "true"}))
    assert code == "VALIDATION_ERROR" and "job ID" in message


@pytest.mark.parametrize("bad", [0, 1001, True, 80.0, "80", None])
async def test_terminal_sizes_are_checked_by_the_model(bad: Any) -> None:
    with pytest.raises(ValueError, match="cols"):
        protocol.PtyOpen.model_validate({"stream_id": "st_x", "cols": bad})
    assert protocol.PtyOpen.model_validate({"stream_id": "st_x"}).cols == 80


async def test_stream_methods_need_a_stream_id(registry: Registry, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    for method, params in (("fs.read", {"path": str(tmp_path / "f")}), ("vnc.open", {"stream_id": ""})):
        assert error_of(await registry.answer(method, params)) == (
            "VALIDATION_ERROR",
            "stream_id is required",
        )


async def test_unknown_methods_and_agent_errors(registry: Registry, tmp_path: Path) -> None:
    assert error_of(await registry.answer("nope", {}))[0] == "UNKNOWN_METHOD"
    assert error_of(await registry.answer(None, {}))[0] == "UNKNOWN_METHOD"
    code, message = error_of(await registry.answer("fs.stat", {"path": str(tmp_path / "missing")}))
    assert code == "NOT_FOUND" and "missing" in message


class Sink:
    """Collects what a spool sends, as a stream WebSocket would carry it."""

    def __init__(self) -> None:
        self.frames: list[bytes | str] = []

    async def send(self, frame: bytes | str) -> None:
        self.frames.append(frame)


async def test_a_spool_resumes_from_any_payload_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(durable, "INDEX_EVERY", 16)  # marks every few records: seeking uses them
    spool = durable.Spool(tmp_path / "o.spool")
    records = [(1, b"hello "), (1, b"world\n"), (2, b"oops\n"), (1, b"x" * 40), (2, b"end")]
    for stream, data in records:
        spool.append(stream, data)
    spool.finish({"reason": "exited", "exit_code": 0})
    payload = b"".join(data for _, data in records)
    assert spool.written == len(payload) and len(spool.marks) > 2
    assert spool.chunks() == [(1, b"hello world\n"), (2, b"oops\n"), (1, b"x" * 40), (2, b"end")]
    for offset in range(len(payload) + 1):
        sink = Sink()
        await spool.send_from(sink, offset, lambda: protocol.encode(protocol.JOB_EXIT))
        *binary, last = sink.frames
        assert b"".join(bytes(frame)[1:] for frame in binary) == payload[offset:]
        if offset == 0:  # consecutive records of one stream go out as one frame
            assert [bytes(frame)[0] for frame in binary] == [1, 2, 1, 2]
        assert json.loads(last) == {"type": "exit"}
    spool.close(delete=True)
    assert not (tmp_path / "o.spool").exists()
