"""A bridge's configuration file (TOML): where tradeguard is, the device's credentials, the timings.

Each platform adds its own table (`[mt5]`, `[[accounts]]` for exchanges) and reads it itself;
this module reads what every bridge shares and names the key at fault in every error.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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


def load(path: Path) -> BridgeFile:
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    tradeguard = _table(path, tables, "tradeguard")
    url = _string(path, tradeguard, "tradeguard", "url")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{path}: tradeguard.url must start with http:// or https://, not {url!r}")
    bridge = tables.get("bridge", {})
    if not isinstance(bridge, dict):
        raise ConfigError(f"{path}: [bridge] must be a table")
    timings = _timings(path, bridge)
    journal = bridge.get("journal", "tradeguard-bridge.sqlite3")
    if not isinstance(journal, str) or not journal:
        raise ConfigError(f"{path}: bridge.journal must be a file name")
    return BridgeFile(path, url.rstrip("/"), timings, _relative(path, journal), tables)


def device_credentials(file: BridgeFile, table: dict[str, Any], where: str) -> DeviceCredentials:
    """`device_id` and the secret, given as `secret`, `secret_env` (a variable's name) or `secret_file`."""
    device_id = _string(file.path, table, where, "device_id")
    return DeviceCredentials(device_id, secret(file, table, where, "secret"))


def secret(file: BridgeFile, table: dict[str, Any], where: str, key: str) -> str:
    """A secret given inline as `key`, as `key_env` (an environment variable) or `key_file`."""
    given = [name for name in (key, f"{key}_env", f"{key}_file") if name in table]
    if len(given) != 1:
        raise ConfigError(f"{file.path}: {where} needs exactly one of {key}, {key}_env, {key}_file")
    name = given[0]
    value = _string(file.path, table, where, name)
    if name.endswith("_env"):
        found = os.environ.get(value)
        if not found:
            raise ConfigError(f"{file.path}: {where}.{name}: the environment variable {value} is not set")
        return found
    if name.endswith("_file"):
        try:
            return file.relative(value).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError(f"{file.path}: {where}.{name}: cannot read {value}: {error.strerror}") from None
    return value


def _relative(path: Path, value: str) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else path.parent / candidate


def _timings(path: Path, bridge: dict[str, Any]) -> BridgeTimings:
    values = {}
    for name in BridgeTimings.__dataclass_fields__:
        if name in bridge:
            value = bridge[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"{path}: bridge.{name} must be a number > 0, not {value!r}")
            values[name] = float(value)
    return BridgeTimings(**values)


def _table(path: Path, tables: dict[str, Any], name: str) -> dict[str, Any]:
    table = tables.get(name)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: a [{name}] table is required")
    return table


def _string(path: Path, table: dict[str, Any], where: str, key: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: {where}.{key} is required, a non-empty string")
    return value
