"""Themes as data: every ``*.toml`` file in this package becomes a Textual ``Theme``.

Keeping colours in data files (as posting does) means a new theme is a new file, not code, and the
Python side never names a colour.
"""

from __future__ import annotations

import tomllib
from importlib import resources

from textual.theme import Theme

DEFAULT_THEME = "oc-dark"


def load_themes() -> dict[str, Theme]:
    """Read the bundled theme files, keyed by theme name."""
    themes: dict[str, Theme] = {}
    for entry in sorted(resources.files(__package__).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            theme = Theme(**data)
            themes[theme.name] = theme
    return themes
