"""macOS rules that need no Mac to run: Screen Sharing's stored VNC password. Unit-tested everywhere
(tests/test_platform.py); the file itself is read only on macOS (:func:`.desktop_password`).

macOS Screen Sharing is a VNC server on port 5900. With "VNC viewers may control screen with password"
turned on (System Settings → General → Sharing → Screen Sharing → ⓘ), it offers VNC authentication, and
the password is kept in :data:`VNC_SETTINGS` (readable by root only), XORed with a fixed key and written
as hex, as public tools for recovering it describe. An agent running as root (the launchd daemon) finds
it there by itself; any other agent is given it with ``--vnc-password-file`` or ``OC_VNC_PASSWORD``.
"""

from __future__ import annotations

VNC_SETTINGS = "/Library/Preferences/com.apple.VNCSettings.txt"
VNC_SETTINGS_KEY = bytes.fromhex("1734516E8BA8C5E2FF1C39567390ADCA")
MAX_VNC_PASSWORD = 8  # bytes: VNC authentication uses the first 8 only


def decode_vnc_settings(text: str) -> str:
    """The Screen Sharing password from :data:`VNC_SETTINGS`'s content.

    Raises:
        ValueError: the content is not the hex form of an XORed password.
    """
    data = bytes.fromhex(text.strip())
    if not data or len(data) > len(VNC_SETTINGS_KEY):
        raise ValueError("not a Screen Sharing password file")
    plain = bytes(byte ^ key for byte, key in zip(data, VNC_SETTINGS_KEY, strict=False))
    return plain.split(b"\0", 1)[0].decode("latin-1")


def encode_vnc_settings(password: str) -> str:
    """What :data:`VNC_SETTINGS` holds for ``password`` (its first 8 bytes; the rest of the key length
    NUL-padded), the inverse of :func:`decode_vnc_settings`."""
    plain = password.encode("latin-1", "replace")[:MAX_VNC_PASSWORD].ljust(len(VNC_SETTINGS_KEY), b"\0")
    return bytes(byte ^ key for byte, key in zip(plain, VNC_SETTINGS_KEY, strict=True)).hex().upper()
