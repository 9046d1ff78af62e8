"""The tools an AI agent session has on its host, run through the same server paths as the API's jobs
and files: ``run_command`` is a job (``jobs.routes.launch``: it shows in the host's Jobs tab, its
environment names the session in ``OC_AGENT_SESSION``), the file tools are the typed agent calls the
fs section makes (``fs.list``, ``fs.read``, ``fs.write`` streams).

Each tool is bounded in time and in what it hands the model; what was cut is said in the result.
A tool's failure (no such file, the host offline …) is the tool's result, for the model to handle;
it never fails the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from oc_tui.api.models import AGENT_SESSION_ENV, JobCreate

from .. import protocol
from ..errors import ApiProblem
from ..fs.upload import AgentSink
from ..hub import Hub
from ..jobs.routes import launch
from ..jobs.store import FINAL as JOB_FINAL
from ..jobs.store import JobStore

OUTPUT_LIMIT = 16 * 1024  # characters of a command's stdout (and of its stderr) the model sees
READ_LIMIT = 64 * 1024  # bytes of a file read_file hands the model at once
EDIT_LIMIT = 1024 * 1024  # bytes of a file edit_file works on at most
WRITE_LIMIT = 1024 * 1024  # bytes write_file writes at most
LIST_LIMIT = 200  # entries of list_dir
FS_TIMEOUT = 60.0  # seconds a file tool may take
COMMAND_TIMEOUT = 120  # seconds a command runs by default (at most MAX_COMMAND_TIMEOUT)
MAX_COMMAND_TIMEOUT = 1800
END_SLACK = 15.0  # seconds past a command's timeout to wait for its end to be reported
RECONNECT_WAIT = 60.0  # seconds a tool waits for the host's agent to come back before it gives up

TOOL_SPECS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "run_command",
            "description": "Run a shell command on the host (sh -c) and get its exit code, stdout and "
            f"stderr (each cut to {OUTPUT_LIMIT} characters).",
            "parameters": {
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "the command line"},
                    "cwd": {"type": "string", "description": "working directory (default: home)"},
                    "timeout": {
                        "type": "integer",
                        "description": f"seconds before it is killed (default {COMMAND_TIMEOUT})",
                    },
                },
                "required": ["command"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": f"Read a text file of the host, {READ_LIMIT} bytes at a time from offset.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "offset": {"type": "integer"}},
                "required": ["path"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "write_file",
            "description": "Write a file of the host (created with its directories, or replaced).",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                "required": ["path", "content"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "edit_file",
            "description": "Replace one exact occurrence of old_text with new_text in a file of the host.",
            "parameters": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "old_text": {"type": "string"},
                    "new_text": {"type": "string"},
                },
                "required": ["path", "old_text", "new_text"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "list_dir",
            "description": f"List a directory of the host (at most {LIST_LIMIT} entries).",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        },
    },
]


class ToolError(Exception):
    """A tool could not do what it was asked; the message goes to the model."""


@dataclass
class ToolContext:
    """What a tool runs with: the hub, the job store, the session and its host, where a started job is
    noted (``on_job(job_id)``: the loop keeps it to resume after a restart), and whether a cancelled
    wait for a job kills it (``kill_on_cancel()``: True for a cancelled session, False when the server
    stops — the job goes on and the session waits for it again after the restart)."""

    hub: Hub
    jobs: JobStore
    tenant_id: str
    host_id: str
    session_id: str
    on_job: Callable[[str], None] = field(default=lambda _job_id: None)
    kill_on_cancel: Callable[[], bool] = field(default=lambda: True)


@dataclass
class ToolResult:
    """What a tool hands the model (``output``) and the event's extra fields (``job_id``, ``truncated``)."""

    output: str
    extra: dict[str, Any] = field(default_factory=dict)


