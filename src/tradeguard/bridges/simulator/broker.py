"""The broker: one simulated trading account, its balance, positions and orders waiting to be filled.

The broker fills the orders the platform routes to it as the scenario says (cleanly, slipped, in
part, or never), closes what crosses its stops at the market, and reports the account as an MT5
bridge would (`snapshot`, and its history as `closed_deals`).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from tradeguard.bridges.simulator.market import ACCOUNT_CURRENCY, Market
from tradeguard.domain.model import CloseReason, Side

CENT = Decimal("0.01")
LOT = Decimal("0.01")


COPIER_MAGIC = 770001
"""The magic number of the simulated trade copier's orders: not the bridge's."""


@dataclass(frozen=True, slots=True)
class Order:
    """A trade to open at the broker: one the platform sent (tradeguard expects it), or one by hand."""

    trade_id: str | None
    """None for a trade opened on the broker by hand, unknown to the platform."""
    symbol: str
    side: Side
    volume: Decimal
    price: Decimal
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None


class Fill(enum.StrEnum):
    """How the broker treats an order."""

    CLEAN = "clean"
    SLIPPED = "slipped"
    """Filled a few pips worse than asked: entry_slippage."""
    PARTIAL = "partial"
    """Half the volume: partial_fill."""
    LOST = "lost"
    """Never filled: pending during the grace period, then missing_on_broker."""


@dataclass(slots=True)
class Position:
    ticket: int
    symbol: str
    side: Side
    volume: Decimal
    open_price: Decimal
    opened_at: datetime
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trade_id: str | None = None
    """None when the position was opened on the broker by hand, unknown to the platform."""


@dataclass(frozen=True, slots=True)
class ClosedPosition:
    """A deal in the broker's history: all or part of a position closed."""

    deal_id: int
    ticket: int
    symbol: str
    side: Side
    volume: Decimal
    close_price: Decimal
    profit: Decimal
    closed_at: datetime
    reason: CloseReason

    @property
    def why(self) -> str:
        return self.reason.value.replace("_", " ")

    def as_closed_deal(self) -> dict[str, Any]:
        """The deal as a snapshot's `closed_deals` item; the simulated broker charges no swap or commission."""
        return {
            "ticket": self.ticket,
            "deal_id": self.deal_id,
            "close_price": self.close_price,
            "profit": self.profit,
            "closed_at": self.closed_at,
            "reason": self.reason.value,
        }


@dataclass(frozen=True, slots=True)
class _QueuedOrder:
    due_step: int
    order: Order
    fill: Fill


