"""The agent's file system requests: ``fs.list``, ``fs.stat``, ``fs.mkdir``, ``fs.delete`` (answered inline)
and ``fs.read`` / ``fs.write`` (a file body on a stream the agent dials back; docs/protocol.md).

Paths are absolute, or relative to the agent user's home; ``~`` and ``~/x`` expand. They are normalised
lexically (``.`` and ``..`` collapse, symlinks stay as they are), so browsing through a symlinked
directory keeps the path the user followed. They are the host's own: ``/home/me`` on POSIX,
``C:\\Users\\me`` on Windows (``/`` works there too; answers use ``\\``, and ``fs.list`` says so in
``sep``). Everything OS-specific (directory descriptors, modes, metadata) is the platform layer's. Every ``OSError`` becomes an :class:`AgentError` whose code
the API maps to a status (``NOT_FOUND`` 404, ``FORBIDDEN`` 403 …).

Bodies are bounded in memory: a download reads one chunk ahead of the one the WebSocket is sending, an
upload writes each frame before it takes the next, and a slow side slows the other through the sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import secrets
import stat
import time
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from .. import protocol
from ..protocol import AgentError
from . import platform
from .capabilities import Capability, StreamReply
from .platform import make_parents, remove_tree
from .upload_journal import UPLOAD_MARK, UploadJournal, is_upload_temp

log = logging.getLogger("oc_agent.fs")

MAX_PATH = 4096  # bytes, as PATH_MAX
READ_CHUNK = 1024 * 1024  # bytes per download frame
MAX_ENTRIES = 100_000  # a listing longer than this is cut (``truncated: true``)
MAX_NAME_BYTES = 8 * 1024 * 1024  # … and so is one whose names add up to more (the answer is one frame)

_ERRNO_CODES = {
    errno.ENOENT: ("NOT_FOUND", "no such file or directory"),
    errno.EACCES: ("FORBIDDEN", "permission denied"),
    errno.EPERM: ("FORBIDDEN", "operation not permitted"),
    errno.EROFS: ("FORBIDDEN", "read-only file system"),
    errno.ENOTDIR: ("NOT_A_DIRECTORY", "not a directory"),
    errno.EISDIR: ("IS_A_DIRECTORY", "is a directory"),
    errno.ENOTEMPTY: ("DIRECTORY_NOT_EMPTY", "directory not empty"),
    errno.EEXIST: ("ALREADY_EXISTS", "already exists"),
    errno.ENAMETOOLONG: ("VALIDATION_ERROR", "file name too long"),
    errno.ELOOP: ("VALIDATION_ERROR", "too many levels of symbolic links"),
    errno.ENOSPC: ("NO_SPACE", "no space left on device"),
    errno.EDQUOT: ("NO_SPACE", "disk quota exceeded"),
    errno.EBUSY: ("CONFLICT", "device or resource busy"),
}


def fs_error(exc: OSError, path: str) -> AgentError:
    """The AgentError for an OSError on ``path``: a code the API maps to a status, and a readable message."""
    code, text = _ERRNO_CODES.get(exc.errno or 0, ("IO_ERROR", exc.strerror or str(exc)))
    return AgentError(code, f"{text}: {path}")


# --- paths -------------------------------------------------------------------------------------------


def home(paths: ModuleType = platform.paths) -> str:
    """The agent user's home directory (``paths``: ``posixpath`` or ``ntpath``, the host's by default)."""
    return str(paths.expanduser("~"))


def resolve(raw: Any, *, default_home: bool = False, paths: ModuleType = platform.paths) -> str:
    """The absolute, normalised path for a request's ``path``; VALIDATION_ERROR for a bad one.

    ``paths`` is the host's path module (``ntpath`` on Windows: ``C:/x`` becomes ``C:\\x``, ``\\x`` the
    home drive's ``\\x``, and ``C:x`` — relative to a drive's current directory — is refused); tests
    pass ``ntpath`` to check the Windows rules anywhere."""
    if raw is None and default_home:
        raw = ""
    if not isinstance(raw, str):
        raise AgentError("VALIDATION_ERROR", "path must be a string")
    if "\0" in raw:
        raise AgentError("VALIDATION_ERROR", "path must not contain a NUL byte")
    if len(raw.encode("utf-8", "surrogateescape")) > MAX_PATH:
        raise AgentError("VALIDATION_ERROR", f"path is longer than {MAX_PATH} bytes")
    if not raw.strip():
        if not default_home:
            raise AgentError("VALIDATION_ERROR", "path must not be empty")
        raw = "~"
    path = str(paths.expanduser(raw)) if raw.startswith("~") else raw
    drive, rest = paths.splitdrive(path)  # a drive only with ntpath: "C:", "\\\\server\\share"
    if drive and not rest:
        path = drive + paths.sep
    elif drive and rest[0] not in "/\\":
        raise AgentError("VALIDATION_ERROR", f"path is relative to a drive's current directory: {raw}")
    if not paths.isabs(path) or not drive and paths.sep == "\\":  # "\\x": the home drive's
        path = paths.join(home(paths), path)
    return str(paths.normpath(path))


def iso_time(seconds: float) -> str:
    """UTC ISO 8601 with milliseconds and ``Z``, as every timestamp of the API."""
    millis = int(round(seconds * 1000))
    whole, ms = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{ms:03d}Z"


def _target_stat(path: str, st: os.stat_result) -> os.stat_result:
    """What a symlink points to (its size, time, kind), or the link itself when it dangles."""
    if not stat.S_ISLNK(st.st_mode):
        return st
    try:
        return os.stat(path)
    except OSError:
        return st


def describe(path: str) -> dict[str, Any]:
    """``FsStat``: the path's own ``st_mode`` (a link's for a link); size, time and is_dir of what it
    points to."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise fs_error(exc, path) from None
    link = stat.S_ISLNK(st.st_mode)
    target = _target_stat(path, st)
    symlink_target = None
    if link:
        with contextlib.suppress(OSError):
            symlink_target = os.readlink(path)
    info: dict[str, Any] = {
        "path": path,
        "name": os.path.basename(path) or path,
        "size": target.st_size,
        "mode": platform.file_mode(path, st),
        "is_dir": stat.S_ISDIR(target.st_mode),
        "is_symlink": link,
        "symlink_target": symlink_target,
        "modified_at": iso_time(target.st_mtime),
    }
    extras = platform.stat_extras(target)
    if "created" in extras:
        info["created_at"] = iso_time(extras["created"])
    if "flags" in extras:
        info["flags"] = extras["flags"]
    return info


