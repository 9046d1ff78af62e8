"""Records the byte streams in this directory: each program runs once in a real 80x24 PTY
(TERM=xterm-256color, UTF-8) and everything it writes is saved as ``<name>.bin``.

The recordings are checked in, so tests replay exactly these bytes and never depend on what this
machine has installed. Re-record (after changing a scene): ``python tests/terminal_streams/record.py``.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import struct
import sys
import tempfile
import termios
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLS, ROWS = 80, 24

COLOURS_16 = r"""
printf 'SGR 16 colours\n'
for fg in 30 31 32 33 34 35 36 37 90 91 92 93 94 95 96 97; do printf '\033[%sm%3s \033[0m' $fg $fg; done; printf '\n'
for bg in 40 41 42 43 44 45 46 47 100 101 102 103 104 105 106 107; do printf '\033[%sm%3s \033[0m' $bg $bg; done; printf '\n'
printf '\033[1mbold\033[0m \033[2mdim\033[0m \033[3mitalic\033[0m \033[4munderline\033[0m '
printf '\033[7mreverse\033[0m \033[9mstrike\033[0m \033[1;4;31mbold-underline-red\033[0m\n'
"""

COLOURS_256 = r"""
printf '256 colours\n'
for i in $(seq 0 15); do printf '\033[48;5;%sm  ' $i; done; printf '\033[0m\n'
for row in $(seq 0 11); do
  for col in $(seq 0 17); do i=$((16 + row * 18 + col)); [ $i -le 231 ] && printf '\033[48;5;%sm  ' $i; done
  printf '\033[0m\n'
done
for i in $(seq 232 255); do printf '\033[48;5;%sm  ' $i; done; printf '\033[0m\n'
printf '\033[38;5;208morange-fg\033[0m \033[38;5;27;48;5;226mblue-on-yellow\033[0m\n'
"""

TRUECOLOUR = r"""
printf 'truecolour\n'
for i in $(seq 0 79); do r=$((255 - i * 3)); g=$((i * 3)); printf '\033[48;2;%s;%s;128m \033[0m' $r $g; done; printf '\n'
printf '\033[38;2;255;136;0mtrue-orange\033[0m \033[38:2::0:200:255mcolon-cyan\033[0m\n'
"""

WIDE = r"""
printf 'wide: 日本語テキスト 한국어 中文\n'
printf 'emoji: 😀🎉🚀 ok\n'
printf 'combining: e\314\201 a\314\210\n'
printf '%078d日X\n' 0
printf 'box: ┌──┐ │ok│ └──┘\n'
"""


def _ls_scene(root: Path) -> str:
    (root / "docs").mkdir()
    (root / "src").mkdir()
    (root / "archive.tar.gz").write_bytes(b"")
    (root / "photo.png").write_bytes(b"")
    (root / "notes.txt").write_text("hello\n")
    script = root / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    (root / "latest").symlink_to("notes.txt")
    (root / "broken").symlink_to("missing")
    (root / "song.mp3").write_bytes(b"")
    (root / "bundle.zip").write_bytes(b"")
    return f'eval "$(dircolors -b)"; cd {root} && ls --color=always -F && ls --color=always -1'


def _vim_scene(root: Path) -> str:
    (root / "poem.txt").write_text("roses are red\nviolets are blue\n")
    return (
        f"cd {root} && printf 'shell line 1\\nshell line 2\\n$ vim poem.txt\\n' && "
        "vim -u NONE -N -i NONE -n poem.txt && printf 'after vim\\n'"
    )


def record(name: str, command: str, keys: list[tuple[float, bytes]] | None = None, wait: float = 4.0) -> None:
    env = {
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe("sh", ["sh", "-c", command], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    out = bytearray()
    started = time.monotonic()
    pending = sorted(keys or [])
    while time.monotonic() - started < wait:
        if pending and time.monotonic() - started >= pending[0][0]:
            os.write(fd, pending.pop(0)[1])
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    os.close(fd)
    os.waitpid(pid, 0)
    (HERE / f"{name}.bin").write_bytes(bytes(out))
    print(f"{name}: {len(out)} bytes", file=sys.stderr)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # The PTY starts before the winsize is set, so each scene waits a moment first.
        record("colours16", "sleep 0.3; " + COLOURS_16)
        record("colours256", "sleep 0.3; " + COLOURS_256)
        record("truecolour", "sleep 0.3; " + TRUECOLOUR)
        record("wide", "sleep 0.3; " + WIDE)
        ls_dir = root / "ls"
        ls_dir.mkdir()
        record("ls_color", "sleep 0.3; " + _ls_scene(ls_dir))
        if shutil.which("vim"):
            vim_dir = root / "vim"
            vim_dir.mkdir()
            record("vim", "sleep 0.3; " + _vim_scene(vim_dir), keys=[(1.5, b"jdd"), (2.0, b":q!\r")])


if __name__ == "__main__":
    main()
