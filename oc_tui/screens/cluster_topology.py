"""One inference cluster: its topology (as exo shows its nodes: each host with its engine's health, the
model present or its pull's progress, requests in flight, tokens/s and time-to-first-token sparklines)
refreshed every second, and a small chat box that streams an answer from the cluster's endpoint and
shows the tokens/s measured here."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Label, Sparkline, Static

from oc_tui.api import errors
from oc_tui.api.models import Cluster, ClusterHost
from oc_tui.readonly import ReadOnlyGuard
from oc_tui.screens.host_tab import client_of
from oc_tui.widgets.formatting import describe_error, host_markup, host_text
from oc_tui.widgets.statuses import status_label
from oc_tui.widgets.text_entry import Input

REFRESH = 1.0  # seconds between two reads of the cluster
HEALTH_WORDS = {
    "ready": "● ready",
    "not_ready": "◌ not ready",
    "no_model": "! no model",
    "pulling": "↓ pulling",
    "unreachable": "✕ unreachable",
    "offline": "○ offline",
    "unknown": "? unknown",
}


def pull_line(host: ClusterHost, model: str) -> str:
    """The model line of a host card: present, pulling (with its progress) or missing."""
    if host.pull is not None and host.health == "pulling":
        pull = host.pull
        share = f" {pull.completed * 100 // pull.total}%" if pull.total else ""
        return f"pull {model}:{share} {pull.status}"
    if host.health == "no_model":
        return f"{model} missing"
    if host.pull is not None and host.pull.status.startswith("failed"):
        return f"pull {pull_status(host)}"
    return f"{model} present" if host.health == "ready" else host.detail or "—"


def pull_status(host: ClusterHost) -> str:
    """The pull's last word."""
    return host.pull.status if host.pull is not None else ""


class HostCard(Vertical):
    """One host of the cluster: health, engine, model, counters and two sparklines."""

    def __init__(self, host: ClusterHost, model: str, kind: str) -> None:
        super().__init__(classes="host-card")
        self.host = host
        self.model = model
        self.kind = kind

    def compose(self) -> ComposeResult:
        yield Static(id="card-text")
        yield Label("tokens/s", classes="spark-label")
        yield Sparkline([], id="tps")
        yield Label("TTFT ms", classes="spark-label")
        yield Sparkline([], id="ttft")

    def on_mount(self) -> None:
        self.show(self.host)

    def show(self, host: ClusterHost) -> None:
        """Draw ``host`` (a fresh reading of the same host)."""
        self.host = host
        self.border_title = host_markup(host.name or host.host_id)
        for health in HEALTH_WORDS:
            self.set_class(host.health == health, f"-{health}")
        lines = [
            f"{HEALTH_WORDS.get(host.health, host.health)}  {self.kind}:{host.port}",
            pull_line(host, self.model),
            f"in flight {host.in_flight} · done {host.completed} · errors {host.errors}",
            f"{host.tokens_per_s:.1f} tok/s · TTFT {host.ttft_ms:.0f} ms",
        ]
        self.query_one("#card-text", Static).update("\n".join(host_markup(line) for line in lines))
        self.query_one("#tps", Sparkline).data = host.tokens_per_s_history
        self.query_one("#ttft", Sparkline).data = host.ttft_ms_history


