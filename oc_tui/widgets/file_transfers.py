"""The transfer strip of the Files tab: the running download or upload with a progress bar, its bytes,
rate and time left, and how many more wait in the queue. Hidden while nothing is moving."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, ProgressBar

from oc_tui.files_model import Transfer
from oc_tui.widgets.formatting import format_bytes, host_markup

ARROWS = {"download": "↓", "upload": "↑"}


def format_eta(seconds: float | None) -> str:
    """``0:08``, ``12:30``, ``1:02:03``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    total = int(seconds + 0.5)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_text(transfer: Transfer, queued: int) -> str:
    """``↓ big.iso  120.0 MiB / 500.0 MiB · 45.2 MiB/s · 0:08 left · 2 queued``."""
    meter = transfer.meter
    done = format_bytes(meter.done)
    amount = f"{done} / {format_bytes(meter.total)}" if meter.total is not None else done
    parts = [f"{ARROWS[transfer.kind]} {host_markup(transfer.name)}  {amount}"]
    rate = meter.rate
    if rate is not None:
        parts.append(f"{format_bytes(int(rate))}/s")
        if meter.total is not None:
            parts.append(f"{format_eta(meter.eta)} left")
    if queued:
        parts.append(f"{queued} queued")
    return " · ".join(parts)


class TransferPanel(Vertical):
    """Shows one transfer (or hides itself); :meth:`show` is called on every progress update."""

    def compose(self) -> ComposeResult:
        yield Label("", id="transfer-label")
        yield ProgressBar(show_eta=False, id="transfer-bar")

    def show(self, transfer: Transfer | None, queued: int = 0) -> None:
        self.set_class(transfer is not None, "-active")
        if transfer is None:
            return
        self.query_one("#transfer-label", Label).update(progress_text(transfer, queued))
        bar = self.query_one(ProgressBar)
        meter = transfer.meter
        bar.update(total=meter.total if meter.total else None, progress=meter.done)
        if meter.total == 0:
            bar.update(total=1, progress=1)
