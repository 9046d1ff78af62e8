"""A private, throw-away OpenSSH server on 127.0.0.1: the baseline every benchmark is compared with.

Its host and user keys, config and ControlMaster socket live in a temp dir that is removed afterwards.
The benchmark user's login shell is ``/bin/sh`` with no start-up files, so a command's cost is the
command's and the protocol's, not a shell profile's.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bench.service import Service
from bench.system import free_port, install_missing

BENCH_USER = "ocbench"
PACKAGES = {"sshd": "openssh-server", "ssh": "openssh-client", "scp": "openssh-client"}


def ensure_tools() -> None:
    """Install OpenSSH when it is missing."""
    install_missing(PACKAGES)


def _ensure_user() -> pwd.struct_passwd:
    try:
        pwd.getpwnam(BENCH_USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", BENCH_USER], check=True)
    # useradd leaves the account locked ("!"), and sshd without PAM refuses locked accounts even for
    # key logins; "*" means "no password" without locking it.
    subprocess.run(["usermod", "-p", "*", BENCH_USER], check=True)
    return pwd.getpwnam(BENCH_USER)


class PrivateSshd(Service):
    """``with PrivateSshd() as sshd: subprocess.run(sshd.ssh("true"))``."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="oc-bench-ssh-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.user = BENCH_USER

    def _start(self) -> None:
        user = _ensure_user()
        keygen = ["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f"]
        subprocess.run([*keygen, str(self.dir / "host_key")], check=True)
        subprocess.run([*keygen, str(self.dir / "user_key")], check=True)
        # This sshd's own authorized_keys file, so that concurrent bench runs (each with its own key)
        # never overwrite each other's key in the shared account's ~/.ssh.
        auth = self.dir / "authorized_keys"
        auth.write_text((self.dir / "user_key.pub").read_text())
        os.chown(auth, user.pw_uid, user.pw_gid)
        auth.chmod(0o600)
        self.dir.chmod(0o711)  # the user (as whom sshd reads the file) may pass through, not list
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation dir sshd insists on
        config = self.dir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.dir / 'host_key'}",
                    f"PidFile {self.dir / 'sshd.pid'}",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
                    "StrictModes no",  # the file lives under /tmp, which is world-writable
                    "UsePAM no",
                    "UseDNS no",
                    "PrintMotd no",
                    "PrintLastLog no",
                    f"AllowUsers {BENCH_USER}",
                    "MaxSessions 1000",
                    "MaxStartups 1000",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )
        self.proc = subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL
        )
        self._wait_listening()
        self.start_master()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("private sshd did not start")

    def base_args(self, shared: bool) -> list[str]:
        args = [
            "ssh",
            "-p", str(self.port),
            "-i", str(self.dir / "user_key"),
            "-o", "StrictHostKeyChecking=no",
            "-o", f"UserKnownHostsFile={self.dir / 'known_hosts'}",
            "-o", "LogLevel=ERROR",
            "-o", "BatchMode=yes",
        ]  # fmt: skip
        if shared:
            args += ["-o", f"ControlPath={self.dir / 'cm.sock'}", "-o", "ControlMaster=no"]
        return args

    def ssh(self, command: str, *, shared: bool = True, tty: bool = False) -> list[str]:
        """The argv of ``ssh`` running ``command`` as the benchmark user on the private server."""
        return [*self.base_args(shared), *(["-tt"] if tty else []), f"{BENCH_USER}@127.0.0.1", command]

    def start_master(self) -> None:
        args = self.base_args(shared=False)
        master = [
            "-o",
            f"ControlPath={self.dir / 'cm.sock'}",
            "-o",
            "ControlMaster=yes",
            "-o",
            "ControlPersist=600",
        ]
        subprocess.run([*args, *master, "-N", "-f", f"{BENCH_USER}@127.0.0.1"], check=True)

    def __exit__(self, *exc: object) -> None:
        subprocess.run(
            [*self.base_args(shared=True), "-O", "exit", f"{BENCH_USER}@127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
