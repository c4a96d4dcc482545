"""The `[mt5]` table of a bridge's configuration file.

```toml
[mt5]
login = 5012345                 # required: the account that must be logged in
password_env = "MT5_PASSWORD"   # optional (or password / password_file), passed to initialize()
server = "Broker-Demo"          # optional, passed to initialize()
path = 'C:\\Program Files\\Broker MetaTrader 5\\terminal64.exe'  # optional
server_utc_offset = "auto"      # or hours, e.g. 2 or 3
deviation = 20                  # points
magic = 20251125
watch = ["EURUSD", "XAUUSD"]    # symbols quoted besides those held
max_retries = 3                 # requotes (and partial fills) retried at a fresh tick
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tradeguard.bridges.config import BridgeFile, ConfigError, secret

AUTO = "auto"
KEYS = {
    "login",
    "password",
    "password_env",
    "password_file",
    "server",
    "path",
    "server_utc_offset",
    "deviation",
    "magic",
    "watch",
    "max_retries",
}


@dataclass(frozen=True, slots=True)
class Mt5Settings:
    login: int
    password: str | None = None
    server: str | None = None
    path: str | None = None
    server_utc_offset_seconds: int | None = None
    """None: derived from the ticks ("auto")."""
    deviation: int = 20
    magic: int = 20251125
    watch: tuple[str, ...] = ()
    max_retries: int = 3

    def __repr__(self) -> str:
        hidden = "<hidden>" if self.password is not None else None
        return f"Mt5Settings(login={self.login}, server={self.server!r}, password={hidden})"


def read_settings(file: BridgeFile) -> Mt5Settings:
    table = file.tables.get("mt5")
    if not isinstance(table, dict):
        raise ConfigError(f"{file.path}: an [mt5] table is required")
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise ConfigError(
            f"{file.path}: mt5.{unknown[0]} is not a setting (the settings: {', '.join(sorted(KEYS))})"
        )
    password_given = any(key in table for key in ("password", "password_env", "password_file"))
    settings = Mt5Settings(
        login=_integer(file, table, "login", required=True, minimum=1),
        password=secret(file, table, "mt5", "password") if password_given else None,
        server=_text(file, table, "server"),
        path=_text(file, table, "path"),
        server_utc_offset_seconds=_offset(file, table.get("server_utc_offset", AUTO)),
        deviation=_integer(file, table, "deviation", default=20, minimum=0),
        magic=_integer(file, table, "magic", default=20251125, minimum=0),
        watch=_symbols(file, table.get("watch", [])),
        max_retries=_integer(file, table, "max_retries", default=3, minimum=0),
    )
    if settings.server_utc_offset_seconds is None and not settings.watch:
        raise ConfigError(
            f'{file.path}: mt5.server_utc_offset = "auto" derives the server\'s offset from a quoting '
            "symbol: list at least one in mt5.watch, or give the offset in hours"
        )
    return settings


def _integer(
    file: BridgeFile, table: dict[str, Any], key: str, *, required=False, default=0, minimum=0
) -> int:
    if key not in table:
        if required:
            raise ConfigError(f"{file.path}: mt5.{key} is required, an integer")
        return default
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{file.path}: mt5.{key} must be an integer ≥ {minimum}, not {value!r}")
    return value


def _text(file: BridgeFile, table: dict[str, Any], key: str) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{file.path}: mt5.{key} must be a non-empty string, not {value!r}")
    return value


def _offset(file: BridgeFile, value: Any) -> int | None:
    if value == AUTO:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not -14 <= value <= 14:
        raise ConfigError(
            f'{file.path}: mt5.server_utc_offset must be "auto" or hours from -14 to 14, not {value!r}'
        )
    seconds = round(value * 3600)
    if seconds % 900:
        raise ConfigError(f"{file.path}: mt5.server_utc_offset must be whole quarter hours, not {value!r}")
    return seconds


def _symbols(file: BridgeFile, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f"{file.path}: mt5.watch must be a list of symbol names, not {value!r}")
    return tuple(dict.fromkeys(value))
