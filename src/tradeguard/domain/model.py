"""The values reconciliation and the guards reason about: what the platform expected and what the broker holds."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


class Side(str, enum.Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


@dataclass(frozen=True, slots=True)
class ExpectedTrade:
    """A trade the platform sent to the account and believes is open."""

    trade_id: str
    symbol: str
    side: Side
    volume: Decimal
    entry_price: Decimal
    received_at: datetime
    opened_at: datetime | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    ticket: str | None = None
    signal_id: str | None = None

    @property
    def age_anchor(self) -> datetime:
        """Fills take time: the grace period counts from the open time, or from arrival when unknown."""
        return self.opened_at or self.received_at


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    """An open position as the broker reports it in a snapshot."""

    ticket: str
    symbol: str
    side: Side
    volume: Decimal
    open_price: Decimal
    current_price: Decimal
    opened_at: datetime
    profit: Decimal
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    swap: Decimal = Decimal(0)
    commission: Decimal = Decimal(0)
    magic: int | None = None
    comment: str | None = None

    @property
    def net_profit(self) -> Decimal:
        return self.profit + self.swap + self.commission


class CloseReason(str, enum.Enum):
    """Why the broker closed a position: its stops, a stop-out, a person, or tradeguard's close command."""

    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    STOP_OUT = "stop_out"
    MANUAL = "manual"
    CLOSE_COMMAND = "close_command"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ClosedDeal:
    """A deal that closed all or part of a position, as the broker's history reports it.

    `ticket` is the position's; `deal_id` the broker's id of the deal itself, when it has one.
    `profit` excludes swap and commission, as a position's does; `net_profit` is what the deal
    realized. Two deals are the same deal when every field agrees, which `deal_id` makes exact.
    """

    ticket: str
    close_price: Decimal
    profit: Decimal
    closed_at: datetime
    reason: CloseReason
    swap: Decimal = Decimal(0)
    commission: Decimal = Decimal(0)
    deal_id: str | None = None

    @property
    def net_profit(self) -> Decimal:
        return self.profit + self.swap + self.commission


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    bid: Decimal
    ask: Decimal
