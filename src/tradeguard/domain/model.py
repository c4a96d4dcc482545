"""The values reconciliation and the guards reason about: what the platform expected and what the broker holds."""

from __future__ import annotations

import enum
import re
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


MAX_MAGIC = 2**63 - 1
"""The largest magic number a position keeps: MetaTrader's is a ulong, a BIGINT holds half of its range."""
MAX_COMMENT_LENGTH = 64
"""An MT5 comment holds 31 characters at most; an exchange's client order id can run to 36 and more."""
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def has_control_character(text: str) -> bool:
    """Whether `text` holds a C0 or C1 control character or DEL: nothing a person reads, or a display shows."""
    return _CONTROL_CHARACTER.search(text) is not None


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    """An open position as the broker reports it in a snapshot.

    `magic` is the number of the expert (program) that opened it, 0 for a trade placed by hand
    (MetaTrader's own meaning); `comment` the text the opening order carried (an exchange's client
    order id). None for either: the bridge did not say.
    """

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
