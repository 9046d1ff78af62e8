"""The registry of top-level views for command mode (``:hosts``; ``:clusters``, ``:secrets``,
``:tunnels``, ``:agents`` next), as k9s's registrar: the app's ``:`` commands, their suggestions and the
``?`` rows all come from :data:`VIEWS`.

A view of API resources is a :class:`ResourceView`: a name, columns, a status kind and one call that
lists the resources; the generic :class:`~oc_tui.screens.resource.ResourceScreen` shows it. Adding one
is a small module with its columns and lister, plus one line in :data:`VIEWS`. A view without an
``open`` is listed as not yet available.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from oc_tui.widgets.resource_table import Column

if TYPE_CHECKING:
    from textual.app import App

    from oc_tui.screens.resource import Lister

Opener = Callable[["App[Any]"], None]


@dataclass(frozen=True)
class View:
    """A ``:`` command that shows a view: ``name`` (and ``aliases``), a line for ``?``, and ``open``
    (None: not yet available)."""

    name: str
    description: str
    open: Opener | None = None
    aliases: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        """Whether the view exists yet."""
        return self.open is not None

    def matches(self, command: str) -> bool:
        """Whether ``command`` (lower case, no ``:``) names this view."""
        return command == self.name or command in self.aliases


@dataclass(frozen=True)
class ResourceView(View):
    """A view of API resources in the generic resource screen: ``kind`` names its status vocabulary
    (:data:`~oc_tui.widgets.statuses.STATUSES`), ``columns`` its table and ``load`` lists them."""

    kind: str = ""
    columns: Sequence[Column] = field(default_factory=tuple)
    load: Lister | None = None

    def __post_init__(self) -> None:
        if self.open is None and self.load is not None:
            object.__setattr__(self, "open", self._push)

    def _push(self, app: App[Any]) -> None:
        from oc_tui.screens.resource import ResourceScreen

        assert self.load is not None  # set in __post_init__ only with a lister
        app.push_screen(
            ResourceScreen(
                f":{self.name}",
                self.kind,
                self.columns,
                self.load,
                live=bool(getattr(app, "networked", True)),
            )
        )


def _show_tunnels(app: App[Any]) -> None:
    from oc_tui.screens.tunnels_view import open_tunnels  # it imports the resource screen, as _push does

    open_tunnels(app)


def _show_agents(app: App[Any]) -> None:
    from oc_tui.screens.agents_view import open_agents  # it imports the resource screen, as _push does

    open_agents(app)


def _show_secrets(app: App[Any]) -> None:
    from oc_tui.screens.secrets import open_secrets  # it imports the resource screen, as _push does

    open_secrets(app)


def _show_clusters(app: App[Any]) -> None:
    from oc_tui.screens.clusters import open_clusters

    open_clusters(app)


def _show_hosts(app: App[Any]) -> None:
    action = getattr(app, "action_show_hosts", None)
    if callable(action):
        action()


def _show_groups(app: App[Any]) -> None:
    from oc_tui.screens.groups import COLUMNS, list_groups  # Textual screens load on first use

    ResourceView("groups", "", kind="groups", columns=COLUMNS, load=list_groups)._push(app)


def group_argument(command: str) -> str | None:
    """The ``NAME`` of ``:hosts group=NAME`` (None without one)."""
    for word in command.split()[1:]:
        if word.startswith("group="):
            return word.removeprefix("group=") or None
    return None


VIEWS: Sequence[View] = (
    View("hosts", "The fleet view", _show_hosts, aliases=("host", "fleet")),
    View("tunnels", "Every tunnel of the fleet", _show_tunnels),
    View("agents", "AI agent sessions of the fleet", _show_agents),
    View("clusters", "Inference clusters: list, create, topology, chat", _show_clusters),
    View("secrets", "The tenant's secrets (encrypted; for jobs)", _show_secrets, aliases=("secret",)),
    View("groups", "Host groups (saved views); :hosts group=NAME shows one", _show_groups),
)
"""Every top-level view, in the order ``?`` lists them."""


def find_view(command: str) -> View | None:
    """The view ``command`` names (its first word, any case), or None."""
    name = command.split()[0].lower() if command.split() else ""
    return next((view for view in VIEWS if view.matches(name)), None)


def command_names() -> list[str]:
    """What ``:`` suggests: the views that exist, quit, then those still to come."""
    return [
        *(view.name for view in VIEWS if view.available),
        "quit",
        "q",
        *(view.name for view in VIEWS if not view.available),
    ]


def help_rows() -> list[tuple[str, str]]:
    """The ``?`` rows of command mode."""
    coming = [f":{view.name}" for view in VIEWS if not view.available]
    return [
        *((f":{view.name}", view.description) for view in VIEWS if view.available),
        (":q  :quit", "Quit oc-tui"),
        *([("  ".join(coming), "Not yet available")] if coming else []),
    ]
