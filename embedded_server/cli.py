"""``oc-server``: run the embedded control plane, print the admin token, add a tenant, rotate the key of
secrets at rest."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn
from cryptography.exceptions import InvalidTag

from . import http_limits
from .app import create_app
from .auth import create_tenant, create_token, ensure_admin, tenant_for_token
from .db import Database
from .secrets.keyring import KeyRingError
from .secrets.store import rotate
from .settings import Settings, default_data_dir


def _data_dir(path: str | None) -> Path:
    directory = Path(path) if path else default_data_dir()
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    return directory


def _port(text: str) -> int:
    """A TCP port number for ``--port``: 0 (pick a free one) to 65535; anything else is a usage error."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535; 0 picks a free one)")
    return port


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oc-server", description="The embedded OpenComputers control plane."
    )
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the server (the default command)")
    for command in (parser, serve):  # `serve` is optional: `oc-server --port 0` works too
        command.add_argument(
            "--bind", default=argparse.SUPPRESS, help="address to listen on (default: 127.0.0.1)"
        )
        command.add_argument(
            "--port", type=_port, default=argparse.SUPPRESS, help="default 8787; 0 picks a free one"
        )
        command.add_argument(
            "--public-url", default=argparse.SUPPRESS, help="base URL others reach the server at"
        )
        command.add_argument(
            "--ai-base-url",
            default=argparse.SUPPRESS,
            help="AI agents: the default OpenAI-compatible endpoint (e.g. http://127.0.0.1:11434/v1)",
        )
        command.add_argument("--ai-model", default=argparse.SUPPRESS, help="AI agents: the default model")
        command.add_argument(
            "--ai-key-secret",
            default=argparse.SUPPRESS,
            help="AI agents: the name of the tenant secret holding the endpoint's API key",
        )
    token = sub.add_parser("token", help="print the admin API token")
    token.add_argument(
        "--read-only",
        action="store_true",
        help="mint and print a new read-only token of the admin's tenant (every mutating call is refused)",
    )
    tenant = sub.add_parser("tenant", help="manage tenants")
    tenant_sub = tenant.add_subparsers(dest="tenant_command", required=True)
    add = tenant_sub.add_parser("add", help="create a tenant and print 'TENANT_ID TOKEN'")
    add.add_argument("name")
    secrets = sub.add_parser("secrets", help="manage the encryption of secrets at rest")
    secrets_sub = secrets.add_subparsers(dest="secrets_command", required=True)
    rotate = secrets_sub.add_parser(
        "rotate-key", help="re-encrypt every secret under a new key (safe while the server runs)"
    )
    for command in (parser, serve, token, add, rotate):
        command.add_argument("--data-dir", default=argparse.SUPPRESS, help="state directory")
    for command in (parser, serve, rotate):
        command.add_argument(
            "--secret-key-file",
            default=argparse.SUPPRESS,
            help="the key ring of secrets at rest (default: $OC_SECRET_KEY_FILE, else DATA_DIR/secret-keys)",
        )
    return parser


def _listen(bind: str, port: int) -> socket.socket:
    """Bind the socket ourselves so ``--port 0`` works and we know the real port before serving.

    ``IPPROTO_TCP`` matters: asyncio sets TCP_NODELAY only on sockets that say they are TCP; without it
    Nagle's algorithm adds ~40 ms to every response.
    """
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((bind, port))
    sock.listen(2048)
    return sock


class _Server(uvicorn.Server):
    """Also ends SSE streams when asked to stop: uvicorn would otherwise wait for them to finish."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_exit = on_exit
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(http_limits.REPEATED.loop_handler)
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_exit)


def serve(settings: Settings) -> int:
    db = Database(settings.db_path)
    ensure_admin(db, settings.data_dir)
    db.close()
    try:
        sock = _listen(settings.bind, settings.port)
    except OSError as exc:
        print(f"oc-server: cannot listen on {settings.bind}:{settings.port}: {exc.strerror}", file=sys.stderr)
        return 1
    settings.port = sock.getsockname()[1]
    try:
        app = create_app(settings)
    except KeyRingError as exc:
        print(f"oc-server: {exc}", file=sys.stderr)
        return 1
    fd_limit = http_limits.raise_fd_limit()
    config = uvicorn.Config(
        app,
        log_level="warning",
        ws="websockets-sansio",
        http=http_limits.BoundedH11Protocol,
        limit_concurrency=http_limits.connection_cap(fd_limit),
        timeout_graceful_shutdown=3,
        access_log=False,
    )

    server = _Server(config, on_exit=app.state.lifecycle.stop)
    state_file = settings.data_dir / "server.json"
    fd = os.open(state_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"pid": os.getpid(), "port": settings.port, "base_url": settings.listen_url}, handle)
    # uvicorn re-raises the stop signal after shutdown; these make that a quiet, clean exit.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    print(f"oc-server listening on {settings.listen_url}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        state_file.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging_setup()
    args = _parser().parse_args(argv)
    data_dir = _data_dir(getattr(args, "data_dir", None))
    settings = Settings(data_dir=data_dir)
    if getattr(args, "secret_key_file", None):
        settings.secret_key_file = Path(args.secret_key_file)
    if args.command == "secrets":
        return rotate_key(settings)
    if args.command in (None, "serve"):
        settings.bind = getattr(args, "bind", settings.bind)
        settings.port = getattr(args, "port", settings.port)
        settings.public_url = getattr(args, "public_url", None) or settings.public_url
        settings.ai_base_url = getattr(args, "ai_base_url", settings.ai_base_url)
        settings.ai_model = getattr(args, "ai_model", settings.ai_model)
        settings.ai_key_secret = getattr(args, "ai_key_secret", settings.ai_key_secret)
        return serve(settings)
    db = Database(settings.db_path)
    try:
        if args.command == "token" and args.read_only:
            admin = ensure_admin(db, data_dir)
            tenant_id = tenant_for_token(db, admin)
            assert tenant_id is not None  # ensure_admin answers a token it knows
            with db.transaction():
                print(create_token(db, tenant_id, "read-only", read_only=True))
        elif args.command == "token":
            print(ensure_admin(db, data_dir))
        else:
            tenant_id, token = create_tenant(db, args.name)
            print(f"{tenant_id} {token}")
    finally:
        db.close()
    return 0


def rotate_key(settings: Settings) -> int:
    """``oc-server secrets rotate-key``: a new key for every secret (docs/api.md, "Secrets at rest")."""
    db = Database(settings.db_path)
    try:
        key_id, count = rotate(db, settings.secret_key_path)
    except (KeyRingError, InvalidTag) as exc:
        print(
            f"oc-server: key rotation stopped, nothing was dropped: {exc or 'a secret does not decrypt'}",
            file=sys.stderr,
        )
        return 1
    finally:
        db.close()
    print(
        f"re-encrypted {count} secrets under {key_id}; the key ring {settings.secret_key_path} holds only it"
    )
    return 0


def logging_setup() -> None:
    logging.basicConfig(
        level=logging.INFO, format="oc-server: %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
