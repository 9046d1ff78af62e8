"""Windows rules that need no Windows to run: mode bits from file attributes, drive roots, the
environment block, and the Job Object structures. :mod:`.windows` uses them on Windows; the unit tests
run them everywhere (tests/test_platform.py).
"""

from __future__ import annotations

import ctypes
import ntpath
import stat
from collections.abc import Mapping

# File attributes (winnt.h), as ``os.stat_result.st_file_attributes`` carries them on Windows.
FILE_ATTRIBUTE_READONLY = 0x1
FILE_ATTRIBUTE_HIDDEN = 0x2
FILE_ATTRIBUTE_SYSTEM = 0x4
FILE_ATTRIBUTE_DIRECTORY = 0x10
FILE_ATTRIBUTE_ARCHIVE = 0x20
FILE_ATTRIBUTE_REPARSE_POINT = 0x400
IO_REPARSE_TAG_MOUNT_POINT = 0xA0000003  # a junction
IO_REPARSE_TAG_SYMLINK = 0xA000000C

DEFAULT_PATHEXT = ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH;.MSC;.PS1"


def windows_mode(attributes: int, reparse_tag: int, name: str, pathext: str = DEFAULT_PATHEXT) -> int:
    """A POSIX ``st_mode`` for a Windows file, as the API's ``mode`` shows it.

    Windows has ACLs, not mode bits; this says what the attributes say and no more: a directory is
    ``drwxr-xr-x``, a file ``-rw-r--r--``, both without the ``w`` bits when read-only, a file whose
    extension is in ``PATHEXT`` executable (``x``), and a symlink or junction ``lrwxrwxrwx``. (Python's
    own mapping makes every writable file ``rw-rw-rw-``, which reads as world-writable.)

    Args:
        attributes: ``st_file_attributes``.
        reparse_tag: ``st_reparse_tag`` (0 when not a reparse point).
        name: the file's name (for its extension).
        pathext: the ``PATHEXT`` environment variable (``;``-separated extensions).
    """
    if attributes & FILE_ATTRIBUTE_REPARSE_POINT and reparse_tag in (
        IO_REPARSE_TAG_SYMLINK,
        IO_REPARSE_TAG_MOUNT_POINT,
    ):
        return stat.S_IFLNK | 0o777
    read_only = bool(attributes & FILE_ATTRIBUTE_READONLY)
    if attributes & FILE_ATTRIBUTE_DIRECTORY:
        return stat.S_IFDIR | (0o555 if read_only else 0o755)
    bits = 0o444 if read_only else 0o644
    extension = ntpath.splitext(name)[1].upper()
    if extension and extension in {item.strip().upper() for item in pathext.split(";") if item.strip()}:
        bits |= 0o111
    return stat.S_IFREG | bits


def windows_flags(attributes: int) -> list[str]:
    """The attributes a user cares about, by name (the stat's ``flags``): hidden, system, read-only."""
    names = [
        (FILE_ATTRIBUTE_HIDDEN, "hidden"),
        (FILE_ATTRIBUTE_SYSTEM, "system"),
        (FILE_ATTRIBUTE_READONLY, "readonly"),
    ]
    return [name for bit, name in names if attributes & bit]


def is_drive_root(path: str) -> bool:
    """Whether ``path`` (normalised) is the root of a drive or share: ``C:\\``, ``\\\\server\\share\\``,
    or ``\\`` (the current drive's root)."""
    drive, rest = ntpath.splitdrive(path)
    return rest in ("\\", "/", "") and (bool(drive) or rest != "")


def environment_block(env: Mapping[str, str]) -> str:
    """``env`` as CreateProcess (and ConPTY's spawn) takes it: ``K=V`` entries each ended by NUL, the
    block ended by one more NUL, sorted case-insensitively as Windows expects."""
    entries = [f"{key}={value}" for key, value in sorted(env.items(), key=lambda kv: kv[0].upper())]
    return "\0".join(entries) + "\0\0"


# --- Job Objects (winnt.h), for ctypes; sizes match the SDK's on 64-bit Windows ---------------------

JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000
JOB_OBJECT_LIMIT_BREAKAWAY_OK = 0x0800
JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS = 9  # JobObjectExtendedLimitInformation
PROCESS_SET_QUOTA = 0x0100
PROCESS_TERMINATE = 0x0001


class JobObjectBasicLimitInformation(ctypes.Structure):
    """JOBOBJECT_BASIC_LIMIT_INFORMATION."""

    _fields_ = [
        ("PerProcessUserTimeLimit", ctypes.c_int64),
        ("PerJobUserTimeLimit", ctypes.c_int64),
        ("LimitFlags", ctypes.c_uint32),
        ("MinimumWorkingSetSize", ctypes.c_size_t),
        ("MaximumWorkingSetSize", ctypes.c_size_t),
        ("ActiveProcessLimit", ctypes.c_uint32),
        ("Affinity", ctypes.c_size_t),
        ("PriorityClass", ctypes.c_uint32),
        ("SchedulingClass", ctypes.c_uint32),
    ]


class IoCounters(ctypes.Structure):
    """IO_COUNTERS."""

    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "ReadOperationCount",
            "WriteOperationCount",
            "OtherOperationCount",
            "ReadTransferCount",
            "WriteTransferCount",
            "OtherTransferCount",
        )
    ]


class JobObjectExtendedLimitInformation(ctypes.Structure):
    """JOBOBJECT_EXTENDED_LIMIT_INFORMATION."""

    _fields_ = [
        ("BasicLimitInformation", JobObjectBasicLimitInformation),
        ("IoInfo", IoCounters),
        ("ProcessMemoryLimit", ctypes.c_size_t),
        ("JobMemoryLimit", ctypes.c_size_t),
        ("PeakProcessMemoryUsed", ctypes.c_size_t),
        ("PeakJobMemoryUsed", ctypes.c_size_t),
    ]


def kill_on_close_limits() -> JobObjectExtendedLimitInformation:
    """The limits of a job's Job Object: every process in it ends when the last handle to it closes
    (the agent, or its per-job supervisor, died), so nothing a job started outlives it."""
    info = JobObjectExtendedLimitInformation()
    info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    return info
