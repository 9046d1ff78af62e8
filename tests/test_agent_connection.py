"""Pure parts of the agent's connection logic: URL derivation and backoff bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedded_server.agent import system
from embedded_server.agent.dial import agent_url
from oc_tui.api.backoff import backoff_delay

BACKOFF_CAP = 30.0  # backoff_delay's default cap, which the agent uses


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("http://127.0.0.1:8787", "ws://127.0.0.1:8787/opencomputers/ws/agent"),
        ("https://oc.example.com/", "wss://oc.example.com/opencomputers/ws/agent"),
        (" ws://box:1 ", "ws://box:1/opencomputers/ws/agent"),
    ],
)
def test_agent_url_is_derived_from_the_server_root(server: str, expected: str) -> None:
    assert agent_url(server) == expected


@pytest.mark.parametrize("server", ["ftp://x", "127.0.0.1:8787", "http://[bad"])
def test_bad_server_urls_are_refused_up_front(server: str) -> None:
    with pytest.raises(ValueError, match="server URL"):
        agent_url(server)


def test_backoff_is_full_jitter_under_a_growing_cap() -> None:
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (3, 4.0), (6, BACKOFF_CAP), (60, BACKOFF_CAP)]:
        delays = [backoff_delay(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # spread over the whole range, not pinned at the bottom


def test_two_hosts_on_one_machine_keep_their_state_apart(tmp_path: Path, monkeypatch) -> None:
    """Without a state dir given, each host key has its own (an agent adopts, and ends, every job of its
    state dir); an identity an earlier version kept in the shared dir is carried over, so an enrolled
    host keeps the identity its control plane pinned. ``OC_AGENT_STATE_DIR`` is taken as it is."""
    monkeypatch.delenv("OC_AGENT_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    shared = system.default_state_dir()
    shared.mkdir(parents=True)
    (shared / "identity.key").write_text("enrolled")
    first, second = system.host_state_dir("hk_first"), system.host_state_dir("hk_second")
    assert first != second and first.parent == second.parent == shared
    assert first.stat().st_mode & 0o777 == 0o700
    assert (first / "identity.key").read_text() == "enrolled"
    assert system.host_state_dir("hk_first") == first
    monkeypatch.setenv("OC_AGENT_STATE_DIR", str(tmp_path / "given"))
    assert system.host_state_dir("hk_first") == tmp_path / "given"
