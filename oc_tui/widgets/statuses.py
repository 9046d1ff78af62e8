"""The one table of status vocabularies: every status a resource can have, and its symbol.

Status is always shown as a symbol *and* a word, so it reads without colour (16-colour terminals,
colour-blind operators, screenshots in print). Colours stay in oc_tui.tcss, keyed by the word: a cell's
component class ``<widget>--<status>`` or a title's class ``-<status>``. Every status cell of every view
asks this table (:func:`status_label`, :func:`status_classes`); a new resource adds one entry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

_TASK = {"queued": "◌", "running": "▶", "completed": "✓", "failed": "✗", "cancelled": "⊘"}

STATUSES: Mapping[str, Mapping[str, str]] = {
    "hosts": {"online": "●", "offline": "○", "pending": "◌", "revoked": "✕", "error": "!"},
    "jobs": _TASK,
    "tunnels": {"enabled": "●", "disabled": "○"},
    "agents": {key: _TASK[key] for key in ("running", "completed", "failed", "cancelled")} | {"pending": "◌"},
    "clusters": {"provisioning": "◌", "active": "●", "stopped": "○", "error": "!", "destroyed": "✕"},
    "secrets": {},
}
"""Status word → symbol, per resource kind (the API's status values; secrets have none)."""
UNKNOWN = "?"
"""The symbol of a status the table does not know (a newer server's)."""


def status_symbol(kind: str, status: str) -> str:
    """The symbol of ``status`` for resources of ``kind`` (``hosts``, ``jobs`` …); ``?`` if unknown."""
    return STATUSES.get(kind, {}).get(status, UNKNOWN)


def status_label(kind: str, status: str) -> str:
    """``● online`` — the symbol and the word."""
    return f"{status_symbol(kind, status)} {status}"


def status_classes(kind: str, status: str) -> Iterator[tuple[str, bool]]:
    """``(-<word>, is it this status)`` for every status of ``kind``: set them all on a widget so
    exactly the current one is on (``widget.set_class(on, name)``)."""
    for word in STATUSES.get(kind, {}):
        yield f"-{word}", word == status
