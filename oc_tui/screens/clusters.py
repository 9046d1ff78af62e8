"""``:clusters``: the tenant's inference clusters in the generic resource screen, with their actions
(new, start, stop, delete, open the topology), and the form that creates one over hosts picked from the
fleet, each shown with the LLM engines and models found on it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Input, Label, Select, SelectionList
from textual.widgets.selection_list import Selection

from oc_tui.api import errors
from oc_tui.api.models import ENGINE_PORTS, Cluster, ClusterEngine, DetectedEngine, EngineKind, Host
from oc_tui.screens.confirm import ConfirmScreen
from oc_tui.screens.form_dialog import FormDialog
from oc_tui.screens.host_tab import client_of
from oc_tui.screens.resource import ResourceScreen
from oc_tui.widgets.clipboard import copy_text
from oc_tui.widgets.formatting import describe_error, host_markup
from oc_tui.widgets.resource_table import STATUS, Column

if TYPE_CHECKING:
    from textual.app import App

    from oc_tui.api import OpenComputersClient

ENGINES: tuple[tuple[str, EngineKind], ...] = (
    ("Ollama (11434)", "ollama"),
    ("OpenAI-compatible: llama-server, vLLM … (8080)", "openai"),
)


def ready_hosts(cluster: Cluster) -> str:
    """``ready/all`` hosts of a cluster (all when the server says nothing of their health)."""
    if not cluster.hosts:
        return str(len(cluster.host_ids))
    return f"{sum(h.health == 'ready' for h in cluster.hosts)}/{len(cluster.hosts)}"


COLUMNS: tuple[Column, ...] = (
    Column(STATUS, "Status", lambda c, _: c.status),
    Column("name", "Name", lambda c, _: c.name),
    Column("model", "Model", lambda c, _: c.model),
    Column("hosts", "Ready", lambda c, _: ready_hosts(c)),
    Column("busy", "In flight", lambda c, _: str(sum(h.in_flight for h in c.hosts))),
    Column("url", "Endpoint", lambda c, _: c.inference_url),
)


async def list_clusters(client: OpenComputersClient) -> list[Cluster]:
    """The tenant's clusters (the resource screen's lister)."""
    return await client.list_clusters()


class ClustersScreen(ResourceScreen):
    """``:clusters``; ``live``: False in tests and screenshots (rows come as messages)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_cluster", "New"),
        Binding("enter", "open_cluster", "Topology"),
        Binding("s", "start_cluster", "Start"),
        Binding("x", "stop_cluster", "Stop"),
        Binding("delete,d", "delete_cluster", "Delete"),
        Binding("c", "copy_url", "Copy URL"),
    ]

    def __init__(self, *, live: bool = True) -> None:
        super().__init__(":clusters", "clusters", COLUMNS, list_clusters, live=live)
        self.live = live

    @property
    def selected(self) -> Cluster | None:
        """The cluster under the cursor."""
        chosen = self.table.selected_id
        return next((c for c in self.table.items if c.id == chosen), None)

    def action_new_cluster(self) -> None:
        """Open the form for a new cluster."""

        def made(cluster: Cluster | None) -> None:
            if cluster is not None:
                self.notify(cluster.inference_url, title=f"Cluster {host_markup(cluster.name)} created")
                self.action_reload()

        self.app.push_screen(ClusterForm(client_of(self), live=self.live), made)

    @on(DataTable.RowSelected)
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        """``enter`` on a row (the table takes the key): open that cluster."""
        event.stop()
        self.action_open_cluster()

    def action_open_cluster(self) -> None:
        """Show the selected cluster's topology and chat box."""
        from oc_tui.screens.cluster_topology import ClusterScreen

        cluster = self.selected
        if cluster is not None:
            self.app.push_screen(ClusterScreen(cluster, live=self.live))

    def action_start_cluster(self) -> None:
        """Start the selected cluster (its hosts' engines are checked again)."""
        cluster = self.selected
        if cluster is not None:
            self.run_change("start cluster", lambda client: client.start_cluster(cluster.id))

    def action_stop_cluster(self) -> None:
        """Stop routing to the selected cluster."""
        cluster = self.selected
        if cluster is not None:
            self.run_change("stop cluster", lambda client: client.stop_cluster(cluster.id))

    def action_delete_cluster(self) -> None:
        """Ask, then delete the selected cluster."""
        cluster = self.selected
        if cluster is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_change("delete cluster", lambda client: client.delete_cluster(cluster.id))

        text = f"{host_markup(cluster.inference_url)} stops answering. The engines on the hosts keep running."
        self.app.push_screen(
            ConfirmScreen(f"Delete cluster {host_markup(cluster.name)}?", text, "Delete"), answered
        )

    def action_copy_url(self) -> None:
        """Copy the selected cluster's endpoint to the clipboard (OSC 52)."""
        cluster = self.selected
        if cluster is not None:
            copy_text(self, cluster.inference_url, "Endpoint")


