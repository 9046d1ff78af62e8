"""Server settings: defaults, then environment, then command-line flags (applied by cli.py)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from platformdirs import user_data_dir


def default_data_dir() -> Path:
    """``$OC_SERVER_DATA_DIR``, else the per-user data dir of oc-tui + ``/server``."""
    env = os.environ.get("OC_SERVER_DATA_DIR")
    return Path(env) if env else Path(user_data_dir("oc-tui")) / "server"


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    bind: str = "127.0.0.1"
    port: int = 8787
    # Base of the URLs the server hands out (ws_url, public_url …); derived from bind/port when unset.
    public_url: str | None = field(default_factory=lambda: os.environ.get("OC_PUBLIC_URL") or None)
    # Agents ping this often; silence for 3 intervals drops the channel (tests shorten it).
    heartbeat_interval: float = field(default_factory=lambda: _env_float("OC_HEARTBEAT_INTERVAL", 3.0))
    # How long a request to an agent may take before the API answers 502 AGENT_UNREACHABLE.
    call_timeout: float = field(default_factory=lambda: _env_float("OC_CALL_TIMEOUT", 10.0))
    # SSE comment keep-alives, so proxies and clients can tell a quiet stream from a dead one.
    keepalive_interval: float = field(default_factory=lambda: _env_float("OC_SSE_KEEPALIVE", 15.0))
    max_body: int = 1024 * 1024
    # Seconds between two health rounds of the running inference clusters' engines (tests shorten it).
    cluster_health_interval: float = field(
        default_factory=lambda: _env_float("OC_CLUSTER_HEALTH_INTERVAL", 5.0)
    )
    # Seconds a terminal/desktop ticket stays valid (tests shorten it).
    ticket_ttl: float = field(default_factory=lambda: _env_float("OC_TICKET_TTL", 30.0))
    # Output bytes (stdout + stderr) stored per job; beyond it output is only streamed live (truncated).
    job_output_cap: int = field(
        default_factory=lambda: int(_env_float("OC_JOB_OUTPUT_CAP", 64 * 1024 * 1024))
    )
    # AI agent sessions: the default model endpoint of every tenant (each may set its own through
    # PUT /agent/config): an OpenAI-compatible base URL, the model, and the name of the tenant secret
    # that holds the endpoint's API key ("" = the endpoint needs none). docs/api.md "AI agents".
    ai_base_url: str = field(default_factory=lambda: os.environ.get("OC_AI_BASE_URL", ""))
    ai_model: str = field(default_factory=lambda: os.environ.get("OC_AI_MODEL", ""))
    ai_key_secret: str = field(default_factory=lambda: os.environ.get("OC_AI_KEY_SECRET", ""))
    # Seconds one model call may take before the session fails with a timeout.
    ai_call_timeout: float = field(default_factory=lambda: _env_float("OC_AI_CALL_TIMEOUT", 300.0))

    # The key ring of secrets at rest (docs/api.md, "Secrets"): --secret-key-file, else
    # $OC_SECRET_KEY_FILE, else DATA_DIR/secret-keys.
    secret_key_file: Path | None = field(
        default_factory=lambda: (
            Path(os.environ["OC_SECRET_KEY_FILE"]) if os.environ.get("OC_SECRET_KEY_FILE") else None
        )
    )

    @property
    def secret_key_path(self) -> Path:
        """Where the key ring of secrets at rest is."""
        return self.secret_key_file or self.data_dir / "secret-keys"

    @property
    def listen_url(self) -> str:
        """Where this machine reaches the server (a wildcard bind is reached on loopback)."""
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "::", "") else self.bind
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Where clients and agents elsewhere reach the server: ``public_url`` when set."""
        return self.public_url.rstrip("/") if self.public_url else self.listen_url

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "oc-server.db"

    @cached_property
    def plane_id(self) -> str:
        """This control plane's identity (``cp_`` + 120 random bits), made on first start and kept in the
        data dir (``plane-id``, mode 0600). Agents learn it at their first welcome, so that a refusal from
        another control plane on the same URL is not taken for their own (docs/protocol.md)."""
        path = self.data_dir / "plane-id"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        value = "cp_" + secrets.token_hex(15)
        temp = path.with_name(f".plane-id.{os.getpid()}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
        try:
            os.link(temp, path)  # first writer wins when two servers start at once on one data dir
        except FileExistsError:
            value = path.read_text().strip()
        finally:
            temp.unlink()
        return value
