"""A terminal emulator widget on pyte: PTY bytes in, the user's key bytes out (see :class:`TerminalView`)."""

from oc_tui.widgets.terminal.view import TerminalView

__all__ = ["TerminalView"]
