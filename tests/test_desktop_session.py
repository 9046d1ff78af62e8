"""Desktop sessions end to end: a real Xvnc, the real server, a real agent pointed at it (OC_VNC_ADDR),
and the ``oc_tui.api`` client speaking RFB (asyncvnc) over the desktop WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import vnc_support
from conftest import online_host_id as online_host
from vnc_support import Xvnc, free_port, needs_xvnc

from embedded_server.agent.vnc import VncTarget, read_password_file
from oc_tui.api import OpenComputersClient, errors
from oc_tui.api.desktop import DesktopSession, refusal_kind

pytestmark = needs_xvnc
xvnc = vnc_support.xvnc  # the fixture


async def wait_for_colour(session, rgb: tuple[int, int, int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not (session.framebuffer == np.array(rgb, np.uint8)).all():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            corner = session.framebuffer[0, 0].tolist()
            raise AssertionError(f"screen never became {rgb}; top-left is {corner}")
        await session.next_update(timeout=remaining)


async def wait_for_text(path: Path, *needles: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text(errors="replace")
        if all(n in text for n in needles):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{needles} not seen by the X server; xev said:\n{text}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def desktop_on(server, start_agent, display: Xvnc) -> AsyncIterator[DesktopSession]:
    """A desktop session on a host whose agent shows ``display``; closed on the way out."""
    host_id = await online_host(server, start_agent, OC_VNC_ADDR=display.address)
    async with OpenComputersClient(server.base_url, server.token) as client:
        session = await client.open_desktop(host_id)
        try:
            yield session
        finally:
            await session.close()


async def test_desktop_shows_the_screen_and_takes_input(server, start_agent, xvnc, tmp_path: Path) -> None:
    display: Xvnc = xvnc()
    display.solid("#ff0000")
    async with desktop_on(server, start_agent, display) as session:
        assert (session.width, session.height) == (640, 480)
        await wait_for_colour(session, (255, 0, 0))
        display.solid("#0040ff")
        await wait_for_colour(session, (0, 0x40, 0xFF))
        assert session.stats.frames >= 2 and session.stats.update_ms is not None

        recorder = display.events(tmp_path / "xev.txt")
        try:
            session.mouse_click(123, 45, button=1)
            session.key("a")
            session.key("Return")
            await session.drain()
            seen = await wait_for_text(
                tmp_path / "xev.txt", "ButtonPress", "(123,45)", "keysym 0x61, a", "Return"
            )
            assert "button 1" in seen
        finally:
            recorder.terminate()
            recorder.wait()
        assert display.run("xdotool", "getmouselocation").startswith("x:123 y:45 ")
        session.scroll(200, 100, 2)
        session.mouse_move(300, 200)
        await session.drain()
        for _ in range(50):
            if display.run("xdotool", "getmouselocation").startswith("x:300 y:200 "):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the pointer never moved to 300,200")

        png = session.save_png(tmp_path / "shot.png")
        from PIL import Image

        with Image.open(png) as image:
            assert image.size == (640, 480)
            assert image.getpixel((10, 10)) == (0, 0x40, 0xFF)


async def wait_for_size(session, size: tuple[int, int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (session.width, session.height) != size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"the session stayed {session.width}x{session.height}, not {size}")
        await session.next_update(timeout=remaining)


async def test_the_session_follows_the_remote_screen_size(server, start_agent, xvnc) -> None:
    """xrandr while connected: DesktopSize/ExtendedDesktopSize tell the session, which keeps going."""
    display: Xvnc = xvnc()
    display.solid("#00ff00")
    async with desktop_on(server, start_agent, display) as session:
        await wait_for_colour(session, (0, 255, 0))
        for width, height, colour in ((1024, 768, (255, 0, 255)), (800, 600, (0, 0, 255))):
            display.run("xrandr", "-s", f"{width}x{height}")
            await wait_for_size(session, (width, height))
            assert session.framebuffer.shape == (height, width, 3)
            display.solid("#{:02x}{:02x}{:02x}".format(*colour))
            await wait_for_colour(session, colour)  # every pixel of the new size
            assert session.ended is None
            session.mouse_move(width - 10, height - 10)  # the new corner is reachable
            await session.drain()
            for _ in range(50):
                if display.run("xdotool", "getmouselocation").startswith(f"x:{width - 10} y:{height - 10} "):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"the pointer never reached {width - 10},{height - 10}")
        assert session.stats.resizes == 2


RGBA_FORMAT = b"\x20\x18\x00\x01\x00\xff\x00\xff\x00\xff\x00\x08\x10\x00\x00\x00"


@pytest.mark.parametrize("encoding", [-223, -308], ids=["DesktopSize", "ExtendedDesktopSize"])
async def test_both_size_pseudo_encodings_are_followed(encoding: int) -> None:
    """A minimal RFB server that changes its size with the one pseudo-encoding or the other (Xvnc only
    ever uses ExtendedDesktopSize with a client that offers it)."""
    import struct

    from oc_tui.api.desktop import open_direct

    announced: list[tuple[int, ...]] = []
    requests: list[tuple[int, ...]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"RFB 003.008\n")
        await reader.readexactly(12)
        writer.write(b"\x01\x01")  # one security type: None
        await reader.readexactly(1)
        writer.write(struct.pack(">I", 0))
        await reader.readexactly(1)  # ClientInit
        writer.write(struct.pack(">HH", 64, 48) + RGBA_FORMAT + struct.pack(">I", 4) + b"fake")
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                kind = (await reader.readexactly(1))[0]
                if kind == 2:  # SetEncodings
                    _pad, count = struct.unpack(">BH", await reader.readexactly(3))
                    announced.append(struct.unpack(f">{count}i", await reader.readexactly(4 * count)))
                elif kind == 3:  # FramebufferUpdateRequest
                    request = struct.unpack(">BHHHH", await reader.readexactly(9))
                    requests.append(request)
                    if len(requests) == 1:  # the screen becomes 80x60
                        rect = struct.pack(">HHHHi", 0, 0, 80, 60, encoding)
                        if encoding == -308:
                            rect += bytes([1, 0, 0, 0]) + struct.pack(">IHHHHI", 0, 0, 0, 80, 60, 0)
                        writer.write(struct.pack(">BxH", 0, 1) + rect)
                    elif request == (0, 0, 0, 80, 60):  # the whole new screen, asked for afresh
                        pixels = bytes([255, 0, 0, 0]) * 80 * 60
                        writer.write(struct.pack(">BxHHHHHi", 0, 1, 0, 0, 80, 60, 0) + pixels)
                elif kind in (4, 5):
                    await reader.readexactly(7 if kind == 4 else 5)
        writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        session = await open_direct("127.0.0.1", port)
        try:
            await wait_for_colour(session, (255, 0, 0))
            assert (session.width, session.height) == (80, 60) and session.framebuffer.shape == (60, 80, 3)
            assert session.ended is None and session.stats.resizes == 1
            assert any(-223 in codes and -308 in codes for codes in announced)
        finally:
            await session.close()
    finally:
        listener.close()


async def test_desktop_with_a_vnc_password(server, start_agent, xvnc, tmp_path: Path) -> None:
    display = xvnc(password="s3cret!x")
    display.solid("#00ff00")
    secret = tmp_path / "vnc-password"
    secret.write_text("s3cret!x\n")
    host_id = await online_host(
        server, start_agent, OC_VNC_ADDR=display.address, OC_VNC_PASSWORD_FILE=str(secret)
    )
    async with OpenComputersClient(server.base_url, server.token) as client:
        async with await client.open_desktop(host_id) as session:
            await wait_for_colour(session, (0, 255, 0))


async def test_wrong_vnc_password_is_refused(server, start_agent, xvnc) -> None:
    display = xvnc(password="right-pw")
    host_id = await online_host(server, start_agent, OC_VNC_ADDR=display.address, OC_VNC_PASSWORD="wrong")
    async with OpenComputersClient(server.base_url, server.token) as client:
        with pytest.raises(errors.SessionRefused) as caught:
            await client.open_desktop(host_id)
    assert caught.value.code == 4502
    assert caught.value.reason.startswith("VNC password refused by 127.0.0.1:")
    assert refusal_kind(caught.value.reason) == "vnc_auth_failed"


async def test_a_password_protected_server_without_a_password(server, start_agent, xvnc) -> None:
    display = xvnc(password="right-pw")
    host_id = await online_host(server, start_agent, OC_VNC_ADDR=display.address)
    async with OpenComputersClient(server.base_url, server.token) as client:
        with pytest.raises(errors.SessionRefused) as caught:
            await client.open_desktop(host_id)
    assert caught.value.code == 4502
    assert "wants a password" in caught.value.reason
    assert refusal_kind(caught.value.reason) == "vnc_no_password"


async def test_no_vnc_server_is_refused_with_a_reason(server, start_agent) -> None:
    port = free_port()  # nothing listens there
    host_id = await online_host(server, start_agent, OC_VNC_ADDR=f"127.0.0.1:{port}")
    async with OpenComputersClient(server.base_url, server.token) as client:
        with pytest.raises(errors.SessionRefused) as caught:
            await client.open_desktop(host_id)
    assert caught.value.code == 4502
    reason = caught.value.reason
    assert reason.startswith(f"no VNC server at 127.0.0.1:{port} (connection refused)")
    assert "--vnc HOST:PORT" in reason and len(reason.encode()) <= 120
    assert refusal_kind(reason) == "no_vnc_server"


async def test_not_a_vnc_server(server, start_agent) -> None:
    """Something else listens on the port: the agent says so instead of hanging."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    async def babble() -> None:
        conn, _ = await asyncio.get_running_loop().sock_accept(listener)
        conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        await asyncio.sleep(1)
        conn.close()

    listener.setblocking(False)
    talker = asyncio.create_task(babble())
    try:
        host_id = await online_host(server, start_agent, OC_VNC_ADDR=f"127.0.0.1:{port}")
        async with OpenComputersClient(server.base_url, server.token) as client:
            with pytest.raises(errors.SessionRefused) as caught:
                await client.open_desktop(host_id)
        assert caught.value.code == 4502
        assert "is not a VNC server" in caught.value.reason
    finally:
        talker.cancel()
        listener.close()


