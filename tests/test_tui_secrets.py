"""Secrets in the TUI, driven with Pilot against the REAL embedded server and a REAL agent, as a new user
would: create GITHUB_TOKEN in ``:secrets`` (the value typed into a masked field), run
``--secret GITHUB_TOKEN printf %s $GITHUB_TOKEN | wc -c`` in the Jobs tab (the length is right), then
``echo $GITHUB_TOKEN`` (``***``); the Secrets tab shows a host secret shadowing the tenant's, edits and
deletes. The value is searched for on every screen drawn."""

from __future__ import annotations

from conftest import SIZE, make_app, online_host, rows, wait_until
from textual.widgets import Input

from oc_tui.jobs_model import split_secrets
from oc_tui.screens.confirm import ConfirmScreen
from oc_tui.screens.host import HostScreen
from oc_tui.screens.jobs_tab import JobsTab
from oc_tui.screens.resource import ResourceScreen
from oc_tui.screens.secrets import SHADOWED, SecretForm
from oc_tui.screens.secrets_tab import SecretsTab

VALUE = "ghp_TuiTypedValue0042xyz"


def test_split_secrets() -> None:
    assert split_secrets("--secret GITHUB_TOKEN echo $GITHUB_TOKEN | wc -c") == (
        ["GITHUB_TOKEN"],
        "echo $GITHUB_TOKEN | wc -c",
    )
    assert split_secrets("--secret=A,B --secret A  ls --secret C") == (["A", "B"], "ls --secret C")
    assert split_secrets("--secret A") == (["A"], "")
    assert split_secrets("echo --secret A") == ([], "echo --secret A")


async def test_secrets_as_a_new_user(server, start_agent) -> None:
    await online_host(server, start_agent, "secret-tui")
    app = make_app(server)
    screens: list[str] = []

    def seen() -> None:
        screens.append(app.export_screenshot())

    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: rows(app).get("secret-tui") == "online", "the host online")
        # :secrets → n → name, masked value, description → created
        await pilot.press("colon", *"secrets", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ResourceScreen), ":secrets")
        view = app.screen
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, SecretForm), "the form")
        await pilot.press(*"GITHUB_TOKEN", "tab", *VALUE, "tab", *"CI token")
        assert app.screen.query_one("#value", Input).password
        seen()
        await pilot.press("enter")
        await wait_until(pilot, lambda: [s.name for s in view.table.items] == ["GITHUB_TOKEN"], "the secret")
        seen()
        # the host's Jobs tab: the length is right, the value is ***
        await pilot.press("escape")
        app.fleet.table.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, HostScreen), "the host screen")
        jobs = app.screen.query_one(JobsTab)
        await pilot.press("j")
        for line, expected in (
            ("--secret GITHUB_TOKEN printf %s $GITHUB_TOKEN | wc -c", str(len(VALUE))),
            ("--secret GITHUB_TOKEN echo $GITHUB_TOKEN", "***"),
        ):
            jobs.command_line.focus()
            jobs.command_line.value = line
            await pilot.press("enter")
            await wait_until(
                pilot,
                lambda expected=expected: any(ln.strip() == expected for ln in jobs.output.plain_lines()),
                f"output {expected}",
            )
            seen()
        # the Secrets tab: a host secret shadows the tenant's; edit; delete after asking
        await pilot.press("escape")  # back to the fleet, and into the host again on its Secrets tab
        await wait_until(pilot, lambda: not isinstance(app.screen, HostScreen), "back to the fleet")
        app.fleet.table.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, HostScreen), "the host screen again")
        await pilot.press("s")
        tab = app.screen.query_one(SecretsTab)
        await wait_until(pilot, lambda: len(tab.table.items) == 1, "the tenant's secret on the tab")
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, SecretForm), "the host form")
        await pilot.press(*"GITHUB_TOKEN", "tab", *(VALUE + "host"), "enter")
        await wait_until(pilot, lambda: len(tab.table.items) == 2, "the host's secret")
        scopes = {s.host_id is not None: getattr(s, "scope", "") for s in tab.table.items}
        assert scopes[False] == SHADOWED
        seen()
        tab.table.move_cursor(row=0)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, SecretForm), "the edit form")
        await pilot.press("tab", *"rotated monthly", "enter")
        await wait_until(pilot, lambda: tab.table.items[0].description == "rotated monthly", "edited")
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        seen()
        await pilot.press("y")
        await wait_until(pilot, lambda: len(tab.table.items) == 1, "the host's secret deleted")
        seen()
    assert len(screens) == 7
    assert not [shot for shot in screens if VALUE[:12] in shot]
