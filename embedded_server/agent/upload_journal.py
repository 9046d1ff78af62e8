"""Which upload temporary files exist, so an agent killed mid-upload removes them when it starts again.

An upload is written to ``.<name>.oc-upload-<12 hex>`` beside its target (see :mod:`.fs`) and renamed over
the target when complete. An agent that dies in between (``kill -9``, power loss) cannot delete it then;
this journal, one small file per upload in progress under the agent's state dir, names each such file
so :meth:`UploadJournal.sweep` deletes it on the next start. Listings hide these names
(:func:`is_upload_temp`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import stat
from pathlib import Path

UPLOAD_MARK = ".oc-upload-"
"""What every upload temporary file's name carries."""
TEMP_NAME = re.compile(r"\..*" + re.escape(UPLOAD_MARK) + r"[0-9a-f]{12}", re.DOTALL)
"""The whole name of an upload temporary file."""

log = logging.getLogger("oc_agent")


def is_upload_temp(name: str) -> bool:
    """Whether ``name`` (one path component) is an upload's temporary file."""
    return TEMP_NAME.fullmatch(name) is not None


class UploadJournal:
    """Entries ``<state_dir>/uploads/<token>`` holding the path of one upload temporary file each.

    Args:
        state_dir: the agent's state dir (0700); the journal directory is created in it.
    """

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / "uploads"
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def add(self, temp: str) -> str:
        """Record the temporary file ``temp`` (before it is created); the entry's token, for :meth:`remove`."""
        token = secrets.token_hex(8)
        (self.directory / token).write_bytes(os.fsencode(temp))
        return token

    def remove(self, token: str) -> None:
        """Forget an entry (its upload was committed or discarded)."""
        with contextlib.suppress(OSError):
            (self.directory / token).unlink()

    def sweep(self) -> int:
        """Delete every recorded temporary file still there (a regular file with an upload's name, never
        anything else) and clear the journal; how many files were deleted."""
        removed = 0
        for entry in self.directory.iterdir():
            with contextlib.suppress(OSError):
                temp = os.fsdecode(entry.read_bytes())
                st = os.lstat(temp)
                if is_upload_temp(os.path.basename(temp)) and stat.S_ISREG(st.st_mode):
                    os.unlink(temp)
                    removed += 1
            with contextlib.suppress(OSError):
                entry.unlink()
        if removed:
            log.info("removed %d unfinished upload file(s) left by an earlier run", removed)
        return removed
