"""The fleet filter language typed after ``/``.

Whitespace-separated terms, all of which must match (AND):

- ``env=prod``       the label ``env`` has the value ``prod`` (``env=`` : the label exists)
- ``status:online``  the status is ``online``; a bare status word (``offline``) means the same;
                     several status terms mean "any of these"
- anything else      a case-insensitive substring of the host's name (or its id)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oc_tui.api.models import HOST_STATUSES, Host


@dataclass(frozen=True)
class HostFilter:
    """A parsed filter; the empty filter matches every host."""

    text: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    statuses: frozenset[str] = frozenset()
    words: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> HostFilter:
        labels: dict[str, str] = {}
        statuses: set[str] = set()
        words: list[str] = []
        for term in text.split():
            lowered = term.lower()
            if lowered.startswith("status:"):
                statuses.add(lowered.removeprefix("status:"))
            elif lowered in HOST_STATUSES:
                statuses.add(lowered)
            elif "=" in term:
                key, _, value = term.partition("=")
                labels[key] = value
            else:
                words.append(lowered)
        return cls(text.strip(), labels, frozenset(statuses), tuple(words))

    @property
    def active(self) -> bool:
        return bool(self.text)

    def matches(self, host: Host) -> bool:
        if self.statuses and host.status not in self.statuses:
            return False
        for key, value in self.labels.items():
            if key not in host.labels or (value and host.labels[key] != value):
                return False
        name = host.name.lower()
        return all(word in name or word in host.id.lower() for word in self.words)
