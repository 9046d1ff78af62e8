"""Copying text for the operator, said honestly.

The app can only *send* text to the terminal's clipboard (an OSC 52 escape sequence); whether it arrives
depends on the terminal (tmux passes it on only with ``set-clipboard on``; some terminals ignore it), and
the app cannot know. So the notification says what was done and shows the text itself, long enough to
select it with the mouse.
"""

from __future__ import annotations

from textual.widget import Widget

from oc_tui.widgets.formatting import host_markup

SHOWN_SECONDS = 20.0
"""How long the notification with the text stays (time to select it)."""


def copy_text(node: Widget, text: str, what: str) -> None:
    """Send ``text`` to the terminal's clipboard and say so, showing the text (escaped: it may be a
    host's). ``what`` names it for the title ("oc-agent command", "URL")."""
    node.app.copy_to_clipboard(text)
    node.notify(
        f"{host_markup(text)}\n[dim]sent to the terminal's clipboard (OSC 52): pasted where the terminal "
        "takes it (tmux: set-clipboard on); otherwise select the text above[/dim]",
        title=f"{what} sent to the clipboard",
        timeout=SHOWN_SECONDS,
    )
