"""Shows a new host's key — the only time it is ever shown — with the command that starts its agent.

The command sits in a read-only text area so it can be selected with the mouse; ``c`` copies it
to the clipboard (OSC 52, so it also works over SSH when the terminal allows it).
"""

from __future__ import annotations

import contextlib
import ipaddress
import shlex
from typing import ClassVar
from urllib.parse import urlsplit

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, TextArea

from oc_tui.api import OpenComputersClient, errors
from oc_tui.api.models import HostRegistration
from oc_tui.widgets.clipboard import copy_text
from oc_tui.widgets.formatting import host_markup
from oc_tui.widgets.keys_footer import DialogKeys


def agent_command(base_url: str, host_key: str) -> str:
    """The exact command to run on the new machine: the key in the agent's environment, never in its
    argv (which every user of that machine can read with ``ps``)."""
    return f"OC_HOST_KEY={shlex.quote(host_key)} oc-agent --server {shlex.quote(base_url)}"


async def public_url(client: OpenComputersClient) -> str:
    """The URL other machines reach the control plane at: the embedded server's ``public_url``
    (``/healthz``, set with ``--public-url`` or ``public_url`` in config.toml), else the URL this client
    uses (MIOSA's API, a server without the extension, or none answering)."""
    with contextlib.suppress(errors.OpenComputersError):
        public = (await client.health()).get("public_url")
        if isinstance(public, str) and public.startswith(("http://", "https://")):
            return public
    return client.base_url


def loopback_hint(base_url: str) -> str | None:
    """What to change when the control plane is only reachable from this machine, else None."""
    host = urlsplit(base_url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        return None
    return (
        f"Only this machine reaches {base_url}. For others: oc-tui --bind 0.0.0.0 --public-url "
        "http://THIS-HOST:8787 (or bind, public_url in [profiles.local] of config.toml)"
    )


class HostKeyScreen(DialogKeys, ModalScreen[None]):
    """The host key and the ``oc-agent`` command for a just-registered host."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "Copy command"),
        Binding("escape", "close", "Done"),
    ]

    def __init__(self, registration: HostRegistration, base_url: str) -> None:
        super().__init__()
        self._registration = registration
        self.command = agent_command(base_url, registration.host_key)
        self.hint = loopback_hint(base_url)

    def compose(self) -> ComposeResult:
        reg = self._registration
        with Vertical(classes="dialog -wide"):
            yield Label(
                f"Host {host_markup(reg.name)} registered ({host_markup(reg.id)})", classes="dialog-title"
            )
            yield Label(
                "Its key is shown only this once. Run this on the new machine:", classes="dialog-text"
            )
            yield TextArea(self.command, read_only=True, soft_wrap=True, id="command")
            yield Label(f"host key: {host_markup(reg.host_key)}", id="host-key", classes="dialog-text")
            if self.hint:
                yield Label(self.hint, id="loopback-hint", classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Copy command (c)", variant="primary", id="copy", compact=True)
                yield Button("Done (esc)", id="close", compact=True)

    def on_mount(self) -> None:
        self.query_one("#copy", Button).focus()

    def action_copy(self) -> None:
        copy_text(self, self.command, "oc-agent command")

    def action_close(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#copy")
    def _copy_pressed(self) -> None:
        self.action_copy()

    @on(Button.Pressed, "#close")
    def _close_pressed(self) -> None:
        self.dismiss(None)
