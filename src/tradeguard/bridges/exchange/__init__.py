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

from tradeguard.bridges.broker import Binding
from tradeguard.bridges.config import BridgeFile, ConfigError, ConfigTable
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
    file.refuse_unknown_tables("accounts")
    tradeguard = ConfigTable.named(file.path, file.tables, "tradeguard")
    device_keys = sorted(set(tradeguard.table) - {"url"})
    if device_keys:
        raise tradeguard.error(
            device_keys[0], "is not read here: each [[accounts]] entry names its own device_id and secret"
        )
    entries = file.tables.get("accounts")
    if not isinstance(entries, list) or not entries or not all(isinstance(entry, dict) for entry in entries):
        raise ConfigError(f"{file.path}: at least one [[accounts]] table is required")
    bindings = []
    for index, entry in enumerate(entries):
        table = ConfigTable(file.path, entry, f"accounts[{index}]")
        account = _account(table)
        broker = _broker_class(file)(account)
        bindings.append(Binding(account.name, broker, table.device_credentials()))
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


def _account(table: ConfigTable) -> ExchangeAccount:
    table.refuse_unknown(KEYS)
    exchange = table.table.get("exchange")
    if exchange not in EXCHANGES:
        raise table.error("exchange", f"must be one of {sorted(EXCHANGES)}, not {exchange!r}")
    api_url = table.text("api_url")
    if api_url is not None and not api_url.startswith(("http://", "https://")):
        raise table.error("api_url", "must start with http:// or https://")
    options = table.table.get("options", {})
    if not isinstance(options, dict):
        raise table.error("options", "must be a table")
    return ExchangeAccount(
        name=table.required_text("name"),
        api_key=table.secret("api_key"),
        api_secret=table.secret("api_secret"),
        watch=tuple(symbol.upper() for symbol in table.symbols("watch")),
        settle_currency=(table.text("settle_currency") or "USDT").upper(),
        api_url=api_url,
        demo=table.flag("demo", default=False),
        timeout_seconds=table.number("timeout_seconds", default=10.0, most=600),
        history_hours=table.number("history_hours", default=24.0, most=MAX_HISTORY_HOURS),
        rate_limit_ms=table.number("rate_limit_ms", default=50.0, most=10_000)
        if "rate_limit_ms" in table.table
        else None,
        options=options,
    )
