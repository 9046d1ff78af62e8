"""The fleet's data, without a widget: the one copy of the hosts and how fresh records merge into it.

The fleet screen keeps a :class:`HostCache` and shows it; host events, listings and single fetches
arrive in any order, so a record never undoes a newer status (the newest ``status_changed_at`` or
``updated_at`` wins). :func:`load_sysinfo` is how any screen asks for a host's live facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

import pydantic

from oc_tui.api import errors
from oc_tui.api.models import HOST_STATUSES, Host, HostEvent, HostSysInfo
from oc_tui.widgets.formatting import describe_error

if TYPE_CHECKING:
    from oc_tui.api import OpenComputersClient


async def load_sysinfo(client: OpenComputersClient, host_id: str) -> HostSysInfo | str:
    """The live facts of a host, or a short reason why there are none (unreachable, offline…).

    Never raises an API error: the reason is meant for a detail pane, not a notification.
    """
    try:
        return await client.host_sysinfo(host_id)
    except errors.ConnectionFailed:
        return "control plane unreachable"
    except errors.OpenComputersError as exc:
        return f"unavailable: {describe_error(exc)}"


def changed_at(host: Host) -> datetime:
    """When this record's status was last known to change (for picking the newer of two copies)."""
    return max(filter(None, (host.status_changed_at, host.updated_at)))


def host_from(data: object) -> Host | None:
    """The host record an event carries, or None when it carries none we can read."""
    try:
        return Host.model_validate(data)
    except pydantic.ValidationError:
        return None


class HostCache:
    """Every known host by id; the merge rules of listings, fetches and events."""

    def __init__(self) -> None:
        self.hosts: dict[str, Host] = {}
        self._online = 0

    def __len__(self) -> int:
        return len(self.hosts)

    def get(self, host_id: str | None) -> Host | None:
        """The host with this id, or None (also for ``None``)."""
        return self.hosts.get(host_id) if host_id else None

    @property
    def online(self) -> int:
        """How many hosts are online (counted as records change, not on every question)."""
        return self._online

    def replace_all(self, listing: Iterable[Host]) -> None:
        """A full listing replaces the cache, except records an event has already made newer."""
        fresh = {host.id: host for host in listing}
        for host_id, host in fresh.items():
            known = self.hosts.get(host_id)
            if known is not None and changed_at(known) > changed_at(host):
                fresh[host_id] = known  # an event newer than this listing already arrived
        self.hosts = fresh
        self._online = sum(1 for host in fresh.values() if host.status == "online")

    def upsert(self, host: Host) -> Host:
        """Keep ``host`` (its status stays the known one if that is newer); returns what is kept."""
        known = self.hosts.get(host.id)
        if known is not None and changed_at(known) > changed_at(host):
            host = host.model_copy(
                update={"status": known.status, "status_changed_at": known.status_changed_at}
            )
        self._online += (host.status == "online") - (known is not None and known.status == "online")
        self.hosts[host.id] = host
        return host

    def remove(self, host_id: str) -> bool:
        """Forget a host; False when it was not known."""
        host = self.hosts.pop(host_id, None)
        if host is not None and host.status == "online":
            self._online -= 1
        return host is not None

    def apply_event(self, event: HostEvent) -> EventEffect:
        """Merge what a host event says; see :class:`EventEffect` for what the caller then does."""
        known = self.hosts.get(event.host_id)
        if event.type in ("host_registered", "host_updated"):
            host = host_from(event.data.get("host"))
            if host is not None:
                return EventEffect(self.upsert(host), True, False)
        elif event.type == "status_change":
            status = event.data.get("status")
            if known is not None and status in HOST_STATUSES:
                update = {"status": status, "status_changed_at": event.timestamp}
                return EventEffect(self.upsert(known.model_copy(update=update)), True, True)
            return EventEffect(known, False, True)
        return EventEffect(known, False, False)


class EventEffect(NamedTuple):
    """What a host event did to the cache."""

    host: Host | None
    """The host as now known (None: an event about a host not known here)."""
    changed: bool
    """Whether the cache's record changed (redraw it)."""
    refetch: bool
    """Whether to fetch the record again (a status change also changes agent info and last seen)."""
