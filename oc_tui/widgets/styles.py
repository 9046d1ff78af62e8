"""Text styles from a widget's component classes, for renderables drawn inside other widgets' cells.

Colours stay in oc_tui.tcss (``HostTable > .host-table--online { color: $text-success; }``); this
turns such a component class into a Rich style for a ``Text`` cell. Only the foreground and text
attributes are kept: a background would paint over the table's cursor and zebra rows. The full (not
partial) style is read first so that translucent colours such as ``$text-muted`` are blended with the
widget's background into a solid colour.
"""

from __future__ import annotations

from rich.style import Style
from textual.widget import Widget


def text_style(widget: Widget, component: str) -> Style:
    """The foreground colour and text attributes of ``component`` (empty if it has none)."""
    if component not in widget.COMPONENT_CLASSES:
        return Style()
    full = widget.get_component_rich_style(component)
    return Style(color=full.color, bold=full.bold, dim=full.dim, italic=full.italic)
