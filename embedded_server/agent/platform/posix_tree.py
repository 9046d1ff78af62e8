"""Directory trees of any depth (POSIX), without recursion: delete a tree, create missing parents.

Host data has no depth bound (a path is limited to 4096 bytes, a tree is not), so neither function
recurses nor builds a path longer than one name: ``remove_tree`` works through directory file
descriptors (``unlinkat``/``openat``, as ``rm -r`` and the fd-based ``shutil.rmtree`` do) and holds one
descriptor at a time, climbing back through ``..`` and checking it reached the directory it came from;
``make_parents`` walks up to the nearest existing ancestor and creates the rest downwards. Python's own
``shutil.rmtree`` and ``os.makedirs`` recurse once per level and fail near 1,000 levels (RecursionError).
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from dataclasses import dataclass, field

assert sys.platform != "win32"  # POSIX only (directory descriptors); Windows: windows.remove_tree

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


@dataclass
class _Level:
    """One directory on the way down: its name in its parent, its identity, the names left to remove."""

    name: str
    ident: tuple[int, int]
    pending: list[str] = field(default_factory=list)


def remove_tree(path: str) -> None:
    """Delete the directory ``path`` and everything in it; symlinks inside are removed, never followed.

    Raises:
        OSError: as the system reports it (``filename`` names the directory or entry it concerns); ESTALE
            when a directory was moved while the tree was being deleted (what is left stays).
    """
    current = os.open(path, DIR_FLAGS)
    try:
        top = os.fstat(current)
        stack = [_Level(path, (top.st_dev, top.st_ino), os.listdir(current))]
        while True:
            level = stack[-1]
            if level.pending:
                name = level.pending.pop()
                try:
                    st = os.stat(name, dir_fd=current, follow_symlinks=False)
                    if not stat.S_ISDIR(st.st_mode):
                        os.unlink(name, dir_fd=current)
                        continue
                    child = os.open(name, DIR_FLAGS, dir_fd=current)
                except FileNotFoundError:  # removed by someone else meanwhile: nothing to do
                    continue
                except OSError as exc:
                    exc.filename = os.path.join(level.name, name)
                    raise
                os.close(current)
                current = child
                opened = os.fstat(current)
                if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
                    raise OSError(errno.ESTALE, "directory replaced while deleting", name)
                stack.append(_Level(name, (st.st_dev, st.st_ino), os.listdir(current)))
                continue
            if len(stack) == 1:
                break
            parent = os.open("..", DIR_FLAGS & ~getattr(os, "O_NOFOLLOW", 0), dir_fd=current)
            os.close(current)
            current = parent
            reached = os.fstat(current)
            if (reached.st_dev, reached.st_ino) != stack[-2].ident:
                raise OSError(errno.ESTALE, "directory moved while deleting", level.name)
            os.rmdir(level.name, dir_fd=current)
            stack.pop()
    finally:
        os.close(current)
    os.rmdir(path)


def make_parents(path: str) -> None:
    """Create the directory ``path`` and its missing ancestors (``mkdir -p``); an existing directory is
    fine. Each level is made relative to its parent's descriptor (``mkdirat``), so a deep path costs one
    step per level, not a walk from ``/`` each time.

    Raises:
        FileExistsError: a component exists and is not a directory (``filename`` names it).
        OSError: as the system reports it for the first component that could not be made.
    """
    missing: list[str] = []
    current = os.path.abspath(path)
    while not os.path.isdir(current):
        if os.path.lexists(current):
            raise FileExistsError(errno.EEXIST, "not a directory", current)
        missing.append(os.path.basename(current))
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    if not missing:
        return
    fd = os.open(current, DIR_FLAGS & ~getattr(os, "O_NOFOLLOW", 0))  # an existing ancestor may be a link
    try:
        for name in reversed(missing):
            where = os.path.join(current, name)
            try:
                os.mkdir(name, dir_fd=fd)
            except FileExistsError:
                pass  # made meanwhile by someone else: fine if it is a directory (the open says)
            except OSError as exc:
                exc.filename = where
                raise
            try:
                child = os.open(name, DIR_FLAGS, dir_fd=fd)
            except NotADirectoryError:
                raise FileExistsError(errno.EEXIST, "not a directory", where) from None
            os.close(fd)
            fd, current = child, where
    finally:
        os.close(fd)
