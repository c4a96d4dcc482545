"""One exchange account of the bridge's configuration: importable without ccxt, which the brokers need."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ExchangeAccount:
    """One `[[accounts]]` entry of the bridge's configuration, the device aside."""

    name: str
    api_key: str
    api_secret: str
    watch: tuple[str, ...] = ()
    settle_currency: str = "USDT"
    api_url: str | None = None
    demo: bool = False
    timeout_seconds: float = 10.0
    history_hours: float = 24.0
    rate_limit_ms: float | None = None
    """ccxt's spacing between requests per unit of Binance weight; None: ccxt's own (50 ms)."""
    options: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"ExchangeAccount(name={self.name!r}, api_key=<hidden>, api_secret=<hidden>)"
