"""Settings from `TRADEGUARD_*` environment variables; with none set, tradeguard runs embedded."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

# Relative to the folder tradeguard is started from, as a project's own `var/` is; every command
# that opens the database says which file it is (see docs/configuration.md).
DEFAULT_DATA_DIR = Path("var")
# The async driver of each database tradeguard runs on, for URLs that name the database only.
ASYNC_DRIVER_NAMES = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRADEGUARD_", extra="ignore")

    database_url: str = Field(
        default="",
        description="SQLAlchemy async URL; empty means a SQLite file under data_dir.",
    )
    redis_url: str = Field(default="", description="Redis URL; empty means the in-process cache.")
    data_dir: Path = DEFAULT_DATA_DIR
    jwt_secret: str = Field(default="", description="HS256 key; empty means one kept in data_dir.")
    secret_key: str = Field(
        default="",
        description="Fernet key that encrypts device secrets at rest; empty means one kept in data_dir.",
    )
    jwt_expires_seconds: int = Field(default=3600, gt=0)
    cache_ttl_seconds: float = Field(default=5.0, gt=0)
    cache_max_entries: int = Field(default=100_000, gt=0)
    cache_namespace: str = Field(
        default="tg:c:",
        description="Prefix of the deployment's Redis keys and channels (cache, live stream, cache "
        "announcements); processes of one deployment share it, deployments sharing a Redis server must not.",
    )
    near_cache_epochs_dir: Path | None = Field(
        default=None,
        description="Where the host's processes share their cache epochs; empty means /dev/shm (or the temp dir).",
    )
    near_cache: bool = Field(
        default=True,
        description="With Redis, each process also keeps its own copies of cache hits, kept coherent "
        "through epochs shared in memory by the host's processes and invalidations announced over Redis.",
    )
    redis_timeout_seconds: float = Field(default=0.25, gt=0)
    redis_retry_seconds: float = Field(default=1.0, gt=0)
    max_body_bytes: int = Field(
        default=1_048_576,
        gt=0,
        description="Larger request bodies are refused with 413 before they are read.",
    )
    # Kept connections, not overflow, carry a busy worker: an overflow connection is closed on its
    # return, so a worker past its pool reconnects (asyncpg's set-up and type introspection) for
    # nearly every request, which under load queues the next ones behind it.
    db_pool_size: int = Field(default=20, gt=0)
    db_max_overflow: int = Field(default=10, ge=0)
    command_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A sent close command not acknowledged by then expires and is retried.",
    )
    command_max_attempts: int = Field(default=3, ge=1, le=20)
    clock_skew_tolerance_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="How far ahead of the server's clock a time sent to it (a snapshot's taken_at, "
        "a position's or trade's opened_at) may lie before it is refused.",
    )
    ingest_batch_window_ms: float = Field(
        default=0.0,
        ge=0,
        le=1000,
        description="How long the first snapshot of a batch waits for others before the batch is "
        "applied in one transaction; snapshots arriving while a batch is applied form the next "
        "whatever the window, so under load batches form without it.",
    )
    ingest_batch_max_size: int = Field(
        default=64, ge=1, le=1000, description="At most this many snapshots are applied in one transaction."
    )
    ingest_batches_in_flight: int = Field(
        default=1,
        ge=1,
        le=16,
        description="How many batches one process applies at once: the next starts as soon as the one "
        "before it holds its accounts' locks; 1 starts it only once the one before has ended.",
    )
    sweep_interval_seconds: float = Field(default=1.0, gt=0)
    history_raw_retention_hours: float = Field(
        default=24,
        gt=0,
        description="How long the equity history keeps each snapshot; older ones are kept as minute aggregates.",
    )
    history_minute_retention_days: float = Field(
        default=92, gt=0, description="How long the equity history keeps minute aggregates."
    )
    history_partitions_ahead: int = Field(
        default=2, ge=1, description="PostgreSQL: how many days of equity history partitions are made ahead."
    )
    history_maintenance_interval_seconds: float = Field(
        default=600,
        gt=0,
        description="How often the worker makes partitions ahead and rolls up and drops the equity history.",
    )
    run_worker_in_api: bool = Field(
        default=True,
        description="Run the sweep and alert delivery inside the API process; production runs `tradeguard worker`.",
    )
    webhook_url: str = Field(default="", description="Alerts are POSTed here, signed with webhook_secret.")
    webhook_secret: str = ""
    telegram_bot_token: str = ""
    telegram_chat_id: str = ""
    telegram_base_url: str = "https://api.telegram.org"
    notify_max_attempts: int = Field(default=6, ge=1, le=50)
    notify_backoff_seconds: float = Field(
        default=1.0, gt=0, description="First retry delay; doubles each time."
    )
    notify_timeout_seconds: float = Field(default=5.0, gt=0)
    metrics_token: str = Field(
        default="",
        description="A bearer token that lets a scraper read the business metrics on /metrics; empty: "
        "only an operator's access token does.",
    )
    auto_migrate: bool = Field(default=True, description="Upgrade the schema when serving starts.")
    log_level: str = "INFO"
    access_log: bool = Field(
        default=False,
        description="Log a line per request; off by default: at the read rates served here it costs "
        "about as much CPU as the request itself, and /metrics counts requests per route and status.",
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        # Fixed at start-up, so the database, the kept keys and what commands print agree.
        return path.expanduser().resolve()

    @field_validator("database_url")
    @classmethod
    def _with_async_driver(cls, value: str) -> str:
        """Hosting platforms hand out `postgres://` URLs with libpq's `sslmode`: the same database
        through asyncpg, which calls that option `ssl`."""
        if not value:
            return value
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(
                "not a database URL (postgresql+asyncpg://user@host/name or sqlite+aiosqlite:///path)"
            ) from exc
        backend, _, driver = url.drivername.partition("+")
        if backend not in ASYNC_DRIVER_NAMES:
            raise ValueError(
                "tradeguard runs on PostgreSQL (postgresql+asyncpg://...) or SQLite (sqlite+aiosqlite:///...)"
            )
        if driver:
            return value
        url = url.set(drivername=ASYNC_DRIVER_NAMES[backend])
        sslmode = url.query.get("sslmode")
        if sslmode is not None and backend != "sqlite":
            url = url.difference_update_query(["sslmode"]).update_query_dict({"ssl": sslmode})
        return url.render_as_string(hide_password=False)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'tradeguard.db'}"

    def notifier_names(self) -> list[str]:
        names = []
        if self.webhook_url:
            names.append("webhook")
        if self.telegram_bot_token and self.telegram_chat_id:
            names.append("telegram")
        return names

    def resolved_jwt_secret(self) -> str:
        return self.jwt_secret or self._kept_key("jwt.key", lambda: secrets.token_urlsafe(48))

    def resolved_secret_key(self) -> str:
        return self.secret_key or self._kept_key("secret.key", lambda: Fernet.generate_key().decode())

    def _kept_key(self, file_name: str, generate) -> str:
        """An embedded install keeps generated keys on disk, so tokens and device secrets survive a restart."""
        key_file = self.data_dir / file_name
        if key_file.exists():
            return key_file.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = generate()
        key_file.write_text(key)
        key_file.chmod(0o600)
        return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
