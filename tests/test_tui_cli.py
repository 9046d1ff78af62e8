"""``oc-tui`` command line: configuration problems are one line on stderr and exit status 2."""

from __future__ import annotations

import pytest

from oc_tui import cli


@pytest.fixture(autouse=True)
def empty_config(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OC_TUI_CONFIG_DIR", str(tmp_path))
    for name in ("OC_TUI_PROFILE", "OC_TUI_BASE_URL", "OC_TUI_TOKEN", "MIOSA_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--profile", "nope"], "unknown profile 'nope'"),
        (["--profile", "hosted"], "needs an API token"),
        (["--base-url", "ftp://x"], "must start with http:// or https://"),
        (["--theme", "neon"], "unknown theme 'neon'"),
    ],
)
def test_config_errors_are_one_line_and_exit_2(argv, expected, capsys) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("oc-tui: ") and expected in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_broken_config_file_is_a_clear_error(tmp_path, capsys) -> None:
    (tmp_path / "config.toml").write_text("profile = [unclosed")
    assert cli.main([]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("oc-tui ")


def test_the_embedded_servers_address_comes_from_the_config_file_unless_a_flag_says(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oc_tui.app import OcTuiApp

    seen: list[tuple[str, str | None]] = []
    monkeypatch.setattr(OcTuiApp, "run", lambda self: seen.append((self._bind, self._public_url)))
    (tmp_path / "config.toml").write_text(
        '[profiles.local]\nbind = "0.0.0.0"\npublic_url = "http://fleet.example:8787/"\n'
    )
    assert cli.main([]) == 0
    assert cli.main(["--bind", "127.0.0.1", "--public-url", "http://other:1"]) == 0
    (tmp_path / "config.toml").write_text("")
    assert cli.main([]) == 0
    assert seen == [
        ("0.0.0.0", "http://fleet.example:8787"),
        ("127.0.0.1", "http://other:1"),
        ("127.0.0.1", None),
    ]
