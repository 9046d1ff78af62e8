"""Profiles (which control plane to talk to, with which token), paths, and environment overrides.

Two profiles are built in: ``local`` — the embedded control plane this machine runs itself (the
default when nothing is configured) — and ``hosted`` — MIOSA's API at https://api.miosa.ai with the
token from ``MIOSA_API_KEY``. ``config_dir()/config.toml`` may adjust them and add more::

    profile = "hosted"          # the profile used when none is asked for
    theme = "textual-dark"

    [profiles.hosted]
    token = "..."

    [profiles.staging]
    base_url = "https://oc.example.com"
    token = "..."

    [profiles.local]            # the embedded control plane: where it listens, how others reach it
    bind = "0.0.0.0"
    public_url = "http://this-host:8787"

Each setting is taken from the first place that has it: CLI flags > environment > config file > defaults.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

APP_NAME = "oc-tui"
LOCAL = "local"
HOSTED = "hosted"
HOSTED_BASE_URL = "https://api.miosa.ai"
LOCAL_PORT = 8787
LOCAL_BASE_URL = f"http://127.0.0.1:{LOCAL_PORT}"
LOCAL_BIND = "127.0.0.1"
EMBEDDED_KEYS = frozenset({"bind", "public_url"})
"""Keys of ``[profiles.local]`` alone: where the embedded server listens and how others reach it."""


def kept_local_port(data_dir: Path) -> int | None:
    """The port the embedded control plane of ``data_dir`` was given last (its ``port`` file: kept from
    one start to the next), or None when it has none yet."""
    try:
        port = int((data_dir / "port").read_text().strip())
    except (OSError, ValueError):
        return None
    return port if 0 < port < 65536 else None


class ConfigError(Exception):
    """The configuration cannot be used as it is; the message says what to change."""


@dataclass(frozen=True)
class Profile:
    """A resolved profile: everything needed to reach one control plane."""

    name: str
    """The profile's name (``local``, ``hosted`` or one from the config file)."""
    base_url: str
    """The server root (no ``/api/v1/opencomputers``). For an embedded profile: where its server listens
    (or is started; its port is the one asked for)."""
    token: str | None
    """The bearer token. None for an embedded profile: the local server's admin token is used."""
    embedded: bool
    """True when this process starts (or reuses) the local control plane and agent itself."""


@dataclass(frozen=True)
class ProfileSettings:
    """One ``[profiles.NAME]`` table of the config file."""

    base_url: str | None = None
    """The server root of this profile's control plane."""
    token: str | None = None
    """The bearer token for it."""
    bind: str | None = None
    """``[profiles.local]`` only: the address the embedded server listens on (``--bind``)."""
    public_url: str | None = None
    """``[profiles.local]`` only: the URL other machines reach it at (``--public-url``)."""


@dataclass(frozen=True)
class ConfigFile:
    """The contents of ``config.toml`` (all optional)."""

    profile: str | None = None
    """The profile used when neither a flag nor ``OC_TUI_PROFILE`` names one."""
    theme: str | None = None
    """The Textual theme to start with."""
    profiles: dict[str, ProfileSettings] = field(default_factory=dict)
    """Settings per profile name."""


def config_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Where ``config.toml`` lives: ``OC_TUI_CONFIG_DIR``, else the platform's (XDG) config dir."""
    return Path(env.get("OC_TUI_CONFIG_DIR") or platformdirs.user_config_dir(APP_NAME))


def data_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Where local state lives (embedded server, logs): ``OC_TUI_DATA_DIR``, else the platform's data dir."""
    return Path(env.get("OC_TUI_DATA_DIR") or platformdirs.user_data_dir(APP_NAME))


def config_path(env: Mapping[str, str] = os.environ) -> Path:
    """The config file: ``config_dir(env) / "config.toml"`` (it need not exist)."""
    return config_dir(env) / "config.toml"


