"""Editing keys keep their order with the characters typed around them (Textual issue #6605): keys that
arrive in one burst — a paste of keys, an SSH link delivering a packet of keystrokes — edit the field as
they would one by one."""

from __future__ import annotations

import pytest
from textual import events
from textual.app import App, ComposeResult
from textual.widgets import Input as TextualInput

from oc_tui.widgets.text_entry import Input, TextArea

BURSTS = [
    (["b", "a", "backspace", "c"], "vmbc"),
    (["ctrl+u", "w", "e", "b"], "web"),
    (["home", "x", "end", "y"], "xvmy"),
]


def key(name: str) -> events.Key:
    return events.Key(name, name if len(name) == 1 else None)


class Fields(App[None]):
    def __init__(self, field_class: type[TextualInput]) -> None:
        super().__init__()
        self.field_class = field_class

    def compose(self) -> ComposeResult:
        yield self.field_class(value="vm")
        yield TextArea("vm", id="area")


async def burst_into(field_class: type[TextualInput], keys: list[str]) -> str:
    """The field's value after ``vm`` and a burst of ``keys`` typed at its end."""
    app = Fields(field_class)
    async with app.run_test() as pilot:
        field = app.query_one(field_class)
        field.focus()
        field.cursor_position = len(field.value)
        await pilot.pause()
        for name in keys:
            app.post_message(key(name))  # all queued before the first is handled, as from one read
        await pilot.pause(0.2)
        return field.value


@pytest.mark.parametrize(("keys", "value"), BURSTS)
async def test_a_burst_of_keys_edits_the_field_in_order(keys: list[str], value: str) -> None:
    assert await burst_into(Input, keys) == value


async def test_textual_own_input_reorders_the_same_burst() -> None:
    """The upstream behaviour this module corrects; when this fails, Textual has fixed it and
    oc_tui.widgets.text_entry can go."""
    assert await burst_into(TextualInput, ["ctrl+u", "w", "e", "b"]) != "web"


async def test_a_burst_in_a_text_area() -> None:
    app = Fields(Input)
    async with app.run_test() as pilot:
        area = app.query_one(TextArea)
        area.focus()
        area.move_cursor((0, 2))
        await pilot.pause()
        for name in ["a", "b", "backspace", "c", "left", "left", "x"]:
            app.post_message(key(name))
        await pilot.pause(0.2)
        assert area.text == "vmxac"
