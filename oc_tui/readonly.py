"""Read-only mode: ``oc-tui --read-only``, or a token the server says is read-only (``GET /token``).

Every action that changes something on a host or the control plane is named in
:data:`MUTATING_ACTIONS`; screens and tabs that offer such keys mix in :class:`ReadOnlyGuard`, which
disables them (the footer greys them out) while the app is read-only. The fleet's info line says why.
"""

from __future__ import annotations

from typing import Any

MUTATING_ACTIONS = frozenset(
    {
        # fleet
        "run_on_marked",
        "register",
        "edit_labels",
        "rename",
        "revoke",
        "save_group",
        "push_file",
        "broadcast_terminals",
        "toggle_broadcast",
        # fan-out results
        "cancel_job",
        "cancel_all",
        "rerun_failed",
        # host tabs: jobs, files, terminal, desktop, tunnels
        "run",
        "upload",
        "mkdir",
        "delete",
        "save",
        "new_terminal",
        "enter_terminal",
        "control",
        "new_tunnel",
        "edit_tunnel",
        "toggle_tunnel",
        "delete_tunnel",
        "replay",
        # secrets (tab and :secrets)
        "new_secret",
        "edit_secret",
        "delete_secret",
        # AI agents (tab, :agents, a session's log)
        "dispatch",
        "model",
        "cancel_session",
        "approve",
        "edit",
        "deny",
        # inference clusters (:clusters and a cluster's topology)
        "new_cluster",
        "start_cluster",
        "stop_cluster",
        "delete_cluster",
        "start",
        "stop",
    }
)
"""The actions (``action_<name>``) a read-only app refuses."""


def read_only_reason(app: Any) -> str | None:
    """Why the app is read-only (``"--read-only"``, ``"read-only token"``), or None when it is not."""
    reason = getattr(app, "read_only", None)
    return reason if isinstance(reason, str) and reason else None


class ReadOnlyGuard:
    """Mixin for a screen or widget with mutating keys: disables them while the app is read-only."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """None (shown disabled) for a mutating action in read-only mode; else the class's own answer."""
        if action in MUTATING_ACTIONS and read_only_reason(getattr(self, "app", None)):
            return None
        check = getattr(super(), "check_action", None)
        return check(action, parameters) if check is not None else True