def open_clusters(app: App[Any]) -> None:
    """Show ``:clusters``."""
    app.push_screen(ClustersScreen(live=bool(getattr(app, "networked", True))))


# --- the create form -----------------------------------------------------------------------------------


@dataclass
class ClusterFields:
    """What the form sends."""

    name: str
    model: str
    host_ids: list[str]
    engine: ClusterEngine
    host_ports: dict[str, int]


def engine_summary(engines: list[DetectedEngine]) -> str:
    """How a host's engines read in the form: ``ollama:11434 llama3:8b, qwen2 · openai:8080 (loading)``."""
    if not engines:
        return "no engine found"
    parts = []
    for engine in engines:
        models = ", ".join(engine.models[:3]) + (" …" if len(engine.models) > 3 else "")
        state = models if engine.ready else "not ready"
        parts.append(f"{engine.kind}:{engine.port} {state}".strip())
    return " · ".join(parts)


class ClusterForm(FormDialog[Cluster]):
    """Create a cluster: name, model, engine kind and port, the hosts (picked from the fleet with the
    engines found on each), and hosts whose engine listens elsewhere (``name=port``)."""

    FAILURE_TITLE = "Cluster not created"
    NEEDS_CLIENT = True

    @dataclass
    class HostsFound(Message):
        """The fleet's hosts, each with the engines found on it."""

        hosts: list[tuple[Host, list[DetectedEngine]]]

    def __init__(self, client: OpenComputersClient | None, *, live: bool = True) -> None:
        super().__init__(client)
        self.live = live
        self.hosts: list[tuple[Host, list[DetectedEngine]]] = []
        self._refind: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide"):
            yield Label("New inference cluster", classes="dialog-title", markup=False)
            yield Label("Name (its endpoint's slug is made from it)", classes="field-label")
            yield Input(placeholder="e.g. llama-pool", id="name", compact=True)
            yield Label("Model the hosts serve", classes="field-label -spaced")
            yield Input(placeholder="e.g. llama3:8b", id="model", compact=True)
            yield Label(
                "Engine on the hosts, and its port (empty: the engine's default)",
                classes="field-label -spaced",
            )
            yield Select(ENGINES, value="ollama", allow_blank=False, id="engine", compact=True)
            yield Input(placeholder="11434", id="port", compact=True, type="integer")
            yield Label("Hosts (space picks; engines found on each)", classes="field-label -spaced")
            yield SelectionList[str](id="hosts", compact=True)
            yield Label("Hosts on another port (optional: name=port …)", classes="field-label -spaced")
            yield Input(placeholder="e.g. gpu-2=8081", id="ports", compact=True)
            yield from self.compose_footer("Create")

    def on_mount(self) -> None:
        self.find_engines()

    def find_engines(self) -> None:
        """Look for the engines on every host again: the usual ports and those typed in the form."""
        self.query_one("#hosts", SelectionList).border_title = "looking for engines…" if self.live else ""
        if self.live and self.client is not None:
            ports = self.typed_ports()
            self.run_worker(
                self._find(self.client, ports),
                name="find engines",
                group="find",
                exclusive=True,
                exit_on_error=False,
            )

    def typed_ports(self) -> list[int]:
        """The ports typed in the port and per-host port fields (for the engine search)."""
        texts = [self.query_one("#port", Input).value]
        texts += [pair.partition("=")[2] for pair in self.query_one("#ports", Input).value.split()]
        return sorted({int(t) for t in texts if t.strip().isdigit() and 1 <= int(t) <= 65535})

    @on(Input.Changed, "#port, #ports")
    def _ports_typed(self) -> None:
        """A port was typed: look for engines there too, once the typing pauses."""
        if self._refind is not None:
            self._refind.stop()
        self._refind = self.set_timer(0.6, self.find_engines)

    async def _find(self, client: OpenComputersClient, ports: list[int]) -> None:
        try:
            hosts = [h for h in await client.all_hosts() if h.status != "revoked"]
        except errors.OpenComputersError as exc:
            self.show_error(describe_error(exc))
            return

        async def engines(host: Host) -> list[DetectedEngine]:
            if host.status != "online":
                return []
            try:
                return await client.host_engines(host.id, ports)
            except errors.OpenComputersError:
                return []

        found = await asyncio.gather(*(engines(host) for host in hosts))
        self.post_message(self.HostsFound(list(zip(hosts, found, strict=True))))

    @on(HostsFound)
    def show_hosts(self, message: HostsFound) -> None:
        """List the hosts to pick from (the online ones with an engine first)."""
        self.hosts = sorted(message.hosts, key=lambda item: (item[0].status != "online", not item[1]))
        picker = self.query_one("#hosts", SelectionList)
        picked = set(picker.selected)
        highlighted = picker.highlighted
        picker.clear_options()
        for host, engines in self.hosts:
            label = f"{host_markup(host.name)}  ({host.status})  {host_markup(engine_summary(engines))}"
            picker.add_option(Selection(label, host.id, host.id in picked))
        if picker.option_count:
            picker.highlighted = min(highlighted or 0, picker.option_count - 1)
        picker.border_title = f"{len(self.hosts)} hosts"

    def fields(self) -> ClusterFields | None:
        name = self.query_one("#name", Input).value.strip()
        model = self.query_one("#model", Input).value.strip()
        if not name or not model:
            self.show_error("a cluster needs a name and a model")
            self.query_one("#name" if not name else "#model", Input).focus()
            return None
        kind: EngineKind = "openai" if self.query_one("#engine", Select).value == "openai" else "ollama"
        port_text = self.query_one("#port", Input).value.strip()
        if port_text and not (port_text.isdigit() and 1 <= int(port_text) <= 65535):
            self.show_error("the port must be a number from 1 to 65535")
            return None
        host_ids = list(self.query_one("#hosts", SelectionList).selected)
        if not host_ids:
            self.show_error("pick at least one host (space)")
            self.query_one("#hosts", SelectionList).focus()
            return None
        names = {host.name: host.id for host, _ in self.hosts}
        ports: dict[str, int] = {}
        for pair in self.query_one("#ports", Input).value.split():
            host_name, _, value = pair.partition("=")
            if host_name not in names or not value.isdigit() or names[host_name] not in host_ids:
                self.show_error(f"{pair!r}: write name=port for a picked host")
                return None
            ports[names[host_name]] = int(value)
        engine = ClusterEngine(kind=kind, port=int(port_text) if port_text else ENGINE_PORTS[kind])
        return ClusterFields(name, model, host_ids, engine, ports)

    async def send(self, fields: ClusterFields) -> Cluster:
        assert self.client is not None  # NEEDS_CLIENT
        return await self.client.create_cluster(
            fields.name,
            fields.model,
            fields.host_ids,
            engine=fields.engine,
            host_ports=fields.host_ports or None,
        )
