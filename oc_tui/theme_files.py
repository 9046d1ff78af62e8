"""Themes as data: every ``*.toml`` theme file becomes a Textual ``Theme``.

Keeping colours in data files (as posting does) means a new theme is a new file, not code, and the
Python side never names a colour. The bundled themes live in the repository's top-level ``themes/``
folder, installed as ``oc_tui/themes/``; users drop their own files into the config dir's ``themes/``
(as k9s skins), read at start-up. A user file that does not load is reported, never a crash: the app
starts with the others and says which file failed and why.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from textual.color import ColorParseError
from textual.theme import Theme

from oc_tui import config

DEFAULT_THEME = "oc-dark"
THEMES_FOLDER = "themes"


class ThemeFileError(ValueError):
    """A theme file that cannot be read, is not TOML, or does not describe a theme."""


@dataclass
class LoadedThemes:
    """The themes found, by name (bundled first, then the user's), and why some files were skipped."""

    themes: dict[str, Theme] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """One line per theme file that did not load: ``<path>: <reason>``."""


def bundled_theme_dir() -> Path:
    """The folder of the themes shipped with oc-tui: ``oc_tui/themes/`` when installed, the
    repository's top-level ``themes/`` in a source checkout (an editable install)."""
    package = Path(__file__).resolve().parent
    installed = package / THEMES_FOLDER
    return installed if installed.is_dir() else package.parent / THEMES_FOLDER


def user_theme_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Where the user's own theme files go: ``<config dir>/themes/``."""
    return config.config_dir(env) / THEMES_FOLDER


def load_theme_file(path: Path) -> Theme:
    """One theme file as a ``Theme``.

    Raises :class:`ThemeFileError` when the file cannot be read, is not TOML, lacks ``name`` or
    ``primary``, has a field a theme does not have, or names a colour Textual cannot parse.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ThemeFileError(f"cannot read it: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ThemeFileError(f"not valid TOML: {exc}") from exc
    for key in ("name", "primary"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ThemeFileError(f"{key!r} is missing (a theme needs a name and a primary colour)")
    try:
        theme = Theme(**data)
        theme.to_color_system().generate()  # parses every colour now, not when the theme is picked
    except (TypeError, ValueError, AttributeError, ColorParseError) as exc:
        raise ThemeFileError(f"not a theme: {exc}") from exc
    return theme


def load_themes(user_dir: Path | None = None) -> LoadedThemes:
    """The bundled themes, then (``user_dir``) the user's, keyed by theme name.

    A user theme with the name of a bundled one replaces it. Files that do not load are listed in
    :attr:`LoadedThemes.problems`; a missing ``user_dir`` is no problem. Raises nothing.
    """
    loaded = LoadedThemes()
    for folder in (bundled_theme_dir(), user_dir):
        if folder is None or not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = load_theme_file(path)
            except ThemeFileError as exc:
                loaded.problems.append(f"{path}: {exc}")
            else:
                loaded.themes[theme.name] = theme
    return loaded
