"""Profiles and paths: CLI flags > environment > config file > defaults, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from oc_tui.config import (
    ConfigError,
    ConfigFile,
    Profile,
    ProfileSettings,
    config_dir,
    data_dir,
    load_config,
    resolve_profile,
)


def write_config(directory: Path, text: str) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.toml").write_text(text)
    return {"OC_TUI_CONFIG_DIR": str(directory)}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment with an empty config dir of its own (nothing of the real user's leaks in)."""
    return {"OC_TUI_CONFIG_DIR": str(tmp_path / "config")}


def test_nothing_configured_is_the_embedded_local_profile(env: dict[str, str]) -> None:
    assert resolve_profile(env=env) == Profile(
        name="local", base_url="http://127.0.0.1:8787", token=None, embedded=True
    )


def test_hosted_takes_its_token_from_miosa_api_key(env: dict[str, str]) -> None:
    profile = resolve_profile("hosted", env={**env, "MIOSA_API_KEY": "mk_1"})
    assert profile == Profile(name="hosted", base_url="https://api.miosa.ai", token="mk_1", embedded=False)


def test_hosted_without_a_token_is_a_clear_error(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="needs an API token: set MIOSA_API_KEY"):
        resolve_profile("hosted", env=env)


def test_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    env = write_config(tmp_path, '[profiles.staging]\nbase_url = "https://oc.example.com"\ntoken = "t"\n')
    with pytest.raises(ConfigError, match=r"unknown profile 'hostd'; known profiles: hosted, local, staging"):
        resolve_profile("hostd", env=env)


def test_precedence_cli_over_env_over_file_over_defaults(tmp_path: Path) -> None:
    file_env = write_config(
        tmp_path,
        'profile = "hosted"\ntheme = "nord"\n'
        '[profiles.hosted]\nbase_url = "https://file.example"\ntoken = "file-token"\n',
    )
    assert resolve_profile(env=file_env) == Profile("hosted", "https://file.example", "file-token", False)

    env = {
        **file_env,
        "MIOSA_API_KEY": "miosa-token",
        "OC_TUI_BASE_URL": "https://env.example/",
    }
    assert resolve_profile(env=env) == Profile("hosted", "https://env.example", "miosa-token", False)

    env["OC_TUI_TOKEN"] = "env-token"
    assert resolve_profile(env=env).token == "env-token"

    cli = resolve_profile(base_url="https://cli.example", token="cli-token", env=env)
    assert cli == Profile("hosted", "https://cli.example", "cli-token", False)

    env["OC_TUI_PROFILE"] = "local"
    assert resolve_profile(env=env).name == "local"
    assert resolve_profile("hosted", env=env).name == "hosted"
    assert load_config(env).theme == "nord"


def test_a_custom_profile_needs_a_base_url_and_a_token(tmp_path: Path) -> None:
    env = write_config(
        tmp_path, '[profiles.box]\ntoken = "t"\n[profiles.bare]\nbase_url = "http://box:8787"\n'
    )
    with pytest.raises(ConfigError, match="profile 'box' has no base_url"):
        resolve_profile("box", env=env)
    with pytest.raises(ConfigError, match="profile 'bare' needs an API token: pass --token"):
        resolve_profile("bare", env=env)
    assert resolve_profile("bare", token="x", env=env) == Profile("bare", "http://box:8787", "x", False)


def test_local_profile_may_move_to_another_port(env: dict[str, str]) -> None:
    config = ConfigFile(profiles={"local": ProfileSettings(base_url="http://127.0.0.1:9999")})
    profile = resolve_profile(env=env, config=config)
    assert profile == Profile("local", "http://127.0.0.1:9999", None, True)


def test_an_explicit_base_url_talks_to_that_server_instead_of_starting_one(env: dict[str, str]) -> None:
    env = {**env, "OC_TUI_BASE_URL": "http://127.0.0.1:9999", "OC_TUI_TOKEN": "tok"}
    assert resolve_profile(env=env) == Profile("local", "http://127.0.0.1:9999", "tok", False)
    with pytest.raises(ConfigError, match="needs an API token"):
        resolve_profile(
            base_url="http://127.0.0.1:9999", env={k: v for k, v in env.items() if k != "OC_TUI_TOKEN"}
        )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("profile = [", "cannot read"),
        ("profile = 3", "'profile' must be a string, not int"),
        ("profiles = 1", "'profiles' must be a table"),
        ('[profiles.x]\nbase_url = "http://a"\ntokn = "t"', r"\[profiles.x\] has unknown keys: tokn"),
        ("[profiles.x]\ntoken = 5", "'profiles.x.token' must be a string"),
        ('[profiles.hosted]\nbind = "0.0.0.0"', r"only \[profiles.local\] runs a server"),
        ('[profiles.local]\npublic_url = "fleet:8787"', "public_url' must start with http"),
    ],
)
def test_broken_config_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    env = write_config(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        resolve_profile(env=env)
    assert str(tmp_path / "config.toml") in str(info.value)


def test_base_url_must_be_http(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="must start with http:// or https://"):
        resolve_profile("hosted", base_url="api.miosa.ai", token="t", env=env)


def test_dirs_follow_overrides_then_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"OC_TUI_CONFIG_DIR": str(tmp_path / "c"), "OC_TUI_DATA_DIR": str(tmp_path / "d")}
    assert config_dir(env) == tmp_path / "c"
    assert data_dir(env) == tmp_path / "d"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    assert config_dir({}) == tmp_path / "xdg-config" / "oc-tui"
    assert data_dir({}) == tmp_path / "xdg-data" / "oc-tui"
