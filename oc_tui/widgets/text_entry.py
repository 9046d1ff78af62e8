"""Text fields whose editing keys keep their order with the characters typed around them.

Textual's ``Input`` and ``TextArea`` insert a printable character as its key arrives, but their bound
keys (backspace, ctrl+u, arrows, enter …) bubble up to the app first and run from there, a few message
hops later. Keys that arrive together — a fast typist, a paste of keys by tmux, or an SSH link that
delivers a burst in one packet — then apply out of order: ``ctrl+u`` then ``web-02`` leaves an empty
field, ``b a backspace c`` gives ``ba``. Textual issue #6605 (open; the fix proposed upstream, PR #6631,
does what this module does). Every text field of oc-tui is one of these classes.
"""

from __future__ import annotations

from textual import events
from textual import widgets as textual_widgets
from textual.dom import DOMNode


async def run_own_binding(widget: DOMNode, event: events.Key) -> None:
    """Run ``widget``'s own (non-priority) binding of ``event.key`` now, in the widget's queue, in order
    with the characters typed before and after it; the key then goes no further. A key the widget does
    not bind (or whose action it refuses) is left to Textual's usual handling.

    Args:
        widget: the focused text field the key arrived at.
        event: the key.
    """
    if event.is_printable:
        return
    for binding in widget._bindings.key_to_bindings.get(event.key, ()):
        if binding.priority:
            continue  # priority bindings ran before the key reached the widget
        if await widget.app.run_action(binding.action, widget):
            event.stop()
            event.prevent_default()
            return


class Input(textual_widgets.Input):
    """Textual's ``Input``, its editing keys in order with typed characters (see the module)."""

    async def _on_key(self, event: events.Key) -> None:
        await run_own_binding(self, event)


class TextArea(textual_widgets.TextArea):
    """Textual's ``TextArea``, its editing keys in order with typed characters (see the module)."""

    async def _on_key(self, event: events.Key) -> None:
        await run_own_binding(self, event)
