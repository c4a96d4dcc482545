"""Instrument maths: pip sizes and contract sizes, so tolerances mean the same on every symbol."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

_FX_CURRENCIES = frozenset(
    [
        "USD",
        "EUR",
        "GBP",
        "JPY",
        "CHF",
        "CAD",
        "AUD",
        "NZD",
        "SEK",
        "NOK",
        "DKK",
        "PLN",
        "HUF",
        "CZK",
        "TRY",
        "ZAR",
        "MXN",
        "SGD",
        "HKD",
        "CNH",
    ]
)
_CRYPTO_BASES = frozenset(["BTC", "ETH", "LTC", "XRP", "SOL", "ADA", "DOGE", "BNB", "DOT"])


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    pip_size: Decimal
    contract_size: Decimal

    def pips_to_price(self, pips: Decimal) -> Decimal:
        return pips * self.pip_size

    def price_to_pips(self, price_distance: Decimal) -> Decimal:
        return price_distance / self.pip_size


def normalize_symbol(symbol: str) -> str:
    """Symbols are compared and stored upper-case, without surrounding blanks."""
    return symbol.strip().upper()


# Reconciliation compares every open trade with every position, and an account has few symbols.
@functools.lru_cache(maxsize=4096)
def symbol_root(symbol: str) -> str:
    """The instrument behind a broker's symbol: EURUSD.m, EURUSD-ECN and eurusd are all EURUSD."""
    letters = []
    for char in normalize_symbol(symbol):
        if char.isalnum():
            letters.append(char)
        else:
            break
    return "".join(letters)


def default_instrument(symbol: str) -> Instrument:
    """The convention when no override exists for a symbol.

    FX pairs: 0.0001 per pip (0.01 when the quote currency is JPY), 100,000 units a lot.
    Metals: XAU 0.01 a pip and 100 oz a lot, XAG 0.001 and 5,000 oz.
    Crypto: 1.0 a pip and 1 coin a lot. Anything else (indices, CFDs): 1.0 and 1, to be
    overridden per deployment.
    """
    name = normalize_symbol(symbol)
    base = symbol_root(name)
    if base.startswith("XAU"):
        return Instrument(name, Decimal("0.01"), Decimal("100"))
    if base.startswith("XAG"):
        return Instrument(name, Decimal("0.001"), Decimal("5000"))
    if len(base) >= 6 and base[:3] in _CRYPTO_BASES:
        return Instrument(name, Decimal("1"), Decimal("1"))
    if len(base) == 6 and base[:3] in _FX_CURRENCIES and base[3:] in _FX_CURRENCIES:
        pip = Decimal("0.01") if base[3:] == "JPY" else Decimal("0.0001")
        return Instrument(name, pip, Decimal("100000"))
    return Instrument(name, Decimal("1"), Decimal("1"))


def quote_currency(symbol: str) -> str | None:
    """The currency a symbol's price is quoted in, when its name tells: EURUSD → USD, XAUUSD → USD,
    BTCEUR → EUR; None for indices and other CFDs, whose names do not."""
    base = symbol_root(symbol)
    if base.startswith(("XAU", "XAG")) or (len(base) >= 6 and base[:3] in _CRYPTO_BASES):
        quote = base[3:6]
    elif len(base) == 6 and base[:3] in _FX_CURRENCIES:
        quote = base[3:]
    else:
        return None
    return quote if quote in _FX_CURRENCIES else None


@dataclass(frozen=True, slots=True)
class InstrumentTable:
    """Per-deployment overrides on top of the conventions of `default_instrument`."""

    overrides: Mapping[str, Instrument]

    def get(self, symbol: str) -> Instrument:
        name = normalize_symbol(symbol)
        found = self.overrides.get(name) or self.overrides.get(symbol_root(name))
        if found is not None:
            return found
        return default_instrument(name)
