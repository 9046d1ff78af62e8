"""The agent's desktop bridge: ``vnc.open`` joins a stream to the host's VNC server.

The agent is the VNC server's client: it connects (``VncTarget``: ``--vnc HOST:PORT`` / ``OC_VNC_ADDR``,
default 127.0.0.1:5900: an X VNC server on Linux, Screen Sharing on macOS, TightVNC/UltraVNC on Windows) and authenticates there, with security type None or VNC authentication (the
password from ``OC_VNC_PASSWORD`` or ``--vnc-password-file``), before it answers the request, so a
missing server or a wrong password refuses the session with a reason the client can show. On the
stream it then plays an RFB server to the client up to the end of the security handshake (version 3.8,
security type None: the client's ticket was its authentication) and from ClientInit on relays bytes
unchanged both ways: the client and the VNC server speak to each other from there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.client import ClientConnection

from .. import protocol
from . import platform
from .capabilities import Capability, StreamReply
from .streams import relay

log = logging.getLogger("oc_agent.vnc")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5900
CONNECT_TIMEOUT = 5.0
HANDSHAKE_TIMEOUT = 10.0
RELAY_CHUNK = 256 * 1024  # the most VNC-server bytes sent in one binary frame
MAX_REASON = 120  # a refusal's message becomes a WebSocket close reason (≤ 123 bytes)

SECURITY_NONE = 1
SECURITY_VNC_AUTH = 2
APPLE_SECURITY = {30, 33, 35, 36}  # macOS Screen Sharing's own (Diffie-Hellman) authentication types
VNCPASSWD_KEY = bytes([23, 82, 107, 6, 35, 78, 88, 7])  # the fixed key of vncpasswd files (d3des order)


@dataclass(frozen=True)
class VncTarget:
    """Where the host's VNC server listens, and its password (None: no password)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    password: str | None = None

    @property
    def address(self) -> str:
        """``HOST:PORT`` (an IPv6 host in brackets), as shown in messages."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, address: str | None, password: str | None = None) -> VncTarget:
        """``HOST:PORT``, ``HOST`` (port 5900), ``:PORT`` (127.0.0.1) or ``[v6]:PORT``; ValueError if bad."""
        text = (address or "").strip()
        if not text:
            return cls(password=password)
        host, port = text, str(DEFAULT_PORT)
        if text.startswith("["):
            end = text.find("]")
            if end < 0:
                raise ValueError(f"bad VNC address {address!r}: missing ']'")
            host, rest = text[1:end], text[end + 1 :]
            if rest:
                if not rest.startswith(":"):
                    raise ValueError(f"bad VNC address {address!r}")
                port = rest[1:]
        elif text.count(":") == 1:
            host, port = text.split(":")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad VNC address {address!r}: the port must be 1-65535")
        return cls(host=host or DEFAULT_HOST, port=int(port), password=password)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> VncTarget:
        """``OC_VNC_ADDR``, and ``OC_VNC_PASSWORD`` or ``OC_VNC_PASSWORD_FILE`` (the password wins)."""
        env = os.environ if environ is None else environ
        password = env.get("OC_VNC_PASSWORD") or None
        if password is None and env.get("OC_VNC_PASSWORD_FILE"):
            password = read_password_file(Path(env["OC_VNC_PASSWORD_FILE"]))
        if password is None and environ is None:
            password = platform.desktop_password()  # macOS Screen Sharing's, for an agent run as root
        return cls.parse(env.get("OC_VNC_ADDR"), password)


def read_password_file(path: Path) -> str:
    """A VNC password from a file: either plain text (its first line) or a ``vncpasswd`` file (8 bytes,
    DES-obfuscated with the well-known fixed key), so ``~/.vnc/passwd`` can be used as it is."""
    data = path.read_bytes()
    if len(data) == 8 and not all(32 <= b < 127 for b in data):
        return _des(VNCPASSWD_KEY, data, decrypt=True).rstrip(b"\0").decode("latin-1")
    lines = data.decode("utf-8").splitlines()
    return lines[0] if lines else ""


# --- DES, as VNC authentication uses it ---------------------------------------------------------


def _reverse_bits(byte: int) -> int:
    return int(f"{byte:08b}"[::-1], 2)


def _des(key: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    """Single DES in ECB mode with VNC's key convention (each key byte's bits mirrored).

    DES is TripleDES with one key three times over. cryptography ≥ 43 keeps TripleDES in its
    ``decrepit`` module (no deprecation warning); older releases have it only in the main module.
    """
    try:
        from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    except ImportError:  # cryptography < 43
        from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    des_key = bytes(_reverse_bits(b) for b in key[:8].ljust(8, b"\0"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cipher = Cipher(TripleDES(des_key * 3), modes.ECB())
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()


def vnc_auth_response(password: str, challenge: bytes) -> bytes:
    """The 16-byte answer to a VNC authentication challenge: the challenge DES-encrypted with the
    password (its first 8 bytes, NUL-padded)."""
    return _des(password.encode("latin-1", errors="replace")[:8], challenge)


# --- the RFB handshake with the VNC server ------------------------------------------------------


def _refuse(code: str, message: str) -> protocol.AgentError:
    data = message.encode()
    if len(data) > MAX_REASON:
        message = data[: MAX_REASON - 1].decode(errors="ignore") + "…"
    return protocol.AgentError(code, message)


def no_server(target: VncTarget, why: str) -> protocol.AgentError:
    """NO_VNC_SERVER with a reason that fits a close frame; the TUI says how to enable a server."""
    hint = platform.desktop_hint()  # "start one"; macOS: turn on Screen Sharing …
    full = f"no VNC server at {target.address} ({why}); {hint}, or point oc-agent at it with --vnc HOST:PORT"
    for message in (full, f"no VNC server at {target.address} ({why}); {hint}"):
        if len(message.encode()) <= MAX_REASON:
            return protocol.AgentError("NO_VNC_SERVER", message)
    return _refuse("NO_VNC_SERVER", f"no VNC server at {target.address} ({why})")


async def _server_reason(reader: asyncio.StreamReader) -> str:
    length = int.from_bytes(await reader.readexactly(4), "big")
    return (await reader.readexactly(min(length, 4096))).decode("utf-8", errors="replace")


def _choose(target: VncTarget, offered: set[int]) -> int:
    """VNC authentication when we have a password and it is offered, else None when offered."""
    preference = [SECURITY_NONE, SECURITY_VNC_AUTH]
    if target.password is not None:
        preference.reverse()
    for kind in preference:
        if kind in offered:
            return kind
    if offered & APPLE_SECURITY:  # macOS Screen Sharing without its VNC password turned on
        raise _refuse(
            "VNC_UNSUPPORTED",
            "Screen Sharing wants a Mac login: turn on 'VNC viewers may control screen with password'",
        )
    raise _refuse(
        "VNC_UNSUPPORTED", f"VNC server offers only security types {sorted(offered)}; enable None or VncAuth"
    )


async def handshake(target: VncTarget, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Version and security with the VNC server, up to a successful SecurityResult (not ClientInit:
    the client sends that itself through the relay). Raises AgentError."""
    hello = await reader.readexactly(12)
    if not hello.startswith(b"RFB ") or not hello.endswith(b"\n"):
        raise _refuse("VNC_UNSUPPORTED", f"{target.address} is not a VNC server (it did not greet with RFB)")
    try:
        major, minor = int(hello[4:7]), int(hello[8:11])
    except ValueError:
        raise _refuse("VNC_UNSUPPORTED", f"{target.address} sent a bad RFB version") from None
    minor = 8 if (major, minor) >= (3, 8) else 7 if minor >= 7 else 3  # 3.889 (macOS) speaks 3.8
    writer.write(b"RFB 003.%03d\n" % minor)
    if minor == 3:  # the server chooses: a 4-byte security type
        chosen = int.from_bytes(await reader.readexactly(4), "big")
        if chosen == 0:
            raise _refuse("VNC_UNSUPPORTED", f"VNC server refused: {await _server_reason(reader)}")
        offered = {chosen}
    else:
        count = (await reader.readexactly(1))[0]
        if count == 0:
            raise _refuse("VNC_UNSUPPORTED", f"VNC server refused: {await _server_reason(reader)}")
        offered = set(await reader.readexactly(count))
        chosen = _choose(target, offered)
        writer.write(bytes([chosen]))
    if chosen == SECURITY_VNC_AUTH:
        if target.password is None:
            raise _refuse(
                "VNC_AUTH_FAILED",
                "the VNC server wants a password: give oc-agent OC_VNC_PASSWORD or --vnc-password-file",
            )
        challenge = await reader.readexactly(16)
        writer.write(vnc_auth_response(target.password, challenge))
    elif chosen != SECURITY_NONE:
        raise _refuse("VNC_UNSUPPORTED", f"VNC server wants security type {chosen}; enable None or VncAuth")
    await writer.drain()
    if chosen == SECURITY_NONE and minor < 8:
        return  # before 3.8 there is no SecurityResult after None
    result = int.from_bytes(await reader.readexactly(4), "big")
    if result != 0:
        why = await _server_reason(reader) if minor >= 8 else ""
        if chosen == SECURITY_VNC_AUTH:
            raise _refuse(
                "VNC_AUTH_FAILED", f"VNC password refused by {target.address}" + (f": {why}" if why else "")
            )
        raise _refuse("VNC_UNSUPPORTED", f"VNC server refused the session: {why or result}")