# --- control calls -----------------------------------------------------------------------------------


def list_dir(call: protocol.FsList) -> dict[str, Any]:
    """``{path, entries: [[name, size, is_dir, mtime, is_symlink, mode], …], truncated}``, sorted by name.

    Rows are compact (the server expands them into the API's entry objects) so a huge directory still
    fits in one answer; past MAX_ENTRIES (or MAX_NAME_BYTES of names) the rest is left out. Upload
    temporary files (``.<name>.oc-upload-<12 hex>``) are never listed.
    """
    path = resolve(call.path, default_home=True)
    try:
        names = sorted(name for name in os.listdir(path) if not is_upload_temp(name))
    except OSError as exc:
        raise fs_error(exc, path) from None
    truncated, budget = False, MAX_NAME_BYTES
    if len(names) > MAX_ENTRIES:
        names, truncated = names[:MAX_ENTRIES], True
    rows: list[list[Any]] = []
    try:
        directory = platform.Directory(path)
    except OSError as exc:
        raise fs_error(exc, path) from None
    try:
        for name in names:
            budget -= len(name) + 64
            if budget < 0:
                truncated = True
                break
            try:
                st = directory.stat(name, follow_symlinks=False)
            except OSError:  # gone since the listing, or unreadable: skip it
                continue
            link = stat.S_ISLNK(st.st_mode)
            target = st
            if link:
                with contextlib.suppress(OSError):
                    target = directory.stat(name)
            rows.append(
                [
                    name,
                    target.st_size,
                    stat.S_ISDIR(target.st_mode),
                    round(target.st_mtime, 3),
                    link,
                    platform.file_mode(name, st),
                ]
            )
    finally:
        directory.close()
    result: dict[str, Any] = {"path": path, "entries": rows, "truncated": truncated}
    if os.sep != "/":
        result["sep"] = os.sep  # the server joins names to the path with it
    return result


def stat_path(call: protocol.FsStat) -> dict[str, Any]:
    """``fs.stat``: the stat object of the call's path (see :func:`describe`)."""
    return describe(resolve(call.path))


