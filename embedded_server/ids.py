"""Resource IDs: the reference's prefix plus 20 lowercase base32 characters (100 random bits)."""

from __future__ import annotations

from oc_tui.api.models import ID_PREFIXES

from .crypto import random_chars


def new_id(kind: str) -> str:
    """A new random ID of ``kind`` (its reference prefix, e.g. ``job_``)."""
    return ID_PREFIXES[kind] + random_chars(100)