async def test_closing_the_session_frees_the_vnc_connection(server, start_agent, xvnc) -> None:
    display = xvnc()
    host_id = await online_host(server, start_agent, OC_VNC_ADDR=display.address)
    async with OpenComputersClient(server.base_url, server.token) as client:
        for _ in range(3):  # the same host, again and again: nothing is left behind
            session = await client.open_desktop(host_id)
            await session.next_update(timeout=10)
            await session.close()
    await asyncio.sleep(0.3)
    log = display.log.read_text()
    accepted = log.count("Connections: accepted")  # the fixture's own probe is one of them
    assert accepted >= 3 and log.count("Connections: closed") == accepted, log


def test_vnc_target_parsing(tmp_path: Path) -> None:
    assert VncTarget.parse(None) == VncTarget("127.0.0.1", 5900)
    assert VncTarget.parse("box:5901") == VncTarget("box", 5901)
    assert VncTarget.parse(":5902") == VncTarget("127.0.0.1", 5902)
    assert VncTarget.parse("[::1]:5903").address == "[::1]:5903"
    assert VncTarget.parse("host").port == 5900
    for bad in ("box:0", "box:x", "box:70000", "[::1"):
        with pytest.raises(ValueError):
            VncTarget.parse(bad)
    env = {"OC_VNC_ADDR": "10.0.0.2:5999", "OC_VNC_PASSWORD": "pw"}
    assert VncTarget.from_env(env) == VncTarget("10.0.0.2", 5999, "pw")


def test_password_files(tmp_path: Path) -> None:
    """A text file's first line, or a vncpasswd file as TigerVNC writes it."""
    from vnc_support import write_password_file

    text = tmp_path / "plain"
    text.write_text("hunter2\nignored\n")
    assert read_password_file(text) == "hunter2"
    assert read_password_file(write_password_file(tmp_path / "passwd", "hunter2")) == "hunter2"