def make_dir(call: protocol.FsMkdir) -> dict[str, Any]:
    """Create a directory (and its missing parents when ``parents``); ALREADY_EXISTS if it exists."""
    path = resolve(call.path)
    parents = call.parents
    if os.path.lexists(path):
        raise AgentError("ALREADY_EXISTS", f"already exists: {path}")
    try:
        if parents:
            make_parents(os.path.dirname(path))
        os.mkdir(path)
    except FileNotFoundError:
        parent = os.path.dirname(path)
        message = f"no such directory: {parent} (pass parents=true to create it)"
        raise AgentError("NOT_FOUND", message) from None
    except FileExistsError as exc:  # a parent that exists as a file
        failed = exc.filename or path
        if failed != path:
            raise AgentError("NOT_A_DIRECTORY", f"not a directory: {failed}") from None
        raise fs_error(exc, path) from None
    except OSError as exc:
        raise fs_error(exc, exc.filename or path) from None
    return describe(path)


def delete(call: protocol.FsDelete) -> dict[str, Any]:
    """Remove a file, a symlink (never what it points to), an empty directory, or with ``recursive`` a tree."""
    path = resolve(call.path)
    if platform.is_root(path):
        raise AgentError("VALIDATION_ERROR", f"refusing to delete {path}")
    recursive = call.recursive
    try:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(path)
        elif recursive:
            remove_tree(path)
        else:
            os.rmdir(path)
    except OSError as exc:
        if exc.errno == errno.EEXIST:  # some systems say EEXIST for a non-empty rmdir
            exc.errno = errno.ENOTEMPTY
        error = fs_error(exc, exc.filename or path)
        if error.code == "DIRECTORY_NOT_EMPTY":
            error.message += " (pass recursive=true to delete it and everything in it)"
        raise error from None
    return {}


# --- downloads ---------------------------------------------------------------------------------------


