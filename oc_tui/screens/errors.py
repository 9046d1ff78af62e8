"""How a failed request reads in the UI (notifications, inline dialog errors)."""

from __future__ import annotations

from oc_tui.api import errors
from oc_tui.widgets.formatting import host_text


def describe_error(error: BaseException) -> str:
    """The server's own message for an API error (e.g. a 400's reason), else the exception text; with
    control characters escaped (:func:`~oc_tui.widgets.formatting.host_text`: the message may be an
    agent's, holding a host's text). Plain text: through ``host_markup`` into markup."""
    if isinstance(error, errors.ApiError):
        return host_text(error.message)
    return host_text(str(error) or type(error).__name__)