async def connect(target: VncTarget) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the VNC server, authenticated, ready for ClientInit; AgentError if not."""
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            reader, writer = await asyncio.open_connection(target.host, target.port, limit=4 * RELAY_CHUNK)
    except ConnectionRefusedError:
        raise no_server(target, "connection refused") from None
    except TimeoutError:
        raise no_server(target, "connect timed out") from None
    except OSError as exc:
        raise no_server(target, exc.strerror or type(exc).__name__) from None
    try:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            await handshake(target, reader, writer)
    except BaseException as exc:
        writer.close()
        if isinstance(exc, asyncio.IncompleteReadError | ConnectionError):
            raise _refuse(
                "VNC_UNSUPPORTED", f"{target.address} closed the connection during the handshake"
            ) from None
        if isinstance(exc, TimeoutError):
            raise _refuse("VNC_UNSUPPORTED", f"{target.address} did not complete the RFB handshake") from None
        raise
    return reader, writer


# --- the client's side: the stream ------------------------------------------------------------


class FrameReader:
    """Exact byte counts out of a WebSocket's binary frames (text frames are ignored)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.buffer = bytearray()

    async def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes; raises ConnectionClosed when the stream ends first."""
        while len(self.buffer) < n:
            frame = await self.ws.recv()
            if isinstance(frame, bytes):
                self.buffer += frame
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data


async def serve_client(ws: ClientConnection) -> bytes:
    """Play the RFB server up to SecurityResult OK: version 3.8 (or the client's lower one), type None.
    Returns bytes the client sent past the handshake (they belong to the VNC server)."""
    frames = FrameReader(ws)
    await ws.send(b"RFB 003.008\n")
    version = await frames.read(12)
    if not version.startswith(b"RFB 003."):
        raise ValueError(f"client is not an RFB client: {version!r}")
    minor = int(version[8:11]) if version[8:11].isdigit() else 8
    if minor >= 7:
        await ws.send(bytes([1, SECURITY_NONE]))
        if (await frames.read(1))[0] != SECURITY_NONE:
            raise ValueError("client chose a security type that was not offered")
        if minor >= 8:
            await ws.send((0).to_bytes(4, "big"))
    else:
        await ws.send(SECURITY_NONE.to_bytes(4, "big"))
    return bytes(frames.buffer)


def capability(target: VncTarget) -> Capability:
    """The desktop method, for the VNC server at ``target``."""

    async def vnc_open(call: protocol.VncOpen) -> StreamReply:
        """``vnc.open``: connect and authenticate to the VNC server, then relay it on the stream."""
        reader, writer = await connect(target)

        async def serve(ws: ClientConnection) -> None:
            try:
                early = await asyncio.wait_for(serve_client(ws), HANDSHAKE_TIMEOUT)
            except (ValueError, TimeoutError) as exc:
                writer.close()
                log.warning("desktop stream %s: %s", call.stream_id, exc or "client handshake timed out")
                await ws.close(1002, "RFB handshake with the client failed")
                return
            except BaseException:
                writer.close()
                raise
            if early:
                writer.write(early)
            log.info("desktop session to %s opened", target.address)
            await relay(ws, reader, writer, "the VNC server closed the connection", RELAY_CHUNK)
            log.info("desktop session to %s closed", target.address)

        return StreamReply({"server": target.address}, serve, release=writer.close)

    return Capability("vnc", {protocol.VncOpen: vnc_open})