def open_for_read(path: str) -> tuple[int, os.stat_result]:
    """An fd on a regular file (no blocking on a FIFO), and its stat."""
    try:
        fd = platform.open_for_read(path)
    except OSError as exc:
        raise fs_error(exc, path) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise AgentError("IS_A_DIRECTORY", f"is a directory: {path}")
        if not stat.S_ISREG(st.st_mode):
            raise AgentError("VALIDATION_ERROR", f"not a regular file: {path}")
        platform.make_blocking(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _read_at(fd: int, offset: int, size: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, size)


def version(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What says a file is the same one, unchanged: device, inode, size, mtime and ctime (in ns).

    The download's ETag is made of the size and mtime; the ctime also moves when a writer puts the
    mtime back (``touch -r``, rsync), and the inode when the file was replaced."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def changed_since(fd: int, path: str, opened: os.stat_result) -> str | None:
    """Why the file is no longer the version ``opened`` described, or None if it still is: the open
    ``fd`` was written to, or ``path`` now names another file (replaced, moved away, deleted)."""
    now = os.fstat(fd)
    if version(now) != version(opened):
        if now.st_size != opened.st_size:
            return f"its size went from {opened.st_size} to {now.st_size} bytes"
        return "it was modified"
    try:
        there = os.stat(path)
    except OSError:
        return "it was deleted or moved away"
    if (there.st_dev, there.st_ino) != (opened.st_dev, opened.st_ino):
        return "it was replaced by another file"
    return None


async def send_file(fd: int, path: str, opened: os.stat_result, ws: ClientConnection) -> None:
    """Wait for ``{"type": "read", "offset", "length"}`` (length null = to the end), send that byte
    range as binary frames, then ``{"type": "eof", "size": bytes sent}`` and close.

    One read is in flight while the previous chunk is being sent; it is awaited before the fd closes.
    The last chunk is held back until the file has been checked again (:func:`changed_since` against
    ``opened``, the stat taken when ``path`` was opened): a file that changed while it was read (rewritten in
    place, grown, shrunk) gets ``{"type": "error", "code": "SOURCE_CHANGED", "message"}`` instead of its
    last bytes, so the receiver can never take a torn copy for a whole one.
    """
    reading: asyncio.Future[bytes] | None = None
    sent = 0
    try:
        try:
            request = json.loads(await ws.recv())
        except ConnectionClosed:  # the server had no use for the stream after all (416, client gone)
            return
        offset = max(0, int(request.get("offset") or 0))
        length = request.get("length")
        remaining = int(length) if length is not None else None

        def next_read() -> asyncio.Future[bytes]:
            want = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining - sent)
            return asyncio.ensure_future(asyncio.to_thread(_read_at, fd, offset + sent, max(0, want)))

        held = b""  # the last chunk, sent once the file is known to be unchanged
        reading = next_read()
        while True:
            chunk = await reading
            reading = None
            if not chunk:
                break
            sent += len(chunk)
            if remaining is not None and sent >= remaining:
                held = chunk
                break
            reading = next_read()  # the disk works on the next chunk while this one goes out
            await ws.send(chunk)
        reason = await asyncio.to_thread(changed_since, fd, path, opened)
        if reason is not None:
            log.info("download stopped: the file changed (%s)", reason)
            await _report(ws, AgentError("SOURCE_CHANGED", f"the file changed while it was read: {reason}"))
            return
        if held:
            await ws.send(held)
        await ws.send(json.dumps({"type": "eof", "size": sent}))
    except ConnectionClosed:  # the client went away: stop reading
        log.info("download stopped by the server after %d bytes", sent)
    except (ValueError, TypeError, AttributeError):
        log.warning("download: malformed read request; closing the stream")
    finally:
        if reading is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(reading)
        os.close(fd)


# --- uploads -----------------------------------------------------------------------------------------

MAX_LINKS = 40  # symlinks followed to an upload's target, as the kernel's own limit


def _temp_name(name: str) -> str:
    suffix = UPLOAD_MARK + secrets.token_hex(6)
    limit = 255 - len(suffix) - 1
    base = name.encode("utf-8", "surrogateescape")[:limit].decode("utf-8", "ignore")
    return f".{base}{suffix}"


def upload_target(path: str) -> str:
    """The file an upload to ``path`` replaces: ``path``, or where its symlinks lead.

    A final symlink is followed (the file it points to is replaced, the link stays, as ``cp`` does) only
    when it belongs to the agent's user or to the owner of the directory holding it: Linux's
    ``fs.protected_symlinks`` rule, so a link another user planted (``/tmp/x -> /etc/shadow``) is never
    written through. Parent directories that are symlinks are followed, as for any path.

    Raises:
        AgentError: FORBIDDEN for a link of another user; VALIDATION_ERROR past MAX_LINKS links.
    """
    current = path
    for _ in range(MAX_LINKS):
        try:
            st = os.lstat(current)
        except OSError:
            return current
        if not stat.S_ISLNK(st.st_mode):
            return current
        parent = os.path.realpath(os.path.dirname(current))
        try:
            parent_owner = os.stat(parent).st_uid
            target = os.readlink(current)
        except OSError as exc:
            raise fs_error(exc, current) from None
        if not platform.may_follow_link(st, parent_owner):
            raise AgentError(
                "FORBIDDEN",
                f"not writing through {current}: a symlink of another user (uid {st.st_uid}) "
                "in a directory that user does not own",
            )
        current = os.path.normpath(os.path.join(parent, target))
    raise AgentError("VALIDATION_ERROR", f"too many levels of symbolic links: {path}")


class PendingUpload:
    """An upload's temporary file, created in the target's directory and written there; then renamed
    over the target (:meth:`commit`) or removed (:meth:`discard`).

    The directory is opened once: the temporary file is created (``O_EXCL``, so never through a link)
    and renamed relative to that descriptor, so swapping a parent directory meanwhile redirects nothing.
    The journal records the temporary file while it exists.
    """

    def __init__(
        self, opened: platform.Directory, directory: str, final: str, journal: UploadJournal | None
    ) -> None:
        self.opened, self.directory, self.final = opened, directory, final
        self.name = os.path.basename(final)
        self.temp = _temp_name(self.name)
        self.journal, self.token = journal, None
        if journal is not None:
            self.token = journal.add(os.path.join(directory, self.temp))
        self.fd = opened.create(self.temp, 0o666)

    def write(self, data: bytes) -> None:
        """Append ``data`` to the temporary file."""
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def commit(self) -> None:
        """Make the upload durable, then put it under the real name in one step (and that durable too)."""
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        self.opened.replace(self.temp, self.name)
        self.opened.sync()
        self._release()

    def discard(self) -> None:
        """Close and remove the temporary file (errors ignored)."""
        if self.fd >= 0:
            _close_quietly(self.fd)
            self.fd = -1
            with contextlib.suppress(OSError):
                self.opened.unlink(self.temp)
        self._release()

    def _release(self) -> None:
        if self.token is not None and self.journal is not None:
            self.journal.remove(self.token)
            self.token = None
        self.opened.close()


def prepare_upload(path: str, mkdir: bool, journal: UploadJournal | None = None) -> PendingUpload:
    """Check the target and create the temporary file beside it.

    The target is :func:`upload_target` of ``path``. A replaced file keeps its permission bits (and, as
    root, its owner).

    Raises:
        AgentError: NOT_FOUND (no parent, without ``mkdir``), NOT_A_DIRECTORY, IS_A_DIRECTORY, FORBIDDEN.
    """
    final = upload_target(path)
    parent = os.path.dirname(final)
    try:
        if mkdir:
            make_parents(parent)
        opened = platform.Directory(parent)
    except FileExistsError as exc:
        raise AgentError("NOT_A_DIRECTORY", f"not a directory: {exc.filename or parent}") from None
    except OSError as exc:
        error = fs_error(exc, exc.filename or parent)
        if error.code == "NOT_FOUND" and not mkdir:
            error.message = f"no such directory: {parent} (pass mkdir=true to create it)"
        raise error from None
    try:
        try:
            existing: os.stat_result | None = opened.stat(os.path.basename(final))
        except OSError:
            existing = None
        if existing is not None and stat.S_ISDIR(existing.st_mode):
            raise AgentError("IS_A_DIRECTORY", f"is a directory: {final}")
        try:
            upload = PendingUpload(opened, parent, final, journal)
        except OSError as exc:
            raise fs_error(exc, parent) from None
    except BaseException:
        opened.close()
        raise
    if existing is not None:
        platform.keep_attributes(upload.fd, existing)
    return upload


async def receive_file(upload: PendingUpload, shown: str, ws: ClientConnection) -> None:
    """Binary frames are written in order; ``{"type": "end", "size"}`` commits and answers
    ``{"type": "done", "stat"}``; ``abort``, a lost stream or a write error removes the temporary file."""
    written = 0
    committed = False
    try:
        async for frame in ws:
            if isinstance(frame, bytes):
                await asyncio.to_thread(upload.write, frame)
                written += len(frame)
                continue
            message = json.loads(frame)
            if message.get("type") == "end":
                size = message.get("size")
                if size is not None and size != written:
                    raise AgentError("CONFLICT", f"upload incomplete: got {written} of {size} bytes")
                await asyncio.to_thread(upload.commit)
                committed = True
                info = await asyncio.to_thread(describe, shown)
                await ws.send(json.dumps({"type": "done", "stat": info}))
                return
            if message.get("type") == "abort":
                return
    except OSError as exc:
        await _report(ws, fs_error(exc, upload.final))
    except AgentError as exc:
        await _report(ws, exc)
    except (ValueError, AttributeError):
        await _report(ws, AgentError("VALIDATION_ERROR", "malformed upload control message"))
    finally:
        if not committed:
            upload.discard()


async def _report(ws: ClientConnection, error: AgentError) -> None:
    with contextlib.suppress(ConnectionClosed):
        await ws.send(json.dumps({"type": "error", "code": error.code, "message": error.message}))


# --- registration ------------------------------------------------------------------------------------


async def read(call: protocol.FsRead) -> StreamReply:
    """``fs.read``: open the file and answer its size and times; the body goes out on the stream."""
    path = resolve(call.path)
    fd, st = await asyncio.to_thread(open_for_read, path)
    result = {
        "path": path,
        "name": os.path.basename(path),
        "size": st.st_size,
        "mtime": st.st_mtime,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "inode": st.st_ino,
        "modified_at": iso_time(st.st_mtime),
    }
    return StreamReply(result, partial(send_file, fd, path, st), release=partial(_close_quietly, fd))


async def write(call: protocol.FsWrite, journal: UploadJournal | None = None) -> StreamReply:
    """``fs.write``: create the temporary file beside the target; the body comes in on the stream."""
    path = resolve(call.path)
    upload = await asyncio.to_thread(prepare_upload, path, call.mkdir, journal)
    serve = partial(receive_file, upload, path)
    return StreamReply({"path": path, "temp": upload.temp}, serve, release=upload.discard)


def capability(state_dir: Path | None = None) -> Capability:
    """The file methods: list, stat, mkdir and delete in worker threads; read and write open a stream.

    Args:
        state_dir: the agent's state dir, for the journal of uploads in progress: the temporary files an
            earlier run left (killed mid-upload) are deleted now. None: no journal (tests).
    """
    journal = None
    if state_dir is not None:
        journal = UploadJournal(state_dir)
        journal.sweep()

    async def write_with_journal(call: protocol.FsWrite) -> StreamReply:
        return await write(call, journal)

    return Capability(
        "fs",
        {
            protocol.FsList: list_dir,
            protocol.FsStat: stat_path,
            protocol.FsMkdir: make_dir,
            protocol.FsDelete: delete,
            protocol.FsRead: read,
            protocol.FsWrite: write_with_journal,
        },
    )


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
