"""``/hosts/{id}/fs/…``: the host's file system, through its agent (docs/api.md "Files").

Every route is ``async def`` (see deps.py). Small answers (list, stat, mkdir, delete) are one request
to the agent; bodies (download, upload) travel on a stream the agent dials back, a frame at a time in
step with the client's socket (download.py, upload.py).
"""

from __future__ import annotations

import asyncio
import json
import stat
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query, Request, Response

from oc_tui.api.errors import ErrorCode
from oc_tui.api.models import FsMkdir, Host, format_timestamp

from .. import limits, protocol
from ..deps import TenantHost, hub_of, require_online, uses_agent
from ..errors import ApiProblem
from ..hub import AgentUnreachable
from ..openapi import raises
from .download import (
    FileInfo,
    StreamedFile,
    Unsatisfiable,
    byte_range,
    download_headers,
    if_range_matches,
)
from .upload import Upload

router = limits.router(prefix="/hosts", tags=["fs"])

MAX_PATH = 4096  # bytes
BIG_LISTING = 2000  # entries; a longer listing is turned into JSON in a worker thread

PathQuery = Annotated[str | None, Query()]


def check_path(value: str | None, *, where: str = "query parameter 'path'", empty_ok: bool = False) -> str:
    """The path as given (not stripped), or 400 VALIDATION_ERROR: empty, a NUL byte, over 4096 bytes."""
    if value is None or not value.strip():
        if empty_ok:
            return ""
        raise ApiProblem(400, ErrorCode.VALIDATION_ERROR, f"{where}: is required (a file system path)")
    if "\0" in value:
        raise ApiProblem(400, ErrorCode.VALIDATION_ERROR, f"{where}: must not contain a NUL byte")
    if len(value.encode("utf-8", "surrogateescape")) > MAX_PATH:
        raise ApiProblem(400, ErrorCode.VALIDATION_ERROR, f"{where}: longer than {MAX_PATH} bytes")
    return value


def json_bytes(body: Any) -> bytes:
    """JSON as UTF-8; a file name that is not UTF-8 (kept by the agent as lone surrogates) is written as
    its ``\\udcXX`` escape instead of failing the whole answer."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "backslashreplace")


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response written with :func:`json_bytes`."""
    return Response(json_bytes(body), status_code=status, media_type="application/json")


def malformed(method: str) -> AgentUnreachable:
    """502: the agent answered ``method`` with something that is not its result's shape."""
    return AgentUnreachable(f"the agent answered {method} with a malformed result")


_TYPES = {
    "-": stat.S_IFREG,
    "d": stat.S_IFDIR,
    "l": stat.S_IFLNK,
    "c": stat.S_IFCHR,
    "b": stat.S_IFBLK,
    "p": stat.S_IFIFO,
    "s": stat.S_IFSOCK,
}
_SPECIAL = {3: stat.S_ISUID, 6: stat.S_ISGID, 9: stat.S_ISVTX}  # s/S, s/S, t/T in the ls -l string


def mode_bits(text: str) -> int:
    """The ``st_mode`` an ``ls -l`` mode string (``-rw-r--r--``) stands for (an older agent sends it)."""
    mode = _TYPES.get(text[:1], 0)
    for position, char in enumerate(text[1:10], start=1):
        bit = 1 << (9 - position)
        if char in "rwxst":
            mode |= bit
        if char in "sStT" and position in _SPECIAL:
            mode |= _SPECIAL[position]
    return mode


def mode_fields(mode: Any) -> dict[str, Any]:
    """``mode`` as both SDKs read it (the integer ``st_mode``) and ``mode_string`` (``-rw-r--r--``)
    for people, from the agent's integer (or an older agent's string)."""
    if isinstance(mode, str):
        return {"mode": mode_bits(mode), "mode_string": mode}
    if isinstance(mode, int) and not isinstance(mode, bool):
        return {"mode": mode, "mode_string": stat.filemode(mode)}
    return {"mode": None, "mode_string": None}


def listing(result: Any) -> bytes:
    """The agent's compact rows expanded into the reference's entries (``FsList``), as JSON."""
    try:
        base = str(result["path"])
        sep = "\\" if result.get("sep") == "\\" else "/"  # a Windows host's paths: C:\\Users\\me
        prefix = base if base.endswith(sep) else base + sep
        entries = [
            {
                "name": name,
                "path": prefix + name,
                "size": size,
                "is_dir": is_dir,
                "modified_at": format_timestamp(datetime.fromtimestamp(mtime, UTC)),
                "is_symlink": link,
                **mode_fields(mode),
            }
            for name, size, is_dir, mtime, link, mode in result["entries"]
        ]
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        raise malformed("fs.list") from None
    body: dict[str, Any] = {"path": base, "entries": entries}
    if result.get("truncated"):
        body["truncated"] = True
    return json_bytes(body)


async def ask(request: Request, host: Host, call: protocol.Call) -> Any:
    """The agent's answer to ``call``; 409 first unless the host is online."""
    require_online(request, host)
    return await hub_of(request).call(host.id, call)


def stat_result(result: Any, method: str) -> dict[str, Any]:
    """The agent's stat answer to ``method``, checked for its shape (502 otherwise)."""
    if not isinstance(result, dict) or not isinstance(result.get("path"), str):
        raise malformed(method)
    return {**result, **mode_fields(result.get("mode"))}