def cut(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to ``limit`` characters (its start and its end kept), saying how much is left out."""
    if len(text) <= limit:
        return text, False
    head, tail = text[: limit // 2], text[-(limit // 2) :]
    return f"{head}\n[… {len(text) - len(head) - len(tail)} characters cut …]\n{tail}", True


def parse_arguments(raw: str | None) -> dict[str, Any]:
    """A tool call's arguments (JSON text) as an object; ToolError when they are not one."""
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise ToolError(f"the arguments are not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ToolError("the arguments must be a JSON object")
    return value


def _text(args: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = args.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and name == "path" and not value):
        raise ToolError(f"argument {name!r} must be a string")
    if "\0" in value:
        raise ToolError(f"argument {name!r} must not contain a NUL byte")
    return value


async def wait_online(ctx: ToolContext) -> None:
    """Wait up to :data:`RECONNECT_WAIT` s for the host's agent (a reconnect); ToolError after that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECONNECT_WAIT
    while not ctx.hub.is_online(ctx.host_id):
        if loop.time() > deadline:
            raise ToolError(f"the host has been offline for {RECONNECT_WAIT:g} s")
        await asyncio.sleep(0.2)


# --- the tools ----------------------------------------------------------------------------------------


async def run_command(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """Run the command as a job of the host and wait for its end (killed at its timeout)."""
    command = _text(args, "command")
    if not command.strip():
        raise ToolError("argument 'command' is empty")
    cwd = _text(args, "cwd", required=False) or None
    timeout = args.get("timeout") or COMMAND_TIMEOUT
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ToolError("argument 'timeout' must be a positive number of seconds")
    timeout = int(min(max(1, timeout), MAX_COMMAND_TIMEOUT))
    spec = JobCreate(command=command, cwd=cwd, timeout=timeout, env=[f"{AGENT_SESSION_ENV}={ctx.session_id}"])
    await wait_online(ctx)
    row = ctx.jobs.create(ctx.tenant_id, ctx.host_id, spec)
    ctx.on_job(row["id"])
    try:
        await launch(ctx.hub, ctx.jobs, ctx.host_id, row, spec, None)
    except ApiProblem as exc:
        raise ToolError(f"the command could not be started: {exc.message}") from None
    return await job_result(ctx, row["id"], timeout + END_SLACK)


async def job_result(ctx: ToolContext, job_id: str, wait: float) -> ToolResult:
    """The result of the session's job ``job_id`` once it has ended (waiting up to ``wait`` seconds;
    cancelling the wait kills the job's process tree)."""
    try:
        row = ctx.jobs.row(ctx.host_id, job_id)
        if row is not None and row["status"] not in JOB_FINAL:
            out = ctx.jobs.output(row)  # live (after a restart: opened again, filled when the agent redials)
            async with asyncio.timeout(wait):
                await out.done.wait()
    except TimeoutError:
        await kill_job(ctx.hub, ctx.host_id, job_id)
    except asyncio.CancelledError:
        if ctx.kill_on_cancel():
            await kill_job(ctx.hub, ctx.host_id, job_id)
        raise
    row = ctx.jobs.row(ctx.host_id, job_id)
    if row is None:
        raise ToolError("the command's job is gone")
    if row["status"] not in JOB_FINAL:
        return ToolResult(f"the command is still running as job {job_id}; its end was not reported in time")
    job = ctx.jobs.full(row)
    stdout, cut_out = cut(job.stdout or "", OUTPUT_LIMIT)
    stderr, cut_err = cut(job.stderr or "", OUTPUT_LIMIT)
    lines = [f"status: {row['status']}", f"exit_code: {row['exit_code']}"]
    if row["error"]:
        lines.append(f"error: {row['error']}")
    if row["truncated"]:
        lines.append("note: the output passed the server's cap; only its start was kept")
    lines += [f"stdout:\n{stdout}", f"stderr:\n{stderr}"]
    extra = {"job_id": job_id, "exit_code": row["exit_code"], "truncated": cut_out or cut_err}
    return ToolResult("\n".join(lines), extra)


async def kill_job(hub: Hub, host_id: str, job_id: str) -> None:
    """Kill a job's process tree (best effort: an offline host's agent kills it when told later)."""
    with contextlib.suppress(ApiProblem, OSError, RuntimeError):
        await hub.call(host_id, protocol.JobCancel(job_id=job_id))


async def read_bytes(ctx: ToolContext, path: str, offset: int, limit: int) -> tuple[bytes, int]:
    """Up to ``limit`` bytes of the host's file from ``offset``, and the file's size."""
    result, stream = await ctx.hub.open_stream(ctx.host_id, protocol.FsRead(path=path))
    async with stream:
        size = int(result.get("size") or 0) if isinstance(result, dict) else 0
        await stream.send_message("read", offset=offset, length=limit)
        data = bytearray()
        while True:
            frame = await stream.receive()
            if isinstance(frame, bytes):
                data += frame
                if len(data) >= limit:
                    break
                continue
            if frame is None or frame.get("type") == "eof":
                break
            if frame.get("type") == "error":
                raise ToolError(f"{frame.get('code')}: {frame.get('message')}")
        return bytes(data[:limit]), max(size, offset + len(data))


async def write_bytes(ctx: ToolContext, path: str, data: bytes) -> dict[str, Any]:
    """Write the host's file atomically (its directories made); returns its stat."""
    sink = await AgentSink.open(ctx.hub, ctx.host_id, path, True)
    try:
        await sink.write(data)
        return await sink.finish()
    except BaseException:
        await sink.abort()
        raise


async def read_file(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """Up to :data:`READ_LIMIT` bytes of a file as text, saying where it stops."""
    path = _text(args, "path")
    offset = args.get("offset") or 0
    if not isinstance(offset, int) or offset < 0:
        raise ToolError("argument 'offset' must be a non-negative integer")
    data, size = await read_bytes(ctx, path, offset, READ_LIMIT)
    text = data.decode("utf-8", "replace")
    end = offset + len(data)
    if end < size:
        note = f"\n[bytes {offset}-{end} of {size}; read on with offset={end}]"
        return ToolResult(text + note, {"truncated": True})
    return ToolResult(text, {"truncated": False})


async def write_file(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """Write ``content`` to ``path``."""
    path = _text(args, "path")
    data = _text(args, "content", required=False).encode()
    if len(data) > WRITE_LIMIT:
        raise ToolError(f"content is {len(data)} bytes; write_file takes at most {WRITE_LIMIT}")
    info = await write_bytes(ctx, path, data)
    return ToolResult(f"wrote {len(data)} bytes to {info.get('path', path)}")


async def edit_file(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """Replace the one occurrence of ``old_text`` by ``new_text``."""
    path, old, new = _text(args, "path"), _text(args, "old_text"), _text(args, "new_text", required=False)
    if not old:
        raise ToolError("argument 'old_text' is empty")
    data, size = await read_bytes(ctx, path, 0, EDIT_LIMIT + 1)
    if size > EDIT_LIMIT:
        raise ToolError(f"the file is {size} bytes; edit_file works on files up to {EDIT_LIMIT}")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise ToolError("the file is not UTF-8 text") from None
    count = text.count(old)
    if count != 1:
        where = "does not occur" if count == 0 else f"occurs {count} times (give more context)"
        raise ToolError(f"old_text {where} in {path}")
    await write_bytes(ctx, path, text.replace(old, new, 1).encode())
    return ToolResult(f"replaced 1 occurrence in {path}")


async def list_dir(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """The directory's entries, one a line: type, size, name."""
    path = _text(args, "path")
    result = await ctx.hub.call(ctx.host_id, protocol.FsList(path=path))
    try:
        entries = list(result["entries"])
    except (KeyError, TypeError):
        raise ToolError("the agent answered with a malformed listing") from None
    lines = []
    for name, size, is_dir, _mtime, link, _mode in entries[:LIST_LIMIT]:
        kind = "dir " if is_dir else "link" if link else "file"
        lines.append(f"{kind} {size:>10} {name}")
    if len(entries) > LIST_LIMIT:
        lines.append(f"[… {len(entries) - LIST_LIMIT} more entries not shown]")
    return ToolResult(
        f"{result.get('path', path)}:\n" + "\n".join(lines), {"truncated": len(entries) > LIST_LIMIT}
    )


TOOLS: dict[str, Callable[[ToolContext, dict[str, Any]], Awaitable[ToolResult]]] = {
    "run_command": run_command,
    "read_file": read_file,
    "write_file": write_file,
    "edit_file": edit_file,
    "list_dir": list_dir,
}


async def run_tool(ctx: ToolContext, name: str, args: dict[str, Any]) -> ToolResult:
    """Run tool ``name`` with ``args``; its failure becomes its result (``error: …``) for the model."""
    tool = TOOLS.get(name)
    if tool is None:
        return ToolResult(f"error: there is no tool {name!r}", {"error": True})
    try:
        if name == "run_command":
            return await tool(ctx, args)
        await wait_online(ctx)
        async with asyncio.timeout(FS_TIMEOUT):
            return await tool(ctx, args)
    except ToolError as exc:
        return ToolResult(f"error: {exc}", {"error": True})
    except ApiProblem as exc:
        return ToolResult(f"error: {exc.code}: {exc.message}", {"error": True})
    except TimeoutError:
        return ToolResult(f"error: {name} took longer than {FS_TIMEOUT:g} s", {"error": True})
