"""The platform's exposure: what the followers' open positions add up to, per instrument and per signal.

Volumes are in lots; buys count positive and sells negative in the net, both positive in the gross.
Floating P&L stays in each account's own currency: sums are kept per currency, never across them.
A 1 % move's cost is what the positions lose if the instrument's price moves 1 % against their net
side; it is priced in the instrument's quote currency, which need not be any account's currency.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from tradeguard.domain.instruments import InstrumentTable, quote_currency, symbol_root
from tradeguard.domain.model import Side

ONE_PERCENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class OpenLot:
    """One open position as exposure sees it."""

    account_id: int
    account_currency: str
    symbol: str
    side: Side
    volume: Decimal
    current_price: Decimal
    floating_pnl: Decimal
    signal_id: str | None = None


@dataclass(frozen=True, slots=True)
class SymbolExposure:
    """An instrument's positions across accounts: `symbol` is the instrument (EURUSD), `broker_symbols`
    the names the brokers hold it under (EURUSD.m, EURUSD)."""

    symbol: str
    broker_symbols: tuple[str, ...]
    net_volume: Decimal
    gross_volume: Decimal
    floating_pnl: Mapping[str, Decimal]
    positions: int
    accounts: int
    one_percent_move_cost: Decimal
    cost_currency: str | None
    cost_currency_differs: bool
    """Whether some account holding the instrument keeps its books in another currency than the cost's
    (always so when the quote currency is unknown)."""


@dataclass(frozen=True, slots=True)
class SignalExposure:
    signal_id: str
    symbols: tuple[SymbolExposure, ...]


def exposure_by_symbol(lots: Iterable[OpenLot], instruments: InstrumentTable) -> tuple[SymbolExposure, ...]:
    """One entry per instrument held, by instrument name."""
    by_symbol: dict[str, list[OpenLot]] = defaultdict(list)
    for lot in lots:
        by_symbol[symbol_root(lot.symbol)].append(lot)
    return tuple(_symbol_exposure(symbol, by_symbol[symbol], instruments) for symbol in sorted(by_symbol))


def exposure_by_signal(lots: Iterable[OpenLot], instruments: InstrumentTable) -> tuple[SignalExposure, ...]:
    """One entry per signal with open positions; positions of no signal are left out."""
    by_signal: dict[str, list[OpenLot]] = defaultdict(list)
    for lot in lots:
        if lot.signal_id is not None:
            by_signal[lot.signal_id].append(lot)
    return tuple(
        SignalExposure(signal_id, exposure_by_symbol(by_signal[signal_id], instruments))
        for signal_id in sorted(by_signal)
    )


def pnl_by_currency(lots: Iterable[OpenLot]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for lot in lots:
        totals[lot.account_currency] += lot.floating_pnl
    return dict(sorted(totals.items()))


def _symbol_exposure(symbol: str, lots: list[OpenLot], instruments: InstrumentTable) -> SymbolExposure:
    net = sum((lot.side.sign * lot.volume for lot in lots), Decimal(0))
    currency = quote_currency(symbol)
    return SymbolExposure(
        symbol=symbol,
        broker_symbols=tuple(sorted({lot.symbol for lot in lots})),
        net_volume=net,
        gross_volume=sum((lot.volume for lot in lots), Decimal(0)),
        floating_pnl=pnl_by_currency(lots),
        positions=len(lots),
        accounts=len({lot.account_id for lot in lots}),
        one_percent_move_cost=_one_percent_move_cost(net, lots, instruments),
        cost_currency=currency,
        cost_currency_differs=any(lot.account_currency != currency for lot in lots),
    )


def _one_percent_move_cost(net: Decimal, lots: list[OpenLot], instruments: InstrumentTable) -> Decimal:
    """The loss if every position's price moved 1 % against the net side: each at its own price and
    contract size, since brokers quote the same instrument slightly apart and may size lots apart."""
    if net == 0:
        return Decimal(0)
    # Looked up once per broker symbol: an instrument is held by many accounts under few names.
    contract_sizes = {
        symbol: instruments.get(symbol).contract_size for symbol in {lot.symbol for lot in lots}
    }
    value = sum(
        (lot.side.sign * lot.volume * contract_sizes[lot.symbol] * lot.current_price for lot in lots),
        Decimal(0),
    )
    # Long on the net, the price falls and the positions lose 1 % of their signed value; short, it rises.
    return value * ONE_PERCENT if net > 0 else -value * ONE_PERCENT