class ClusterScreen(ReadOnlyGuard, Screen[None]):
    """The topology of ``cluster`` and its chat box; ``live``: False in tests and screenshots."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("c", "chat", "Chat"),
        Binding("s", "start", "Start"),
        Binding("x", "stop", "Stop"),
        Binding("r", "reload", "Reload"),
    ]

    @dataclass
    class Loaded(Message):
        """A fresh reading of the cluster."""

        cluster: Cluster

    @dataclass
    class Piece(Message):
        """A piece of the chat's answer; ``done``: the answer ended (``error``: why it broke off)."""

        text: str
        done: bool = False
        error: str = ""

    def __init__(self, cluster: Cluster, *, live: bool = True) -> None:
        super().__init__()
        self.cluster = cluster
        self.live = live
        self._answer = ""
        self._pieces = 0
        self._asked_at = 0.0
        self._first_at = 0.0

    def compose(self) -> ComposeResult:
        yield Static(id="resource-info")
        with VerticalScroll(id="topology-scroll"):  # focused first: arrows scroll the hosts
            yield Grid(id="topology")
        with Vertical(id="chat"):
            yield Static("", id="chat-answer")
            yield Static("", id="chat-stats")
            yield Input(placeholder="Ask the cluster (enter sends)", id="chat-input", compact=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#chat", Vertical).border_title = "chat"
        self.show(self.cluster)
        if self.live:
            self.action_reload()
            self.set_interval(REFRESH, self.action_reload)

    def action_back(self) -> None:
        """Leave the chat box if it has the keys, else go back."""
        if isinstance(self.focused, Input):
            self.set_focus(None)
        else:
            self.app.pop_screen()

    def action_chat(self) -> None:
        """Put the keys in the chat box."""
        self.query_one("#chat-input", Input).focus()

    def action_reload(self) -> None:
        """Read the cluster again (in a worker)."""
        self.run_worker(self._fetch(), name="read cluster", group="read", exclusive=True, exit_on_error=False)

    async def _fetch(self) -> None:
        client = client_of(self)
        if client is None:
            return
        try:
            self.post_message(self.Loaded(await client.get_cluster(self.cluster.id)))
        except errors.OpenComputersError as exc:
            self.query_one("#resource-info", Static).update(
                host_markup(f"read failed: {describe_error(exc)}")
            )

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.show(message.cluster)

    def show(self, cluster: Cluster) -> None:
        """Draw ``cluster``: the info line and one card per host (cards are kept and updated)."""
        self.cluster = cluster
        kind = cluster.engine.kind if cluster.engine else "ollama"
        info = (
            f":clusters › {cluster.name}  ·  {status_label('clusters', cluster.status)}  ·  "
            f"{cluster.model}  ·  {cluster.inference_url}"
        )
        if cluster.status_reason and cluster.status == "error":
            info += f"  ·  {cluster.status_reason}"
        self.query_one("#resource-info", Static).update(host_markup(info))
        grid = self.query_one("#topology", Grid)
        cards = {card.host.host_id: card for card in grid.query(HostCard)}
        for host in cluster.hosts:
            card = cards.get(host.host_id)
            if card is None:
                grid.mount(HostCard(host, cluster.model, kind))
            else:
                card.show(host)

    def action_start(self) -> None:
        """Start the cluster."""
        self._change("start", lambda client: client.start_cluster(self.cluster.id))

    def action_stop(self) -> None:
        """Stop routing to the cluster."""
        self._change("stop", lambda client: client.stop_cluster(self.cluster.id))

    def _change(self, action: str, call: object) -> None:
        async def run() -> None:
            client = client_of(self)
            if client is None:
                return
            try:
                self.post_message(self.Loaded(await call(client)))  # type: ignore[operator]
            except errors.OpenComputersError as exc:
                self.notify(host_markup(describe_error(exc)), title=f"{action} failed", severity="error")

        self.run_worker(run(), name=action, group="change", exit_on_error=False)

    # --- the chat box ----------------------------------------------------------------------------------

    @on(Input.Submitted, "#chat-input")
    def ask(self, event: Input.Submitted) -> None:
        """Send the question; the answer streams into the box."""
        question = event.value.strip()
        if not question:
            return
        event.input.value = ""
        self._answer, self._pieces = "", 0
        self._asked_at, self._first_at = time.monotonic(), 0.0
        self.query_one("#chat-answer", Static).update(host_markup(f"› {question}"))
        self.query_one("#chat-stats", Static).update("waiting for the first token…")
        self.run_worker(self._chat(question), name="chat", group="chat", exclusive=True, exit_on_error=False)

    async def _chat(self, question: str) -> None:
        client = client_of(self)
        if client is None:
            self.post_message(self.Piece("", done=True, error="not connected yet"))
            return
        messages = [{"role": "user", "content": question}]
        try:
            async for piece in client.chat_stream(self.cluster.inference_url, self.cluster.model, messages):
                self.post_message(self.Piece(piece))
        except errors.OpenComputersError as exc:
            self.post_message(self.Piece("", done=True, error=describe_error(exc)))
            return
        self.post_message(self.Piece("", done=True))

    @on(Piece)
    def _piece(self, message: Piece) -> None:
        now = time.monotonic()
        if message.text:
            if not self._first_at:
                self._first_at = now
            self._pieces += 1
            self._answer += message.text
            self.query_one("#chat-answer", Static).update(
                host_text(self._answer, keep="\n").replace("[", "\\[")
            )
        self.query_one("#chat-stats", Static).update(host_markup(self.chat_stats(now, message)))

    def chat_stats(self, now: float, message: Piece) -> str:
        """The line under the answer: tokens, tokens/s and time to first token, measured here."""
        if message.error:
            return f"failed: {message.error}"
        if not self._first_at:
            return "waiting for the first token…" if not message.done else "no answer"
        ttft = (self._first_at - self._asked_at) * 1000
        span = now - self._first_at
        rate = f"{(self._pieces - 1) / span:.1f} tok/s" if span > 0 and self._pieces > 1 else "—"
        state = "done" if message.done else "streaming"
        return f"{state} · {self._pieces} tokens · {rate} (measured here) · TTFT {ttft:.0f} ms"
