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

    @property
    def net_profit(self) -> Decimal:
        return self.profit + self.swap + self.commission


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    bid: Decimal
    ask: Decimal