# --- list, stat, mkdir, delete -----------------------------------------------------------------------


@router.get("/{host_id}/fs/list")
@uses_agent
async def list_dir(request: Request, host: TenantHost, path: PathQuery = None) -> Response:
    """The directory's entries sorted by name; no path = the agent user's home."""
    result = await ask(request, host, protocol.FsList(path=check_path(path, empty_ok=True)))
    if not isinstance(result, dict) or not isinstance(result.get("entries"), list):
        raise malformed("fs.list")
    if len(result["entries"]) > BIG_LISTING:
        return Response(await asyncio.to_thread(listing, result), media_type="application/json")
    return Response(listing(result), media_type="application/json")


@router.get("/{host_id}/fs")
@uses_agent
async def list_dir_alias(request: Request, host: TenantHost, path: PathQuery = None) -> Response:
    """``GET /hosts/{id}/fs?path=``: the same as ``fs/list``."""
    return await list_dir(request, host, path)


@router.get("/{host_id}/fs/stat")
@uses_agent
async def stat_path(request: Request, host: TenantHost, path: PathQuery = None) -> Response:
    """The path itself (a symlink is reported as one, with its target)."""
    result = await ask(request, host, protocol.FsStat(path=check_path(path)))
    return json_response(stat_result(result, "fs.stat"))


@router.post("/{host_id}/fs/mkdir", status_code=201)
@uses_agent
async def make_dir(request: Request, host: TenantHost, spec: FsMkdir) -> Response:
    """``{"path", "parents": true}`` → 201 with the new directory's stat; 409 if it exists."""
    path = check_path(spec.path, where="path")
    result = await ask(request, host, protocol.FsMkdir(path=path, parents=spec.parents))
    return json_response(stat_result(result, "fs.mkdir"), 201)


@router.delete("/{host_id}/fs/delete", status_code=204)
@uses_agent
async def delete_path(
    request: Request, host: TenantHost, path: PathQuery = None, recursive: bool = False
) -> Response:
    """A file, a symlink (not what it points to), an empty directory, or with ``recursive=true`` a tree."""
    await ask(request, host, protocol.FsDelete(path=check_path(path), recursive=recursive))
    return Response(status_code=204)


@router.delete("/{host_id}/fs", status_code=204)
@uses_agent
async def delete_path_alias(
    request: Request, host: TenantHost, path: PathQuery = None, recursive: bool = False
) -> Response:
    """``DELETE /hosts/{id}/fs?path=&recursive=``: the same as ``fs/delete``."""
    return await delete_path(request, host, path, recursive)


# --- download and upload -----------------------------------------------------------------------------


@router.get("/{host_id}/fs/download")
@uses_agent
@raises(416)
async def download(request: Request, host: TenantHost, path: PathQuery = None) -> Response:
    """The file's bytes, streamed; one HTTP Range (206, 416) for resuming."""
    target = check_path(path)
    require_online(request, host)
    result, stream = await hub_of(request).open_stream(host.id, protocol.FsRead(path=target))
    try:
        info = FileInfo.from_result(result)
        headers = download_headers(info)
        wanted = None
        if info.size > 0 and if_range_matches(request.headers.get("if-range"), info):
            wanted = byte_range(request.headers.get("range"), info.size)
    except Unsatisfiable:
        await stream.close()
        message = f"range not satisfiable: the file has {info.size} bytes"
        body = json_bytes({"error": {"code": "RANGE_NOT_SATISFIABLE", "message": message}})
        headers = {"Content-Range": f"bytes */{info.size}"}
        return Response(body, status_code=416, media_type="application/json", headers=headers)
    except (KeyError, TypeError, ValueError):
        await stream.close()
        raise malformed("fs.read") from None
    except BaseException:
        await stream.close()
        raise
    if wanted is not None:
        first, last = wanted
        length: int | None = last - first + 1
        headers["Content-Range"] = f"bytes {first}-{last}/{info.size}"
        status = 206
    else:
        first, status = 0, 200
        # A size of 0 may be a /proc-style file whose size is not known: read it to its end, chunked.
        length = info.size or None
    if length is not None:
        headers["Content-Length"] = str(length)
    try:
        await stream.send_message("read", offset=first, length=length)
    except (RuntimeError, OSError):
        await stream.close()
        raise AgentUnreachable("its stream closed before the download started") from None
    return StreamedFile(stream, length, status, headers)


@router.post("/{host_id}/fs/upload", status_code=201)
@uses_agent
@raises(413)
@limits.unlimited_body
async def upload(request: Request, host: TenantHost, path: PathQuery = None, mkdir: bool = False) -> Response:
    """A multipart body's file part written to ``path`` atomically; 201 with the file's stat.
    The body streams through (no body-size limit)."""
    target = check_path(path) if path is not None else None
    require_online(request, host)
    spool_dir = request.app.state.settings.data_dir / "spool"
    job = Upload(hub_of(request), host.id, target, mkdir, spool_dir)
    result = await job.run(request, lambda value: check_path(value, where="form field 'path'"))
    return json_response(stat_result(result, "fs.write"), 201)
