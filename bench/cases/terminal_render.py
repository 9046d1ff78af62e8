"""Terminal throughput: MB/s of ``ls -lR --color=always /usr | head -c N`` rendered by the terminal
widget, against stock pyte parsing the same bytes.

Ours is the real :class:`~oc_tui.widgets.terminal.TerminalView` in a headless Textual app (120x40):
the bytes are fed at once and the clock stops when everything is parsed and the last frame drawn, so
the figure includes parsing, line rendering at up to 60 frames a second and Textual's compositing.
The baseline (in the table's OpenSSH column, which has no terminal equivalent) is stock
``pyte.ByteStream(pyte.Screen(120, 40))`` parsing only, with no rendering at all; it is measured on
the first few MB because it is slow and its rate is flat. ``\\n`` becomes ``\\r\\n``, as a PTY's
``onlcr`` would deliver it.
"""

from __future__ import annotations

import asyncio
import subprocess
import time

from bench.harness import Context, Row, Samples

COLS, ROWS = 120, 40


def size(ctx: Context) -> int:
    return (1 << 20) if ctx.smoke else (4 << 20) if ctx.quick else 20_000_000


def capture(n: int) -> bytes:
    out = subprocess.run(
        f"ls -lR --color=always /usr 2>/dev/null | head -c {n}", shell=True, capture_output=True, check=False
    ).stdout
    if not out:
        raise RuntimeError("ls -lR /usr produced nothing")
    return out.replace(b"\n", b"\r\n")


async def _through_widget(data: bytes) -> float:
    from textual.app import App, ComposeResult

    from oc_tui.widgets.terminal import TerminalView

    class Bench(App[None]):
        def compose(self) -> ComposeResult:
            yield TerminalView(scrollback=5000)

    app = Bench()
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        await pilot.pause()
        view = app.query_one(TerminalView)
        start = time.perf_counter()
        view.feed(data)
        while view.pending_bytes:
            await asyncio.sleep(0.002)
        view.flush()  # the last frame
        await pilot.pause()
        elapsed = time.perf_counter() - start
        if view.size_cells != (COLS, ROWS):
            raise RuntimeError(f"terminal was {view.size_cells}")
    return len(data) / elapsed / 1e6


def _stock_pyte(data: bytes) -> float:
    import pyte

    stream = pyte.ByteStream(pyte.Screen(COLS, ROWS))
    start = time.perf_counter()
    for i in range(0, len(data), 16_384):
        stream.feed(data[i : i + 16_384])
    return len(data) / (time.perf_counter() - start) / 1e6


def run(ctx: Context) -> list[Row]:
    data = capture(size(ctx))
    runs = 1 if ctx.smoke else 2 if ctx.quick else 3
    sample = data[: min(len(data), (256 << 10) if ctx.smoke else (1 << 20) if ctx.quick else (4 << 20))]
    ours = Samples([asyncio.run(_through_widget(data)) for _ in range(runs)], "MB/s")
    stock = Samples([_stock_pyte(sample) for _ in range(runs)], "MB/s")
    return [
        Row("terminal render MB/s (ours vs stock pyte)", ours, stock, lower_is_better=False,
            target="≥ 10× stock pyte", met=ours.median >= 10 * stock.median,
            note=f"{len(data) / 1e6:.1f} MB of `ls -lR --color=always /usr` through TerminalView "
                 f"({COLS}x{ROWS}, parse + render + compose); the OpenSSH column is stock pyte "
                 f"ByteStream, parse only, on the first {len(sample) / 1e6:.1f} MB"),
    ]  # fmt: skip
