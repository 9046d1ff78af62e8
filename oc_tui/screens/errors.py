"""How a failed request reads in the UI (notifications, inline dialog errors)."""

from __future__ import annotations

from oc_tui.api import errors


def describe_error(error: BaseException) -> str:
    """The server's own message for an API error (e.g. a 400's reason), else the exception text."""
    if isinstance(error, errors.ApiError):
        return error.message
    return str(error) or type(error).__name__
