"""The market: prices every simulated broker shares, one seeded random walk per symbol.

Prices are exact decimals at each symbol's precision; the scenario adds trends and gaps on top of
the walk. Amounts in another currency are converted to the account currency at the mid price.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from types import MappingProxyType

from tradeguard.domain.instruments import Instrument, default_instrument
from tradeguard.domain.model import Side

ACCOUNT_CURRENCY = "USD"


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """How the simulated broker quotes one symbol and how restless it is.

    The pip and the contract are tradeguard's (`instrument`), so a "3 pip" slippage here is 3 pips
    to reconciliation too; the quoting and the movement are the simulation's own.
    """

    instrument: Instrument
    opening_bid: Decimal
    points_per_pip: int
    """How finely the broker quotes: 10 points a pip (fractional pips, as FX brokers quote), or 1."""
    spread_points: int
    step_points: int
    """A random step moves the bid by at most twice this many points."""
    typical_stop_pips: int

    @property
    def symbol(self) -> str:
        return self.instrument.symbol

    @property
    def pip_size(self) -> Decimal:
        return self.instrument.pip_size

    @property
    def contract_size(self) -> Decimal:
        return self.instrument.contract_size

    @property
    def point(self) -> Decimal:
        return self.pip_size / self.points_per_pip

    @property
    def digits(self) -> int:
        return -self.point.as_tuple().exponent

    @property
    def spread(self) -> Decimal:
        return self.point * self.spread_points

    @property
    def base_currency(self) -> str:
        return self.symbol[:3]

    @property
    def quote_currency(self) -> str:
        return self.symbol[3:6]

    def round(self, price: Decimal) -> Decimal:
        return price.quantize(self.point, rounding=ROUND_HALF_EVEN)

    def pips(self, count: int) -> Decimal:
        return self.pip_size * count


# `default_instrument`: what tradeguard reconciles by where a deployment overrides nothing; the
# simulator knows tradeguard only over HTTP, and so none of a deployment's overrides.
SYMBOLS: Mapping[str, SymbolSpec] = MappingProxyType(
    {
        spec.symbol: spec
        for spec in (
            SymbolSpec(default_instrument("EURUSD"), Decimal("1.08500"), 10, 8, 12, 15),
            SymbolSpec(default_instrument("GBPUSD"), Decimal("1.27000"), 10, 12, 15, 20),
            SymbolSpec(default_instrument("USDJPY"), Decimal("151.500"), 10, 10, 15, 20),
            SymbolSpec(default_instrument("XAUUSD"), Decimal("2650.00"), 1, 25, 60, 400),
        )
    }
)


@dataclass(frozen=True, slots=True)
class Price:
    symbol: str
    bid: Decimal
    ask: Decimal

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2

    def to_open(self, side: Side) -> Decimal:
        return self.ask if side is Side.BUY else self.bid

    def to_close(self, side: Side) -> Decimal:
        return self.bid if side is Side.BUY else self.ask


@dataclass(slots=True)
class _Trend:
    pct_per_step: Decimal
    steps_left: int


class Market:
    """Prices shared by every simulated broker: a seeded random walk per symbol.

    The walk moves in whole points (the sum of two uniform draws, so small moves are likelier than
    large ones), which keeps every price an exact decimal at the symbol's precision.
    """

    def __init__(self, rng: random.Random, symbols: Mapping[str, SymbolSpec] = SYMBOLS) -> None:
        self._rng = rng
        self.specs = dict(symbols)
        self._bids = {symbol: spec.opening_bid for symbol, spec in self.specs.items()}
        self._trends: dict[str, _Trend] = {}

    def price(self, symbol: str) -> Price:
        spec = self.specs[symbol]
        bid = self._bids[symbol]
        return Price(symbol, bid, bid + spec.spread)

    def prices(self) -> list[Price]:
        return [self.price(symbol) for symbol in self.specs]

    def walk(self) -> None:
        for symbol, spec in self.specs.items():
            step = self._rng.randint(-spec.step_points, spec.step_points)
            step += self._rng.randint(-spec.step_points, spec.step_points)
            bid = self._bids[symbol] + spec.point * step
            trend = self._trends.get(symbol)
            if trend is not None:
                bid *= 1 + trend.pct_per_step / 100
                trend.steps_left -= 1
                if trend.steps_left == 0:
                    del self._trends[symbol]
            self.set_bid(symbol, bid)

    def start_trend(self, symbol: str, pct_per_step: Decimal, steps: int) -> None:
        self._trends[symbol] = _Trend(pct_per_step, steps)

    def gap(self, symbol: str, pct: Decimal) -> None:
        self.set_bid(symbol, self._bids[symbol] * (1 + pct / 100))

    def in_account_currency(self, amount: Decimal, currency: str) -> Decimal:
        """An amount in `currency` in USD, at the mid price of the pair that links them."""
        if currency == ACCOUNT_CURRENCY:
            return amount
        if f"{ACCOUNT_CURRENCY}{currency}" in self.specs:  # USDJPY: JPY per USD
            return amount / self.price(f"{ACCOUNT_CURRENCY}{currency}").mid
        if f"{currency}{ACCOUNT_CURRENCY}" in self.specs:  # EURUSD: USD per EUR
            return amount * self.price(f"{currency}{ACCOUNT_CURRENCY}").mid
        raise ValueError(f"no pair converts {currency} to {ACCOUNT_CURRENCY}")

    def set_bid(self, symbol: str, bid: Decimal) -> None:
        """Move the symbol to `bid`, rounded to its precision (and never below one point)."""
        spec = self.specs[symbol]
        self._bids[symbol] = max(spec.round(bid), spec.point)