class SimulatedBroker:
    """One trading account at the broker. Equity = balance + the open positions' profits, in USD."""

    def __init__(
        self,
        market: Market,
        rng: random.Random,
        tickets: Iterator[int],
        *,
        balance: Decimal,
        leverage: int = 100,
    ) -> None:
        self.market = market
        self.balance = balance
        self.positions: dict[str, Position] = {}
        self.history: list[ClosedPosition] = []
        self._rng = rng
        self._tickets = tickets
        self._leverage = leverage
        self._queue: list[_QueuedOrder] = []

    # What happens to the account.

    def place(self, order: Order, fill: Fill, *, due_step: int) -> None:
        if fill is not Fill.LOST:
            self._queue.append(_QueuedOrder(due_step, order, fill))

    def fill_due_orders(self, step: int, now: datetime) -> list[tuple[Position, Order, Fill]]:
        due = [queued for queued in self._queue if queued.due_step <= step]
        self._queue = [queued for queued in self._queue if queued.due_step > step]
        filled = []
        for queued in due:
            position = self._open(queued.order, queued.fill, now)
            filled.append((position, queued.order, queued.fill))
        return filled

    def open_by_hand(self, symbol: str, side: Side, volume: Decimal, now: datetime) -> Position:
        return self._add_position(
            Order(None, symbol, side, volume, self.market.price(symbol).to_open(side)), now
        )

    def trigger_stops(self, now: datetime) -> list[ClosedPosition]:
        """Close what crossed its stop loss or take profit, at the current price (a gap fills worse)."""
        closed = []
        for ticket, position in list(self.positions.items()):
            reason = _stop_crossed(position, self.market.price(position.symbol).to_close(position.side))
            if reason is not None:
                closed.append(self.close(ticket, reason=reason, at=now))
        return closed

    def close(
        self, ticket: str, volume: Decimal | None = None, *, reason: CloseReason, at: datetime
    ) -> ClosedPosition:
        """Close the position (or `volume` of it) at the current price; the profit goes to the balance.

        The deal goes into the history, as a broker's does.
        """
        position = self.positions[ticket]
        volume = position.volume if volume is None else min(volume, position.volume)
        price = self.market.price(position.symbol).to_close(position.side)
        profit = self._profit(position.symbol, position.side, volume, position.open_price, price)
        self.balance += profit
        if volume == position.volume:
            del self.positions[ticket]
        else:
            position.volume -= volume
        deal = ClosedPosition(
            len(self.history) + 1,
            position.ticket,
            position.symbol,
            position.side,
            volume,
            price,
            profit,
            at,
            reason,
        )
        self.history.append(deal)
        return deal

    # What the account looks like.

    def profit(self, position: Position) -> Decimal:
        price = self.market.price(position.symbol).to_close(position.side)
        return self._profit(position.symbol, position.side, position.volume, position.open_price, price)

    def equity(self) -> Decimal:
        return self.balance + sum((self.profit(position) for position in self.positions.values()), Decimal(0))

    def margin(self) -> Decimal:
        used = Decimal(0)
        for position in self.positions.values():
            spec = self.market.specs[position.symbol]
            units = position.volume * spec.contract_size
            if spec.base_currency == ACCOUNT_CURRENCY:
                used += units
            else:
                used += self.market.in_account_currency(units * position.open_price, spec.quote_currency)
        return (used / self._leverage).quantize(CENT)

    def snapshot(self, taken_at: datetime) -> dict[str, Any]:
        """The body an MT5 bridge would send: integer tickets, and 0 for a missing stop, as MT5 reports them."""
        return {
            "taken_at": taken_at,
            "balance": self.balance,
            "equity": self.equity(),
            "margin": self.margin(),
            "currency": ACCOUNT_CURRENCY,
            "positions": [
                {
                    "ticket": position.ticket,
                    "symbol": position.symbol,
                    "side": position.side.value,
                    "volume": position.volume,
                    "open_price": position.open_price,
                    "current_price": self.market.price(position.symbol).to_close(position.side),
                    "stop_loss": position.stop_loss or 0,
                    "take_profit": position.take_profit or 0,
                    "profit": self.profit(position),
                    "swap": Decimal(0),
                    "commission": Decimal(0),
                    "opened_at": position.opened_at,
                    # As the copier opens in a terminal: its magic, the trade id as the comment.
                    "magic": COPIER_MAGIC if position.trade_id else 0,
                    "comment": position.trade_id or "",
                }
                for position in self.positions.values()
            ],
            "quotes": [{"symbol": p.symbol, "bid": p.bid, "ask": p.ask} for p in self.market.prices()],
        }

    def _open(self, order: Order, fill: Fill, now: datetime) -> Position:
        spec = self.market.specs[order.symbol]
        price, volume = order.price, order.volume
        if fill is Fill.SLIPPED:
            price = spec.round(price + spec.pips(self._rng.randint(3, 6)) * order.side.sign)
        elif fill is Fill.PARTIAL:
            volume = max(LOT, (volume / 2).quantize(LOT, rounding=ROUND_DOWN))
        return self._add_position(replace(order, price=price, volume=volume), now)

    def _add_position(self, order: Order, now: datetime) -> Position:
        position = Position(
            self._new_ticket(order),
            order.symbol,
            order.side,
            order.volume,
            order.price,
            now,
            stop_loss=order.stop_loss,
            take_profit=order.take_profit,
            trade_id=order.trade_id,
        )
        self.positions[str(position.ticket)] = position
        return position

    def _new_ticket(self, order: Order) -> int:
        """Open the order's position at the broker; its ticket. Here the broker only numbers it."""
        return next(self._tickets)

    def _profit(
        self, symbol: str, side: Side, volume: Decimal, open_price: Decimal, price: Decimal
    ) -> Decimal:
        spec = self.market.specs[symbol]
        in_quote_currency = (price - open_price) * side.sign * volume * spec.contract_size
        return self.market.in_account_currency(in_quote_currency, spec.quote_currency).quantize(CENT)


def _stop_crossed(position: Position, price: Decimal) -> CloseReason | None:
    """Which of the position's stops the closing price reached, if any."""
    sign = position.side.sign
    if position.stop_loss is not None and (price - position.stop_loss) * sign <= 0:
        return CloseReason.STOP_LOSS
    if position.take_profit is not None and (price - position.take_profit) * sign >= 0:
        return CloseReason.TAKE_PROFIT
    return None
