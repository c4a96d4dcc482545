"""Profit and loss ratios shown next to positions and accounts."""

from __future__ import annotations

from decimal import Decimal

from tradeguard.domain.model import Side

_HUNDRED = Decimal(100)
_PCT_PLACES = Decimal("0.0001")


def price_move_pct(side: Side, entry_price: Decimal, current_price: Decimal) -> Decimal:
    """How far price has moved in the position's favour, in percent of the entry price."""
    if entry_price <= 0:
        return Decimal(0)
    move = (current_price - entry_price) / entry_price * _HUNDRED * side.sign
    return move.quantize(_PCT_PLACES)


def pnl_pct_of_balance(pnl: Decimal, balance: Decimal | None) -> Decimal:
    if not balance or balance <= 0:
        return Decimal(0)
    return (pnl / balance * _HUNDRED).quantize(_PCT_PLACES)


def drawdown_pct(peak_equity: Decimal, equity: Decimal) -> Decimal:
    """(peak − equity) / peak × 100, never negative: equity above the peak is a new peak, not a gain."""
    if peak_equity <= 0 or equity >= peak_equity:
        return Decimal(0)
    return ((peak_equity - equity) / peak_equity * _HUNDRED).quantize(_PCT_PLACES)
