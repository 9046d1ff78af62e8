"""The Desktop tab against a real Xvnc, the real server and a real agent; and the half-block renderer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import vnc_support
from conftest import SIZE, make_app, notifications, rows, wait_until
from textual.app import App, ComposeResult
from textual.widgets import Input, TabbedContent

from oc_tui.screens.desktop_tab import DesktopTab
from oc_tui.screens.host import HostScreen
from oc_tui.screens.save_picture import SavePictureDialog
from oc_tui.widgets.desktop_view import DesktopView, HalfBlocks, remote_key

RED, BLUE = (255, 0, 0), (0, 0, 255)
xvnc = vnc_support.xvnc  # the fixture


def quadrants_xbm(path: Path, width: int = 640, height: int = 480) -> Path:
    """An X bitmap whose set bits are the top-left and bottom-right quadrants."""
    data = bytearray()
    for y in range(height):
        for byte in range(width // 8):
            x = byte * 8
            data.append(0xFF if (x < width // 2) == (y < height // 2) else 0x00)
    hexes = ",\n".join(",".join(f"0x{b:02x}" for b in data[i : i + 16]) for i in range(0, len(data), 16))
    path.write_text(
        f"#define q_width {width}\n#define q_height {height}\nstatic unsigned char q_bits[] = {{\n{hexes}}};\n"
    )
    return path


async def open_desktop_tab(pilot, app, name: str) -> DesktopTab:
    await wait_until(pilot, lambda: rows(app).get(name) == "online", f"{name} online", timeout=15)
    app.fleet.table.focus()
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, HostScreen), "the host screen")
    await pilot.press("d")
    tab = app.screen.query_one(DesktopTab)
    assert app.screen.query_one(TabbedContent).active == "desktop"
    return tab


def colours(view: DesktopView, x: int, y: int) -> tuple:
    return view.cell_colours(x, y)


@vnc_support.needs_xvnc
async def test_desktop_tab_shows_the_screen_and_forwards_input(
    server, start_agent, xvnc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "Pictures").mkdir()
    display = xvnc()
    display.run(
        "xsetroot", "-bitmap", str(quadrants_xbm(tmp_path / "q.xbm")), "-fg", "#ff0000", "-bg", "#0000ff"
    )
    host = server.register("desk-tui")
    start_agent(host["host_key"], OC_VNC_ADDR=display.address)
    await server.wait_for_status(host["id"], "online", timeout=15)
    app = make_app(server)
    async with app.run_test(size=SIZE) as pilot:
        tab = await open_desktop_tab(pilot, app, "desk-tui")
        view = tab.view
        await wait_until(pilot, lambda: tab.session is not None and view.has_focus, "connected, view focused")

        def quadrants_drawn() -> bool:
            layout = view.layout_
            if not layout.scale:
                return False
            top, bottom = layout.top + 1, layout.top + layout.image_rows - 2
            left, right = layout.left + 1, layout.left + layout.image_w - 2
            return (
                colours(view, left, top) == (RED, RED)
                and colours(view, right, top) == (BLUE, BLUE)
                and colours(view, left, bottom) == (BLUE, BLUE)
                and colours(view, right, bottom) == (RED, RED)
            )

        await wait_until(pilot, quadrants_drawn, "the four quadrants in the cells")
        layout = view.layout_
        assert layout.image_w / (2 * layout.image_rows) == pytest.approx(640 / 480, rel=0.05)  # aspect kept

        def readout_text() -> str:
            return str(tab.query_one("#desktop-readout").render())

        readout = readout_text()
        assert "640×480" in readout and "fps" in readout

        recorder = display.events(tmp_path / "xev.txt")
        try:
            await pilot.press("a", "escape")  # escape goes to the remote too: the view keeps every key
            cx, cy = layout.left + layout.image_w // 4, layout.top + layout.image_rows // 4
            expected = layout.to_remote(cx, cy)
            await pilot.click(DesktopView, offset=(cx, cy))
            await pilot.pause(0.1)
            await tab.session.drain()

            async def saw(*needles: str) -> bool:
                text = (tmp_path / "xev.txt").read_text(errors="replace")
                return all(n in text for n in needles)

            for _ in range(100):
                if await saw("keysym 0x61, a", "Escape", "ButtonPress", f"({expected[0]},{expected[1]})"):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError((tmp_path / "xev.txt").read_text())
        finally:
            recorder.terminate()
            recorder.wait()
        assert isinstance(app.screen, HostScreen)  # escape went to the remote, not "back"

        display.solid("#00ff00")
        await wait_until(
            pilot, lambda: colours(view, layout.left + 1, layout.top + 1) == ((0, 255, 0),) * 2, "green"
        )

        await pilot.press("ctrl+right_square_bracket")
        await wait_until(pilot, lambda: tab.has_focus, "focus back on the tab")
        await pilot.press("s")  # asks where, proposing ~/Pictures; a directory keeps the proposed name
        await wait_until(pilot, lambda: isinstance(app.screen, SavePictureDialog), "the save dialog")
        assert app.screen.query_one("#path", Input).value.startswith(str(tmp_path / "Pictures"))
        app.screen.query_one("#path", Input).value = str(tmp_path / "shots")
        (tmp_path / "shots").mkdir()
        await pilot.press("enter")
        await wait_until(pilot, lambda: any("screenshot" in m for _, m in notifications(app)), "saved note")
        saved = list((tmp_path / "shots").glob("*-desktop-*.png"))
        assert len(saved) == 1
        from PIL import Image

        with Image.open(saved[0]) as image:
            assert image.size == (640, 480) and image.getpixel((5, 5)) == (0, 255, 0)

        # the remote screen changes size (xrandr): the same session goes on, the view follows
        session = tab.session
        display.run("xrandr", "-s", "1024x768")
        await wait_until(
            pilot,
            lambda: (
                view.frame is not None and view.frame.shape == (768, 1024, 3) and "1024×768" in readout_text()
            ),
            "the view and readout at the new size",
        )
        assert tab.session is session and tab._state == "live"
        layout = view.layout_
        assert layout.image_w / (2 * layout.image_rows) == pytest.approx(1024 / 768, rel=0.05)
        display.solid("#ff00ff")
        await wait_until(
            pilot, lambda: colours(view, layout.left + 1, layout.top + 1) == ((255, 0, 255),) * 2, "magenta"
        )

        await pilot.press("r")  # reconnect: a new session, the picture again
        await wait_until(pilot, lambda: tab.session is not None and tab._state == "live", "reconnected")
        await pilot.press("escape")


async def test_no_vnc_server_says_how_to_enable_one(server, start_agent) -> None:
    port = vnc_support.free_port()
    host = server.register("desk-none")
    start_agent(host["host_key"], OC_VNC_ADDR=f"127.0.0.1:{port}")
    await server.wait_for_status(host["id"], "online", timeout=15)
    app = make_app(server)
    async with app.run_test(size=(80, 24)) as pilot:
        tab = await open_desktop_tab(pilot, app, "desk-none")
        message = tab.query_one("#desktop-message")
        await wait_until(pilot, lambda: "no VNC server" in str(message.render()), "the explanation")
        text = str(message.render())
        assert f"127.0.0.1:{port} (connection refused)" in text
        assert "x11vnc" in text and "--vnc HOST:PORT" in text
        assert not tab.view.display and tab.has_focus
        await pilot.press("r")
        await wait_until(pilot, lambda: tab._state == "ended", "refused again")


class ViewApp(App[None]):
    def compose(self) -> ComposeResult:
        yield DesktopView()


async def test_an_update_redraws_only_the_rows_it_touches() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    app = ViewApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(DesktopView)
        await view.redraw(frame)
        await pilot.pause()
        refreshed: list[int] = []
        original = view.refresh_rows
        view.refresh_rows = lambda rows: refreshed.extend(rows) or original(rows)  # type: ignore[method-assign]
        frame[200:210, 100:300] = (255, 255, 0)
        await view.redraw(frame, (100, 200, 200, 10))
        layout = view.layout_
        assert refreshed and len(refreshed) <= 3, refreshed
        row = layout.top + int(205 * layout.image_h / 480) // 2
        assert row in refreshed
        assert (255, 255, 0) in colours(view, layout.left + int(200 * layout.image_w / 640), row)


def test_band_rendering_matches_a_whole_frame() -> None:
    """A band resized on its own gives the very cells a whole-frame resize gives."""
    from rich.style import Style

    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (300, 500, 3), dtype=np.uint8)
    for cols, rows_ in ((80, 22), (200, 60), (33, 9)):
        layout = HalfBlocks(500, 300, cols, rows_)
        pad = Style(bgcolor="black")
        whole = layout.render(frame, layout.all_rows(), pad, {})
        band = layout.rows_for(0, 120, 500, 37)
        part = layout.render(frame, band, pad, {})
        for r in band:
            assert list(part[r]) == list(whole[r]), (cols, rows_, r)


def test_layout_keeps_the_aspect_and_maps_cells_to_pixels() -> None:
    layout = HalfBlocks(640, 480, 80, 24)  # 24 rows = 48 pixels high: height bound
    assert layout.image_h == 48 and layout.image_w == 64 and layout.left == 8 and layout.top == 0
    assert layout.to_remote(8, 0) == (5, 10)
    assert layout.to_remote(7, 0) is None and layout.to_remote(72, 0) is None
    assert layout.to_remote(71, 23) == (635, 470)
    assert layout.rows_for(0, 0, 640, 10) == range(0, 1)


def test_keys_map_to_keysyms() -> None:
    assert remote_key("a", "a") == ("a", ())
    assert remote_key("A", "A") == ("A", ())
    assert remote_key("ctrl+c", "\x03") == ("c", ("Control_L",))
    assert remote_key("shift+tab", None) == ("Tab", ("Shift_L",))
    assert remote_key("enter", "\r") == ("Return", ())
    assert remote_key("f5", None) == ("F5", ())
    assert remote_key("pageup", None) == ("Prior", ())
    assert remote_key("ctrl+left_square_bracket", None) == ("[", ("Control_L",))
