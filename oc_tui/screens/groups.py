"""Saved views: host groups. ``:groups`` lists them (the generic resource screen); in the fleet, ``v``
saves the current filter as a group (label terms only: a ``tag_query`` group that new hosts join by
their labels; anything else: an explicit group of the hosts shown), and ``:hosts group=NAME`` opens the
fleet filtered to a group's members."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label

from oc_tui.api import OpenComputersClient
from oc_tui.api.models import Group
from oc_tui.screens.form_dialog import FormDialog
from oc_tui.widgets.formatting import host_markup, host_text
from oc_tui.widgets.host_filter import HostFilter
from oc_tui.widgets.resource_table import Column

COLUMNS: Sequence[Column] = (
    Column("name", "NAME", lambda group, _now: host_text(group.name)),
    Column("kind", "KIND", lambda group, _now: group.kind),
    Column("members", "HOSTS", lambda group, _now: str(group.member_count)),
    Column("query", "QUERY", lambda group, _now: host_text(describe_query(group))),
)


def describe_query(group: Group) -> str:
    """A tag query as one line (``role=web and env=prod``); ``—`` for an explicit group."""
    if group.kind != "tag_query" or not group.tag_query:
        return "—"
    return _query_text(group.tag_query)


def _query_text(query: dict[str, Any]) -> str:
    op, items = next(iter(query.items()))
    parts = [item if isinstance(item, str) else f"({_query_text(item)})" for item in items]
    return f" {op} ".join(parts)


async def list_groups(client: OpenComputersClient) -> Sequence[Group]:
    """The lister of ``:groups`` (with the status column's field: groups have none)."""
    return [group.model_copy(update={"status": ""}) for group in await client.list_groups()]


def query_of(filter_: HostFilter) -> dict[str, Any] | None:
    """The tag query a filter of label terms only stands for (``env=prod role=`` → ``{"and": ["env=prod",
    "role"]}``); None when the filter has other terms (names, statuses)."""
    if not filter_.labels or filter_.words or filter_.statuses:
        return None
    return {"and": [f"{key}={value}" if value else key for key, value in filter_.labels.items()]}


async def group_member_ids(client: OpenComputersClient, name: str) -> set[str] | None:
    """The IDs of the members of the group called ``name`` now, or None when there is none."""
    group = next((g for g in await client.list_groups() if g.name == name), None)
    if group is None:
        return None
    _, members = await client.get_group(group.id)
    return {str(member["id"]) for member in members}


class SaveGroupScreen(FormDialog[Group]):
    """Asks for a name and saves the fleet's filter as a group."""

    FAILURE_TITLE = "Save failed"
    NEEDS_CLIENT = True

    def __init__(self, client: OpenComputersClient | None, filter_: HostFilter, shown: list[str]) -> None:
        super().__init__(client)
        self._query = query_of(filter_)
        self._shown = shown
        self._filter = filter_

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Save the filter as a group", classes="dialog-title")
            if self._query is not None:
                what = f"hosts labelled {host_markup(self._filter.text)}, now and later (tag query)"
            else:
                what = f"the {len(self._shown)} hosts shown now (explicit)"
            yield Label(what, classes="dialog-text")
            yield Label("Name", classes="field-label")
            yield Input(placeholder="e.g. web", id="name", compact=True)
            yield from self.compose_footer("Save")

    def fields(self) -> str | None:
        return self.required("#name")

    async def send(self, fields: str) -> Group:
        assert self.client is not None  # NEEDS_CLIENT
        if self._query is not None:
            return await self.client.create_group(fields, tag_query=self._query)
        return await self.client.create_group(fields, host_ids=self._shown)
