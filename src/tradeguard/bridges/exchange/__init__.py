"""Exchange accounts as bridges: `tradeguard bridge ccxt --config FILE` serves every `[[accounts]]` entry.

```toml
[[accounts]]
name = "binance-main"            # unique: names the account in the log and the journal
exchange = "binanceusdm"         # Binance USDⓈ-M futures, the one exchange supported
api_key_env = "BINANCE_API_KEY"  # or api_key / api_key_file
api_secret_file = "binance.secret"  # or api_secret / api_secret_env
device_id = "dev_3f9a1c2b7d4e5f60"
secret_env = "TRADEGUARD_DEVICE_SECRET"  # or secret / secret_file
watch = ["BTCUSDT", "ETHUSDT"]   # quoted in every snapshot, held or not
settle_currency = "USDT"         # the wallet reported as balance and equity
api_url = "https://fapi.binance.com"  # optional: another REST base (a local server in tests)
demo = false                     # Binance's demo trading (demo-fapi.binance.com)
timeout_seconds = 10
history_hours = 24               # how far back the first reading looks for closed deals (at most 168)
rate_limit_ms = 50               # ccxt's spacing per unit of request weight (accounts on one IP share 2400/min)
options = {}                     # passed to ccxt's client options
```
"""

from __future__ import annotations

from typing import Any

from tradeguard.bridges.broker import Binding
from tradeguard.bridges.config import BridgeFile, ConfigError, device_credentials, secret
from tradeguard.bridges.exchange.account import ExchangeAccount

EXCHANGES = ("binanceusdm",)
KEYS = {
    "name",
    "exchange",
    *(f"{key}{suffix}" for key in ("api_key", "api_secret", "secret") for suffix in ("", "_env", "_file")),
    "device_id",
    "watch",
    "settle_currency",
    "api_url",
    "demo",
    "timeout_seconds",
    "history_hours",
    "rate_limit_ms",
    "options",
}
MAX_HISTORY_HOURS = 7 * 24
"""Binance answers userTrades for at most 7 days from a start time."""


def bindings_from_config(file: BridgeFile) -> list[Binding]:
    entries = file.tables.get("accounts")
    if not isinstance(entries, list) or not entries or not all(isinstance(entry, dict) for entry in entries):
        raise ConfigError(f"{file.path}: at least one [[accounts]] table is required")
    bindings = []
    for index, entry in enumerate(entries):
        where = f"accounts[{index}]"
        account = _account(file, entry, where)
        broker = _broker_class(file)(account)
        bindings.append(Binding(account.name, broker, device_credentials(file, entry, where)))
    names = [binding.name for binding in bindings]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ConfigError(f"{file.path}: accounts.name must be unique; {duplicated} appear more than once")
    return bindings


def _broker_class(file: BridgeFile) -> type:
    # ccxt is an optional dependency: imported only when a bridge runs.
    try:
        from tradeguard.bridges.exchange.binance_usdm import BinanceUsdmBroker
    except ModuleNotFoundError as error:
        if error.name != "ccxt":
            raise
        raise ConfigError(
            f'{file.path}: the exchange bridge needs ccxt: pip install "tradeguard[ccxt]"'
        ) from None
    return BinanceUsdmBroker


def _account(file: BridgeFile, entry: dict[str, Any], where: str) -> ExchangeAccount:
    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise ConfigError(f"{file.path}: {where} has unknown keys {unknown}")
    name = _text(file, entry, where, "name")
    exchange = entry.get("exchange")
    if exchange not in EXCHANGES:
        raise ConfigError(
            f"{file.path}: {where}.exchange must be one of {sorted(EXCHANGES)}, not {exchange!r}"
        )
    watch = entry.get("watch", [])
    if not isinstance(watch, list) or not all(isinstance(symbol, str) and symbol for symbol in watch):
        raise ConfigError(f'{file.path}: {where}.watch must be a list of symbols such as "BTCUSDT"')
    api_url = entry.get("api_url")
    if api_url is not None and (
        not isinstance(api_url, str) or not api_url.startswith(("http://", "https://"))
    ):
        raise ConfigError(f"{file.path}: {where}.api_url must start with http:// or https://")
    demo = entry.get("demo", False)
    if not isinstance(demo, bool):
        raise ConfigError(f"{file.path}: {where}.demo must be true or false")
    options = entry.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{file.path}: {where}.options must be a table")
    return ExchangeAccount(
        name=name,
        api_key=secret(file, entry, where, "api_key"),
        api_secret=secret(file, entry, where, "api_secret"),
        watch=tuple(symbol.upper() for symbol in watch),
        settle_currency=_text(file, entry, where, "settle_currency", "USDT").upper(),
        api_url=api_url,
        demo=demo,
        timeout_seconds=_number(file, entry, where, "timeout_seconds", 10.0, 600),
        history_hours=_number(file, entry, where, "history_hours", 24.0, MAX_HISTORY_HOURS),
        rate_limit_ms=_number(file, entry, where, "rate_limit_ms", 50.0, 10_000)
        if "rate_limit_ms" in entry
        else None,
        options=options,
    )


def _text(file: BridgeFile, entry: dict[str, Any], where: str, key: str, default: str | None = None) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{file.path}: {where}.{key} is required, a non-empty string")
    return value


def _number(
    file: BridgeFile, entry: dict[str, Any], where: str, key: str, default: float, most: float
) -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= most:
        raise ConfigError(
            f"{file.path}: {where}.{key} must be a number > 0 and at most {most}, not {value!r}"
        )
    return float(value)
