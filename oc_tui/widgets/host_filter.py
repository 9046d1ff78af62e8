"""The fleet filter language typed after ``/``.

Whitespace-separated terms, all of which must match (AND):

- ``env=prod``       the label ``env`` has the value ``prod`` (``env=`` : the label exists)
- ``status:online``  the status is ``online``; a bare status word (``offline``) means the same;
                     several status terms mean "any of these"
- anything else      a case-insensitive substring of the host's name (or its id)

:class:`FilterIndex` answers a filter over thousands of hosts without testing each one on every
keystroke: labels and statuses are looked up in an index, a filter typed one character further only
looks at the hosts the previous one matched, and the last few answers are kept (backspace).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from oc_tui.api.models import HOST_STATUSES, Host

FilterKey = tuple[tuple[tuple[str, str], ...], frozenset[str], frozenset[str]]


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

    @property
    def key(self) -> FilterKey:
        """What the filter means, hashable: two texts with the same terms (order, spaces) have one key."""
        return tuple(sorted(self.labels.items())), self.statuses, frozenset(self.words)

    def narrows(self, other: HostFilter) -> bool:
        """True when every host this filter matches, ``other`` matches too (so only ``other``'s matches
        need testing): ``web-0`` narrows ``web``, ``env=prod db`` narrows ``env=prod``."""
        if other.statuses and not (self.statuses and self.statuses <= other.statuses):
            return False
        for key, value in other.labels.items():
            mine = self.labels.get(key)
            if mine is None or (value and mine != value):
                return False
        return all(any(word in mine for mine in self.words) for word in other.words)

    def matches(self, host: Host) -> bool:
        if self.statuses and host.status not in self.statuses:
            return False
        for key, value in self.labels.items():
            if key not in host.labels or (value and host.labels[key] != value):
                return False
        name = host.name.lower()
        return all(word in name or word in host.id.lower() for word in self.words)


class FilterIndex:
    """Host ids in table order, with what filters look at indexed; :meth:`select` answers a filter.

    The owner keeps it in step: :meth:`rebuild` after a new listing, :meth:`put` for one host (a live
    event), with the ids in their new order. :meth:`rebuild` only takes the order; the index itself is
    built by :meth:`build` in steps (a load of 10,000 hosts then holds the event loop for less), or all
    at once by the first :meth:`select` or :meth:`put` that needs it.
    """

    CACHED = 16
    """Answers kept (the filters typed last: a backspace returns to one)."""

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self.ids: list[str] = []
        self._position: dict[str, int] | None = {}
        self._hay: dict[str, str] = {}  # "name\nid", lower case: what words are looked for in
        self._status: dict[str, set[str]] = {}
        self._labels: dict[str, dict[str, set[str]]] = {}  # key -> value -> ids
        self._has_label: dict[str, set[str]] = {}  # key -> ids
        self._hosts: dict[str, Host] = {}
        self._answers: OrderedDict[FilterKey, tuple[HostFilter, list[str]]] = OrderedDict()
        self._members: set[str] | None = None  # the group the kept answers are of (held: see select)
        self._unindexed: list[Host] = []

    def rebuild(self, ordered: Iterable[Host]) -> None:
        """Know exactly these hosts, in this order (indexed by :meth:`build`)."""
        self._clear()
        self._unindexed = list(ordered)
        self.ids = [host.id for host in self._unindexed]
        self._position = None

    def build(self, count: int | None = None) -> bool:
        """Index up to ``count`` more hosts (None: all); True when every host is indexed."""
        todo = self._unindexed
        if count is None or count >= len(todo):
            self._unindexed = []
        else:
            todo, self._unindexed = todo[:count], todo[count:]
        for host in todo:
            self._add(host)
        return not self._unindexed

    def put(self, host: Host, ids: list[str]) -> None:
        """``host`` is new or changed; ``ids``: every id in table order now (it may have moved)."""
        self.build()
        self._remove(host.id)
        self._add(host)
        if ids is not self.ids:
            self.ids = ids
            self._position = None
        self._answers.clear()

    def _add(self, host: Host) -> None:
        host_id = host.id
        self._hosts[host_id] = host
        self._hay[host_id] = f"{host.name.lower()}\n{host_id.lower()}"
        self._status.setdefault(host.status, set()).add(host_id)
        for key, value in host.labels.items():
            self._labels.setdefault(key, {}).setdefault(value, set()).add(host_id)
            self._has_label.setdefault(key, set()).add(host_id)

    def _remove(self, host_id: str) -> None:
        host = self._hosts.pop(host_id, None)
        if host is None:
            return
        self._status[host.status].discard(host_id)
        for key, value in host.labels.items():
            self._labels[key][value].discard(host_id)
            self._has_label[key].discard(host_id)

    def select(self, rule: HostFilter, members: set[str] | None = None) -> list[str]:
        """The ids ``rule`` matches (and, with ``members``, only those in it), in table order.

        Never tests every host against every term: label and status terms are index look-ups, words
        are looked for only among the hosts those left, or among the matches of a kept answer this
        rule narrows (the same filter typed one more character). Do not modify the list returned.
        """
        if not rule.active and members is None:
            return list(self.ids)
        self.build()
        if members is not self._members:  # answers are of one group at a time
            self._answers.clear()
            self._members = members
        key = rule.key
        kept = self._answers.get(key)
        if kept is not None:
            self._answers.move_to_end(key)
            return kept[1]
        base: list[str] | None = None
        for earlier, answer in self._answers.values():
            if rule.narrows(earlier) and (base is None or len(answer) < len(base)):
                base = answer
        sets = self._sets(rule, members)
        ordered: list[str]
        if sets:
            sets.sort(key=len)
            found = sets[0].intersection(*sets[1:]) if len(sets) > 1 else sets[0]
            if base is not None and len(base) <= len(found):
                ordered = [host_id for host_id in base if host_id in found]
            elif len(found) * 8 < len(self.ids):  # a few: sort them into place
                ordered = sorted(found, key=self._positions().__getitem__)
            else:  # many: picking them out in order is cheaper than sorting
                ordered = [host_id for host_id in self.ids if host_id in found]
        else:
            ordered = list(base if base is not None else self.ids)
        hay = self._hay
        for word in rule.words:
            ordered = [host_id for host_id in ordered if word in hay[host_id]]
        self._answers[key] = (rule, ordered)
        if len(self._answers) > self.CACHED:
            self._answers.popitem(last=False)
        return ordered

    def _sets(self, rule: HostFilter, members: set[str] | None) -> list[set[str]]:
        sets: list[set[str]] = [] if members is None else [members]
        if rule.statuses:
            sets.append(set().union(*(self._status.get(status, ()) for status in rule.statuses)))
        for key, value in rule.labels.items():
            if value:
                sets.append(self._labels.get(key, {}).get(value, set()))
            else:
                sets.append(self._has_label.get(key, set()))
        return sets

    def _positions(self) -> dict[str, int]:
        if self._position is None:
            self._position = {host_id: i for i, host_id in enumerate(self.ids)}
        return self._position
