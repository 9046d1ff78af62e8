"""``oc-tui``: resolve the profile, then run the App.

Configuration problems are one line on stderr and exit status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path

from oc_tui import config
from oc_tui.theme_files import DEFAULT_THEME, load_themes, user_theme_dir


def build_parser() -> argparse.ArgumentParser:
    """The ``oc-tui`` command line: ``--profile``, ``--base-url``, ``--token``, ``--theme``, ``--data-dir``."""
    parser = argparse.ArgumentParser(
        prog="oc-tui",
        description="A keyboard-driven terminal UI for your own fleet of machines (OpenComputers API).",
    )
    parser.add_argument("--profile", help="profile to use: local (default), hosted, or one from config.toml")
    parser.add_argument("--base-url", help="control plane root URL (overrides the profile's)")
    parser.add_argument("--token", help="API token (overrides the profile's; prefer OC_TUI_TOKEN)")
    parser.add_argument("--theme", help=f"colour theme (default {DEFAULT_THEME})")
    parser.add_argument("--data-dir", type=Path, help="state of the local control plane (local profile)")
    parser.add_argument(
        "--bind",
        help="address the local control plane listens on (default: bind in [profiles.local] of "
        "config.toml, else 127.0.0.1; 0.0.0.0 lets other machines in)",
    )
    parser.add_argument(
        "--public-url",
        help="URL other machines reach the local control plane at, e.g. http://this-host:8787 "
        "(the --server of the agent command oc-tui hands out; default: public_url in [profiles.local])",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="look, never touch: every key that would change a host or the control plane is disabled",
    )
    parser.add_argument("--version", action=_VersionAction)
    return parser


class _VersionAction(argparse.Action):
    """``--version``: print it and exit; the package metadata is read only then (not at every start)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kwargs: object) -> None:
        print(f"oc-tui {_version()}")  # on stdout, as argparse's own version action does
        parser.exit()


ESCAPE_DELAY = 0.025
"""Seconds Textual waits after ESC to tell the escape key from the start of a sequence, unless the user
sets ``ESCDELAY`` (ms). Textual's 100 ms merges a quick ``esc`` ``:`` in vim into a bare ``:`` (it reads
ESC + punctuation as that key, the ESC lost); terminals send a whole sequence in one write, so 25 ms is
plenty even over SSH."""


def main(argv: list[str] | None = None) -> int:
    """Run ``oc-tui`` with ``argv`` (default: ``sys.argv[1:]``) until the user quits.

    Returns the exit status: 0, or 2 after a one-line message on stderr when the configuration, the
    profile or the theme cannot be used. ``--help``/``--version`` and bad arguments exit through
    ``SystemExit`` (argparse).
    """
    args = build_parser().parse_args(argv)
    if "ESCDELAY" not in os.environ:
        from textual import constants

        # Textual declares it Final, but its input parser reads ``constants.ESCAPE_DELAY`` on every ESC,
        # so setting it here works; setting ``ESCDELAY`` in the environment instead would leak into the
        # local agent and so into every shell and job it runs (vim, less and curses read it too).
        constants.ESCAPE_DELAY = ESCAPE_DELAY  # type: ignore[misc]
    try:
        settings = config.load_config()
        profile = config.resolve_profile(args.profile, args.base_url, args.token, config=settings)
    except config.ConfigError as exc:
        return _fail(str(exc))
    from textual.theme import BUILTIN_THEMES

    loaded = load_themes(user_theme_dir())
    themes = [*loaded.themes, *BUILTIN_THEMES]
    theme = args.theme or settings.theme or DEFAULT_THEME
    if theme not in themes:
        where = "--theme" if args.theme else config.config_path()
        problems = "".join(f"; skipped {problem}" for problem in loaded.problems)
        return _fail(f"unknown theme {theme!r} ({where}); available: {', '.join(themes)}{problems}")

    # Importing the app allocates tens of thousands of objects that live as long as it does: garbage
    # collections meanwhile find nothing to free (about a tenth of the imports' CPU, measured), and
    # frozen afterwards, later collections skip them.
    gc.disable()
    try:
        from oc_tui.app import OcTuiApp

        local = settings.profiles.get(config.LOCAL, config.ProfileSettings())
        app = OcTuiApp(
            profile,
            theme=theme,
            themes=loaded,
            data_dir=args.data_dir,
            bind=args.bind or local.bind or config.LOCAL_BIND,
            public_url=args.public_url or local.public_url,
            read_only=args.read_only,
            host_cache=True,
        )
        gc.freeze()
    finally:
        gc.enable()
    app.run()
    return 0


def _fail(message: str) -> int:
    print(f"oc-tui: {message}", file=sys.stderr)
    return 2


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("oc-tui")
    except metadata.PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