def load_config(env: Mapping[str, str] = os.environ) -> ConfigFile:
    """Read ``config.toml``; a missing file is an empty config, a broken one a :class:`ConfigError`."""
    path = config_path(env)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ConfigFile()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    profiles_raw = raw.get("profiles", {})
    if not isinstance(profiles_raw, dict):
        raise ConfigError(f"{path}: 'profiles' must be a table of [profiles.NAME] tables")
    profiles = {}
    for name, table in profiles_raw.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [profiles.{name}] must be a table")
        allowed = {"base_url", "token"} | (EMBEDDED_KEYS if name == LOCAL else set())
        unknown = sorted(set(table) - allowed)
        if unknown:
            only = (
                " (bind, public_url: only [profiles.local] runs a server)"
                if EMBEDDED_KEYS & set(unknown)
                else ""
            )
            raise ConfigError(f"{path}: [profiles.{name}] has unknown keys: {', '.join(unknown)}{only}")
        where = f"profiles.{name}"
        public = _optional_str(table, "public_url", path, where)
        if public is not None and not public.startswith(("http://", "https://")):
            raise ConfigError(f"{path}: '{where}.public_url' must start with http:// or https://")
        profiles[name] = ProfileSettings(
            base_url=_optional_str(table, "base_url", path, where),
            token=_optional_str(table, "token", path, where),
            bind=_optional_str(table, "bind", path, where),
            public_url=public.rstrip("/") if public else None,
        )
    return ConfigFile(
        profile=_optional_str(raw, "profile", path, None),
        theme=_optional_str(raw, "theme", path, None),
        profiles=profiles,
    )


def _optional_str(table: Mapping[str, object], key: str, path: Path, where: str | None) -> str | None:
    value = table.get(key)
    if value is None or isinstance(value, str):
        return value or None
    name = f"{where}.{key}" if where else key
    raise ConfigError(f"{path}: '{name}' must be a string, not {type(value).__name__}")


def resolve_profile(
    profile: str | None = None,
    base_url: str | None = None,
    token: str | None = None,
    env: Mapping[str, str] = os.environ,
    config: ConfigFile | None = None,
) -> Profile:
    """The profile to use, from CLI values (the arguments), then ``env``, then the config file.

    ``config`` defaults to :func:`load_config` of ``env``. Raises :class:`ConfigError` for an unknown
    profile name, a bad base URL, or a non-embedded profile without a token.
    """
    config = load_config(env) if config is None else config
    name = profile or env.get("OC_TUI_PROFILE") or config.profile or LOCAL
    known = sorted({LOCAL, HOSTED, *config.profiles})
    if name not in known:
        raise ConfigError(
            f"unknown profile {name!r}; known profiles: {', '.join(known)} "
            f"(add [profiles.{name}] to {config_path(env)} to define it)"
        )
    settings = config.profiles.get(name, ProfileSettings())
    explicit_url = base_url or env.get("OC_TUI_BASE_URL")
    # A base URL given on the command line or in the environment means "talk to that server": the
    # local profile then starts nothing of its own, and needs a token like any other.
    embedded = name == LOCAL and not explicit_url
    default_url = {LOCAL: LOCAL_BASE_URL, HOSTED: HOSTED_BASE_URL}.get(name)
    url = explicit_url or settings.base_url or default_url
    if url is None:
        raise ConfigError(
            f"profile {name!r} has no base_url: set it in [profiles.{name}] of {config_path(env)}"
        )
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"base URL {url!r} of profile {name!r} must start with http:// or https://")
    hosted_key = env.get("MIOSA_API_KEY") if name == HOSTED else None
    tok = token or env.get("OC_TUI_TOKEN") or hosted_key or settings.token
    if not tok and not embedded:
        hint = "set MIOSA_API_KEY, " if name == HOSTED else ""
        raise ConfigError(
            f"profile {name!r} needs an API token: {hint}pass --token, set OC_TUI_TOKEN, "
            f'or add token = "..." to [profiles.{name}] in {config_path(env)}'
        )
    return Profile(name=name, base_url=url, token=tok or None, embedded=embedded)
