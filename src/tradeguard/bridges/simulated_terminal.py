"""A simulated broker whose account lives in a stand-in MetaTrader 5 terminal.

The simulation still decides what happens to the account (which orders fill, how they slip,
which stops the market reaches); the terminal holds the outcome (positions, balance, deals,
floating profit), where a real `tradeguard bridge mt5` process reads it through the stand-in
package and carries out tradeguard's close commands with `order_send`. What the bridge closed,
the broker takes in at the next step from the terminal's deals, as a broker's back office would.

The terminal's clock is the real one (in its server time, UTC plus the server's offset), so the
simulation that drives it runs on the real clock too (`BrokerClock.real_time`).
"""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from tradeguard.bridges.mt5 import standin
from tradeguard.bridges.mt5.standin_terminal import PositionNotOpen, StandinTerminal
from tradeguard.bridges.simulator.broker import (
    CENT,
    COPIER_MAGIC,
    LOT,
    ClosedPosition,
    Order,
    Position,
    SimulatedBroker,
)
from tradeguard.bridges.simulator.market import ACCOUNT_CURRENCY, SYMBOLS, Market, SymbolSpec
from tradeguard.domain.model import CloseReason

_DEAL_REASONS = {
    CloseReason.STOP_LOSS: standin.DEAL_REASON_SL,
    CloseReason.TAKE_PROFIT: standin.DEAL_REASON_TP,
    CloseReason.STOP_OUT: standin.DEAL_REASON_SO,
    CloseReason.MANUAL: standin.DEAL_REASON_CLIENT,
    # Only the bridge closes by a program here: its closes are tradeguard's commands.
    CloseReason.CLOSE_COMMAND: standin.DEAL_REASON_EXPERT,
}
_CLOSE_REASONS = {deal_reason: reason for reason, deal_reason in _DEAL_REASONS.items()}


def create_terminal(
    path: Path,
    *,
    login: int,
    server: str,
    name: str,
    balance: Decimal,
    server_utc_offset_hours: float,
    specs: dict[str, SymbolSpec] | None = None,
) -> StandinTerminal:
    """A new terminal file with the account logged in and the market's symbols at their opening quotes.

    The stand-in keeps a symbol's tick value fixed: a pair quoted in another currency than the
    account's (USDJPY) has it at the opening rate.
    """
    opening = Market(random.Random(), specs or SYMBOLS)
    terminal = StandinTerminal.create(path, server_utc_offset_hours=server_utc_offset_hours)
    terminal.add_account(login, server=server, name=name, balance=balance, currency=ACCOUNT_CURRENCY)
    for spec in opening.specs.values():
        price = opening.price(spec.symbol)
        tick_value = opening.in_account_currency(spec.point * spec.contract_size, spec.quote_currency)
        terminal.add_symbol(
            spec.symbol,
            bid=str(price.bid),
            ask=str(price.ask),
            digits=spec.digits,
            contract_size=str(spec.contract_size),
            tick_value=str(tick_value),
            volume_step=str(LOT),
            volume_min=str(LOT),
            currency_base=spec.base_currency,
            currency_profit=spec.quote_currency,
        )
    return terminal


def _exact(value: float, quantum: Decimal) -> Decimal:
    return Decimal(repr(value)).quantize(quantum)


class TerminalHeldBroker(SimulatedBroker):
    """A `SimulatedBroker` whose positions, balance and profits are the terminal's.

    `positions` keeps what the simulation knows of each position it opened (its trade, its stops)
    under the terminal's ticket; the volume held and whether it is still open are the terminal's.
    """

    def __init__(self, market: Market, rng: random.Random, terminal: StandinTerminal) -> None:
        # Tickets come from the terminal, and the balance is read from it.
        super().__init__(market, rng, iter(()), balance=terminal.totals()["balance"])
        self.terminal = terminal
        self._deals_seen = max((deal.ticket for deal in terminal.deals()), default=0)

    def trigger_stops(self, now: datetime) -> list[ClosedPosition]:
        """The terminal's ticks first follow the market; what the bridge closed since the last
        step is taken in, and comes first in the closes returned."""
        for price in self.market.prices():
            self.terminal.quote(price.symbol, bid=str(price.bid), ask=str(price.ask))
        return self._take_deals(now) + super().trigger_stops(now)

    def close(
        self, ticket: str, volume: Decimal | None = None, *, reason: CloseReason, at: datetime
    ) -> ClosedPosition:
        """Close in the terminal at its price (the market's); the deal goes into the history.

        When the bridge closed the position a moment before, its deal is the one returned.
        """
        try:
            deal = self.terminal.close_position(
                int(ticket),
                reason=_DEAL_REASONS[reason],
                volume=None if volume is None else str(volume),
                magic=COPIER_MAGIC,
            )
        except PositionNotOpen:
            deal = None
        taken = self._take_deals(at)
        if deal is None:
            return next(closed for closed in taken if closed.ticket == int(ticket))
        return next(closed for closed in taken if closed.deal_id == deal)

    def profit(self, position: Position) -> Decimal:
        held = self.terminal.positions().get(position.ticket)
        return Decimal(0) if held is None else held["profit"]

    def equity(self) -> Decimal:
        return self.terminal.totals()["equity"]

    def margin(self) -> Decimal:
        return self.terminal.totals()["margin"]

    def _new_ticket(self, order: Order) -> int:
        """Open the position in the terminal, under the copier's magic when the platform sent it."""
        return self.terminal.open_position(
            order.symbol,
            order.side.value,
            str(order.volume),
            price=str(order.price),
            sl=str(order.stop_loss or 0),
            tp=str(order.take_profit or 0),
            magic=COPIER_MAGIC if order.trade_id else 0,
            comment=order.trade_id or "",
            reason=standin.POSITION_REASON_EXPERT if order.trade_id else standin.POSITION_REASON_CLIENT,
        )

    def _take_deals(self, now: datetime) -> list[ClosedPosition]:
        """The closing deals of our positions since the last look, whoever made them."""
        taken = []
        held = self.terminal.positions()
        for deal in self.terminal.deals():
            if deal.ticket <= self._deals_seen:
                continue
            self._deals_seen = deal.ticket
            position = self.positions.get(str(deal.position_id))
            if deal.entry != standin.DEAL_ENTRY_OUT or position is None:
                continue
            spec = self.market.specs[position.symbol]
            closed = ClosedPosition(
                deal.ticket,
                position.ticket,
                position.symbol,
                position.side,
                _exact(deal.volume, LOT),
                _exact(deal.price, spec.point),
                _exact(deal.profit, CENT),
                now,
                _CLOSE_REASONS.get(deal.reason, CloseReason.OTHER),
            )
            self.history.append(closed)
            taken.append(closed)
        for ticket, position in list(self.positions.items()):
            if position.ticket in held:
                position.volume = held[position.ticket]["volume"]
            else:
                del self.positions[ticket]
        self.balance = self.terminal.totals()["balance"]
        return taken
