"""``/hosts/{id}/fs/…``: the host's file system (placeholder until it is built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/hosts", tags=["fs"])
