"""Themes as data: the bundled theme files, the user's own in the config dir's ``themes/``, and a
broken user file reported (by the app and by ``oc-tui``) instead of a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from oc_tui import cli
from oc_tui.app import OcTuiApp
from oc_tui.config import Profile
from oc_tui.theme_files import DEFAULT_THEME, bundled_theme_dir, load_themes, user_theme_dir

SKIN = """\
name = "my-skin"
dark = true
primary = "#ff00ff"
background = "#101010"
"""


@pytest.fixture(autouse=True)
def empty_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OC_TUI_CONFIG_DIR", str(tmp_path))
    for name in ("OC_TUI_PROFILE", "OC_TUI_BASE_URL", "OC_TUI_TOKEN", "MIOSA_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_bundled_themes_come_from_the_themes_folder() -> None:
    assert {path.name for path in bundled_theme_dir().glob("*.toml")} >= {"dark.toml", "light.toml"}
    loaded = load_themes()
    assert {"oc-dark", "oc-light"} <= set(loaded.themes) and DEFAULT_THEME in loaded.themes
    assert loaded.problems == []


def test_user_themes_load_and_broken_ones_are_reported(tmp_path: Path) -> None:
    folder = user_theme_dir()
    assert folder == tmp_path / "themes"
    folder.mkdir()
    (folder / "skin.toml").write_text(SKIN)
    (folder / "broken.toml").write_text("name = [unclosed")
    (folder / "nameless.toml").write_text('primary = "#123456"')
    (folder / "badcolour.toml").write_text('name = "bad"\nprimary = "not-a-colour"')
    (folder / "unknown.toml").write_text('name = "odd"\nprimary = "#123456"\nsparkle = true')
    (folder / "notes.txt").write_text("not a theme file")

    loaded = load_themes(folder)

    assert loaded.themes["my-skin"].primary == "#ff00ff"
    assert "oc-dark" in loaded.themes and not {"bad", "odd"} & set(loaded.themes)
    problems = sorted(loaded.problems)
    assert len(problems) == 4
    assert problems[0].startswith(f"{folder / 'badcolour.toml'}: not a theme")
    assert problems[1].startswith(f"{folder / 'broken.toml'}: not valid TOML")
    assert problems[2].startswith(f"{folder / 'nameless.toml'}: 'name' is missing")
    assert problems[3].startswith(f"{folder / 'unknown.toml'}: not a theme")


def test_missing_user_folder_is_no_problem(tmp_path: Path) -> None:
    assert load_themes(tmp_path / "nowhere").problems == []


async def test_app_uses_a_user_theme_and_names_a_broken_file(tmp_path: Path) -> None:
    folder = user_theme_dir()
    folder.mkdir()
    (folder / "skin.toml").write_text(SKIN)
    (folder / "broken.toml").write_text("name = [unclosed")
    profile = Profile(name="test", base_url="http://127.0.0.1:9", token="t", embedded=False)
    app = OcTuiApp(profile, theme="my-skin", themes=load_themes(folder), live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.theme == "my-skin"
        notes = [n for n in app._notifications if n.title == "Theme file skipped"]
        assert len(notes) == 1 and "broken.toml" in notes[0].message


def test_cli_offers_user_themes_and_names_broken_files(capsys: pytest.CaptureFixture[str]) -> None:
    folder = user_theme_dir()
    folder.mkdir()
    (folder / "skin.toml").write_text(SKIN)
    (folder / "broken.toml").write_text("name = [unclosed")
    assert cli.main(["--theme", "neon"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "my-skin" in err and "broken.toml" in err
