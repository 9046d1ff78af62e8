"""The fleet filter language and the labels syntax, as the operator types them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from oc_tui.api.models import Host
from oc_tui.widgets.formatting import relative_time, status_label
from oc_tui.widgets.host_filter import HostFilter
from oc_tui.widgets.labels import format_labels, parse_labels

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def host(name: str, status: str = "online", **labels: str) -> Host:
    return Host(
        id=f"host_{name.replace('-', '')}",
        name=name,
        status=status,
        tenant_id="t_x",
        labels=labels,
        created_at=NOW,
        updated_at=NOW,
    )


HOSTS = [
    host("web-1", env="prod", team="web"),
    host("web-2", "offline", env="dev"),
    host("db-1", "pending", env="prod"),
]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", ["web-1", "web-2", "db-1"]),
        ("WEB", ["web-1", "web-2"]),
        ("env=prod", ["web-1", "db-1"]),
        ("team=", ["web-1"]),
        ("status:offline", ["web-2"]),
        ("pending", ["db-1"]),
        ("online offline", ["web-1", "web-2"]),
        ("web env=prod", ["web-1"]),
        ("web status:pending", []),
        ("host_db1", ["db-1"]),
    ],
)
def test_filter_terms_are_anded(text: str, names: list[str]) -> None:
    rule = HostFilter.parse(text)
    assert [h.name for h in HOSTS if rule.matches(h)] == names
    assert rule.active == bool(text)


def test_labels_round_trip_and_errors() -> None:
    assert parse_labels(" env=prod ,team = web\nrole=db,") == {"env": "prod", "team": "web", "role": "db"}
    assert format_labels({"team": "web", "env": "prod"}) == "env=prod, team=web"
    assert parse_labels("") == {}
    with pytest.raises(ValueError, match="not key=value"):
        parse_labels("env")
    with pytest.raises(ValueError, match="twice"):
        parse_labels("a=1, a=2")


def test_status_and_relative_time() -> None:
    assert status_label("online") == "● online"
    assert status_label("revoked") == "✕ revoked"
    assert relative_time(NOW - timedelta(seconds=5), NOW) == "5s ago"
    assert relative_time(NOW - timedelta(hours=3, minutes=5), NOW) == "3h ago"
    assert relative_time(NOW + timedelta(seconds=5), NOW) == "0s ago"
    assert relative_time(None, NOW) == "-"
