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

from tradeguard.bridges.config import BridgeFile, ConfigError, ConfigTable

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
    table = ConfigTable.named(file.path, file.tables, "mt5")
    table.refuse_unknown(KEYS)
    settings = Mt5Settings(
        login=table.integer("login", minimum=1),
        password=table.secret("password") if table.has_secret("password") else None,
        server=table.text("server"),
        path=table.text("path"),
        server_utc_offset_seconds=_offset(table),
        deviation=table.integer("deviation", default=20),
        magic=table.integer("magic", default=20251125),
        watch=table.symbols("watch"),
        max_retries=table.integer("max_retries", default=3),
    )
    if settings.server_utc_offset_seconds is None and not settings.watch:
        raise ConfigError(
            f'{file.path}: mt5.server_utc_offset = "auto" derives the server\'s offset from a quoting '
            "symbol: list at least one in mt5.watch, or give the offset in hours"
        )
    return settings


def _offset(table: ConfigTable) -> int | None:
    value = table.table.get("server_utc_offset", AUTO)
    if value == AUTO:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not -14 <= value <= 14:
        raise table.error("server_utc_offset", f'must be "auto" or hours from -14 to 14, not {value!r}')
    seconds = round(value * 3600)
    if seconds % 900:
        raise table.error("server_utc_offset", f"must be whole quarter hours, not {value!r}")
    return seconds
