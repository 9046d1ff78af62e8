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


def test_the_filter_index_answers_as_the_filter_does_while_typing_and_deleting() -> None:
    """FilterIndex (what the fleet uses for thousands of hosts) against HostFilter.matches on every
    prefix of filters typed, then deleted again (answers kept, narrowed and looked up), and after a
    host changes."""
    import random

    from oc_tui.widgets.host_filter import FilterIndex

    rng = random.Random(3)
    hosts = [
        host(
            f"{rng.choice(['web', 'db', 'edge'])}-{i:03d}",
            rng.choice(["online", "offline", "pending"]),
            **({"env": rng.choice(["prod", "dev"])} if i % 3 else {}),
            **({"gpu": "a100"} if i % 5 == 0 else {}),
        )
        for i in range(300)
    ]
    ordered = sorted(hosts, key=lambda h: h.name)
    index = FilterIndex()
    index.rebuild(ordered)

    def expect(text: str, among: list[Host]) -> list[str]:
        rule = HostFilter.parse(text)
        return [h.id for h in among if rule.matches(h)]

    typed = ["env=prod web-0", "status:online db", "gpu= edge-1", "offline env=dev", "host_web0"]
    for text in typed:
        prefixes = [text[:n] for n in range(len(text) + 1)]
        for prefix in prefixes + prefixes[::-1]:
            assert index.select(HostFilter.parse(prefix)) == expect(prefix, ordered), prefix
    members = {h.id for h in ordered[::2]}
    assert index.select(HostFilter.parse("web"), members) == [
        i for i in expect("web", ordered) if i in members
    ]

    changed = ordered[10].model_copy(
        update={"status": "offline", "labels": {"env": "prod"}, "name": "aaa-web"}
    )
    ordered = sorted([changed, *(h for h in ordered if h.id != changed.id)], key=lambda h: h.name)
    index.put(changed, [h.id for h in ordered])
    for text in ["offline", "env=prod web", "aaa", "web"]:
        assert index.select(HostFilter.parse(text)) == expect(text, ordered), text


def test_a_narrower_filter_is_known_as_such() -> None:
    parse = HostFilter.parse
    assert parse("web-0").narrows(parse("web"))
    assert parse("env=prod db").narrows(parse("env=prod"))
    assert parse("env=prod").narrows(parse("env="))
    assert parse("online").narrows(parse("online offline"))
    assert not parse("env=pr").narrows(parse("env=p"))
    assert not parse("env=").narrows(parse("env"))
    assert not parse("online offline").narrows(parse("online"))
    assert not parse("web").narrows(parse("web-0"))
