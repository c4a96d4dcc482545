"""What a bridge needs from the broker side: one small interface, implemented once per platform.

`tradeguard.bridges.runtime` runs the loop every bridge shares (snapshots on a cadence and on
change, commands polled, each command carried out once and journaled, the server's absences
survived); a platform adapter (`tradeguard.bridges.mt5`, `tradeguard.bridges.exchange`) only
reads the account and closes positions.

The interface is synchronous: the MetaTrader5 package and ccxt's synchronous client block, and
neither is safe to call from two threads at once. The runtime calls each broker from one thread
of its own, one call at a time.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from tradeguard.bridges.config import DeviceCredentials


class ReadFailed(Exception):
    """The broker could not confirm the account's state: no snapshot goes out.

    The message says why (terminal not connected, wrong account logged in, a call answered None
    with `last_error()` ...); the runtime logs it and tries again at the next reading.
    """


class BrokerUnavailable(Exception):
    """The broker cannot be reached at all (terminal not started, exchange down): retried later."""


@dataclass(frozen=True, slots=True)
class CloseOrder:
    """A close command as the broker carries it out: close `volume` of position `ticket`."""

    command_id: str
    ticket: str
    symbol: str
    volume: Decimal


class OutcomeStatus(enum.StrEnum):
    EXECUTED = "executed"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CloseOutcome:
    """What became of a close order: the acknowledgement the bridge sends, and journals first."""

    status: OutcomeStatus
    detail: str = ""
    """Empty when there is nothing to add: the acknowledgement then carries no detail."""
    close_price: Decimal | None = None
    profit: Decimal | None = None

    def acknowledgement(self) -> dict[str, Any]:
        """The body of `POST /api/v1/ingest/commands/{command_id}/ack`."""
        body: dict[str, Any] = {"status": str(self.status)}
        if self.detail:
            body["detail"] = self.detail[:500]
        if self.close_price is not None:
            body["close_price"] = self.close_price
        if self.profit is not None:
            body["profit"] = self.profit
        return body


@dataclass(frozen=True, slots=True)
class AccountReading:
    """One confirmed reading of the account.

    `snapshot` is the body of `POST /api/v1/ingest/snapshots` without `closed_deals` (decimals as
    `Decimal`, times as aware UTC datetimes); `closed_deals` are the `closed_deals` items found in
    the broker's history since the previous reading (the runtime sends each until a snapshot
    carrying it is applied).
    """

    snapshot: dict[str, Any]
    closed_deals: Sequence[dict[str, Any]] = field(default_factory=tuple)


class Broker(Protocol):
    """One broker account, as a bridge reads and trades it."""

    @property
    def description(self) -> str:
        """For the log: which account at which broker (`mt5 login 5012345 at Broker-Demo`)."""
        ...

    def connect(self) -> None:
        """Open the connection; raise `BrokerUnavailable` (retried) or `ValueError` (a config error, fatal)."""
        ...

    def read(self, now: datetime) -> AccountReading:
        """The account as the broker confirms it now (`now`: the bridge's UTC clock, corrected
        from tradeguard's). Raise `ReadFailed` rather than report anything unconfirmed."""
        ...

    def close(self, order: CloseOrder, earlier: Sequence[str]) -> CloseOutcome:
        """Close the position, at most once.

        `earlier` holds the command ids already sent to the broker for this ticket whose outcome
        is not known: before sending anything, look for the position and for a fill carrying one
        of them, and do not send when the position is gone. A lost answer is `UNKNOWN`, never a
        second order.
        """
        ...

    def settle(self, order: CloseOrder) -> CloseOutcome:
        """The outcome of an order that may have been sent before the bridge stopped: found by
        looking (the position, a fill carrying the command's id); never sends an order."""
        ...

    def disconnect(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Binding:
    """One broker account and the tradeguard device it reports as: what one bridge loop runs."""

    name: str
    """Unique within one bridge process: names the account in the log and in the journal."""
    broker: Broker
    device: DeviceCredentials
