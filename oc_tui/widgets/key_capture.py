"""The base of the views that capture the keyboard for a remote side (terminal, desktop).

Every key goes to the remote program except one, **ctrl+]** (:data:`ESCAPE_KEY`, the telnet/ssh
tradition), which sends nothing and posts the view's ``Escaped`` message so the parent can move the
focus out and the app's own keys work again. Textual checks the app's priority bindings (``ctrl+q``
quit, the ``ctrl+p`` command palette) before any widget sees the key; :func:`steps_aside` is the app's
one rule for declining them while such a view has the focus (shells recall history with ctrl+p).
"""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget

ESCAPE_KEY = "ctrl+right_square_bracket"
"""The one key a capturing view keeps for itself."""
STEPPING_ASIDE = frozenset({"command_palette", "quit", "focus_next", "focus_previous"})
"""The app's priority actions that give way while a capturing view has the focus."""


def steps_aside(focused: Widget | None, action: str) -> bool:
    """Whether the app's priority ``action`` must not run because ``focused`` captures the keyboard."""
    return action in STEPPING_ASIDE and isinstance(focused, KeyCapture)


class KeyCapture(Widget, can_focus=True):
    """A focusable view whose keys go to a remote side: subclasses implement :meth:`remote_key` and
    declare their ``Escaped`` message (a subclass of :class:`KeyCapture.Escaped`)."""

    ESCAPE_KEY: ClassVar[str] = ESCAPE_KEY
    LEAVE: ClassVar[str] = "Leave"
    """The footer's word for the escape key (``Leave terminal``)."""
    BINDINGS: ClassVar[list[BindingType]] = []

    class Escaped(Message):
        """The escape key was pressed: the parent should take the focus back."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        if "BINDINGS" not in cls.__dict__:  # before Textual merges the bindings of the class
            cls.BINDINGS = [Binding(cls.ESCAPE_KEY, "leave", cls.LEAVE, key_display="ctrl+]")]
        super().__init_subclass__(**kwargs)  # type: ignore[arg-type]  # Widget's keywords (can_focus …)

    def escaped(self) -> Message:
        """The message that says the escape key was pressed (subclasses give their own)."""
        return self.Escaped()

    def action_leave(self) -> None:
        self.post_message(self.escaped())

    def on_key(self, event: events.Key) -> None:
        event.stop()
        event.prevent_default()
        if event.key == self.ESCAPE_KEY:
            self.post_message(self.escaped())
            return
        self.remote_key(event)

    def remote_key(self, event: events.Key) -> None:
        """Send ``event`` (any key but the escape key) to the remote side."""
        raise NotImplementedError
