"""The MetaTrader 5 bridge: `tradeguard bridge mt5 --config FILE`.

The terminal is reached through the `MetaTrader5` package (Windows, the terminal in the same user
session), a module named with `--mt5-module` (the stand-in, `tradeguard.bridges.mt5.standin`), or
an RPyC server in front of a terminal under Wine (`--mt5-host`, `--mt5-port`).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from tradeguard.bridges.broker import Binding
from tradeguard.bridges.config import BridgeFile, ConfigError, ConfigTable
from tradeguard.bridges.mt5.settings import read_settings
from tradeguard.bridges.mt5.terminal_broker import TerminalBroker

OFFICIAL_PACKAGE = "MetaTrader5"
DEFAULT_RPYC_PORT = 18812


def bindings_from_config(
    file: BridgeFile, *, module: str | None, host: str | None, port: int | None
) -> list[Binding]:
    """The one account of the file's `[mt5]` table, reporting as the device its `[tradeguard]` table names."""
    file.refuse_unknown_tables("mt5")
    settings = read_settings(file)
    credentials = ConfigTable.named(file.path, file.tables, "tradeguard").device_credentials()
    package = load_package(module=module, host=host, port=port)
    return [Binding(f"mt5-{settings.login}", TerminalBroker(package, settings), credentials)]


def load_package(*, module: str | None, host: str | None, port: int | None) -> ModuleType | Any:
    if module is not None and (host is not None or port is not None):
        raise ConfigError("--mt5-module and --mt5-host/--mt5-port are alternatives: give one")
    if module is not None:
        try:
            return importlib.import_module(module)
        except ImportError as error:
            raise ConfigError(f"--mt5-module {module}: cannot import it: {error}") from None
    if host is not None or port is not None:
        from tradeguard.bridges.mt5.remote import RemotePackage

        try:
            return RemotePackage(host or "127.0.0.1", port or DEFAULT_RPYC_PORT)
        except ImportError:
            raise ConfigError('--mt5-host needs rpyc: pip install "tradeguard[mt5]"') from None
        except OSError as error:
            raise ConfigError(
                f"no RPyC server at {host or '127.0.0.1'}:{port or DEFAULT_RPYC_PORT}: {error}"
            ) from None
    try:
        return importlib.import_module(OFFICIAL_PACKAGE)
    except ImportError:
        raise ConfigError(
            'the MetaTrader5 package is not installed (Windows: pip install "tradeguard[mt5]"); '
            "on Linux, reach a terminal under Wine with --mt5-host/--mt5-port"
        ) from None
