"""Labels as the operator types them: ``env=prod, team=web``.

The dialogs parse with :func:`parse_labels` so that a typo is caught before a request is sent; the
server still validates keys and values and its 400 message is shown as is.
"""

from __future__ import annotations

from oc_tui.widgets.formatting import host_text


def format_labels(labels: dict[str, str]) -> str:
    """``env=prod, team=web`` (sorted by key, so the same labels always read the same); for display,
    so control characters are escaped (:func:`~oc_tui.widgets.formatting.host_text`)."""
    return host_text(", ".join(f"{key}={value}" for key, value in sorted(labels.items())))


def parse_labels(text: str) -> dict[str, str]:
    """Parse ``k=v, k2=v2`` (commas or newlines between pairs). Raises ``ValueError`` with a reason."""
    labels: dict[str, str] = {}
    for raw in text.replace("\n", ",").split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ValueError(f"{item!r} is not key=value")
        if key in labels:
            raise ValueError(f"label {key!r} is given twice")
        labels[key] = value
    return labels
