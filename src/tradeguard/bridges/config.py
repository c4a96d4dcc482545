"""A bridge's configuration file (TOML): where tradeguard is, the device's credentials, the timings.

Each platform adds its own table (`[mt5]`, `[[accounts]]` for exchanges) and reads it itself;
this module reads what every bridge shares and names the key at fault in every error.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHARED_TABLES = ("tradeguard", "bridge")
TRADEGUARD_KEYS = {"url", "device_id", "secret", "secret_env", "secret_file"}


class ConfigError(ValueError):
    """The configuration file is wrong; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class DeviceCredentials:
    """A device registered for one account (`POST /api/v1/accounts/{id}/devices`)."""

    device_id: str
    secret: str

    def __repr__(self) -> str:
        return f"DeviceCredentials(device_id={self.device_id!r}, secret=<hidden>)"


@dataclass(frozen=True, slots=True)
class BridgeTimings:
    snapshot_seconds: float = 5.0
    """A snapshot goes out at least this often."""
    read_seconds: float = 1.0
    """The broker is read this often; a change of positions or equity sends a snapshot at once."""
    command_poll_seconds: float = 2.0
    equity_change_percent: float = 0.5
    """Equity moving by more than this since the last snapshot sent counts as a change."""
    max_backoff_seconds: float = 30.0
    """The longest wait between attempts while tradeguard is unreachable."""


@dataclass(frozen=True, slots=True)
class BridgeFile:
    """The parts of the file every bridge reads, and the whole file for the platform's own tables."""

    path: Path
    url: str
    timings: BridgeTimings
    journal_path: Path
    tables: dict[str, Any]

    def relative(self, value: str) -> Path:
        """A path from the file, taken relative to the file's folder."""
        return _relative(self.path, value)

    def refuse_unknown_tables(self, *platform_tables: str) -> None:
        """A table the bridge would not read (a misspelt `[brigde]`) is an error, not its defaults."""
        known = (*SHARED_TABLES, *platform_tables)
        unknown = sorted(set(self.tables) - set(known))
        if unknown:
            raise ConfigError(
                f"{self.path}: [{unknown[0]}] is not a table of this bridge (its tables: "
                f"{', '.join(f'[{name}]' for name in known)})"
            )


def load(path: Path) -> BridgeFile:
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    tradeguard = ConfigTable.named(path, tables, "tradeguard")
    tradeguard.refuse_unknown(TRADEGUARD_KEYS)
    url = tradeguard.required_text("url")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{path}: tradeguard.url must start with http:// or https://, not {url!r}")
    bridge = ConfigTable.named(path, tables, "bridge", required=False)
    bridge.refuse_unknown({"journal", *(field.name for field in dataclasses.fields(BridgeTimings))})
    defaults = BridgeTimings()
    timings = BridgeTimings(
        **{
            field.name: bridge.number(field.name, default=getattr(defaults, field.name), most=math.inf)
            for field in dataclasses.fields(BridgeTimings)
        }
    )
    journal = bridge.text("journal") or "tradeguard-bridge.sqlite3"
    return BridgeFile(path, url.rstrip("/"), timings, _relative(path, journal), tables)


class ConfigTable:
    """One table of the file, read key by key; every error names the file and the key."""

    def __init__(self, path: Path, table: dict[str, Any], where: str) -> None:
        self.path = path
        self.table = table
        self.where = where

    @classmethod
    def named(cls, path: Path, tables: dict[str, Any], name: str, *, required: bool = True) -> ConfigTable:
        table = tables.get(name, None if required else {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: a [{name}] table is required")
        return cls(path, table, name)

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {self.where}.{key} {problem}")

    def refuse_unknown(self, keys: set[str]) -> None:
        unknown = sorted(set(self.table) - keys)
        if unknown:
            raise self.error(unknown[0], f"is not a setting (the settings: {', '.join(sorted(keys))})")

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.table.get(key, default)
        if value is not None and (not isinstance(value, str) or not value):
            raise self.error(key, f"must be a non-empty string, not {value!r}")
        return value

    def required_text(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise self.error(key, "is required, a non-empty string")
        return value

    def integer(self, key: str, *, default: int | None = None, minimum: int = 0) -> int:
        if key not in self.table:
            if default is None:
                raise self.error(key, "is required, an integer")
            return default
        value = self.table[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"must be an integer ≥ {minimum}, not {value!r}")
        return value

    def number(self, key: str, *, default: float, most: float) -> float:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= most:
            limit = "" if most == math.inf else f" and at most {most}"
            raise self.error(key, f"must be a number > 0{limit}, not {value!r}")
        return float(value)

    def flag(self, key: str, *, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def symbols(self, key: str) -> tuple[str, ...]:
        """A list of symbol names, each once, spelled as given (an MT5 suffix such as `.m` is case-sensitive)."""
        value = self.table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise self.error(key, f'must be a list of symbol names such as "EURUSD", not {value!r}')
        return tuple(dict.fromkeys(value))

    def has_secret(self, key: str) -> bool:
        return any(name in self.table for name in _secret_keys(key))

    def secret(self, key: str) -> str:
        """A secret given inline as `key`, as `key_env` (an environment variable) or `key_file`."""
        given = [name for name in _secret_keys(key) if name in self.table]
        if len(given) != 1:
            raise ConfigError(f"{self.path}: {self.where} needs exactly one of {key}, {key}_env, {key}_file")
        name = given[0]
        value = self.required_text(name)
        if name.endswith("_env"):
            found = os.environ.get(value)
            if not found:
                raise self.error(name, f"names the environment variable {value}, which is not set")
            return found
        if name.endswith("_file"):
            try:
                return _relative(self.path, value).read_text(encoding="utf-8").strip()
            except OSError as error:
                raise self.error(name, f"names {value}, which cannot be read: {error.strerror}") from None
        return value

    def device_credentials(self) -> DeviceCredentials:
        """`device_id` and the secret, given as `secret`, `secret_env` or `secret_file`."""
        return DeviceCredentials(self.required_text("device_id"), self.secret("secret"))


def _secret_keys(key: str) -> tuple[str, str, str]:
    return key, f"{key}_env", f"{key}_file"


def _relative(path: Path, value: str) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else path.parent / candidate
