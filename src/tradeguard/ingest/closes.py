"""Closes as the audit trail records them, and read back: the record deals are checked against.

The audit trail is the record of closes. Each entry a deal leads to (`closed_on_broker`,
`partial_close`, `close_realized`, `unmatched_deal`) lists its deals in `details.deals`, so a deal
sent again is known; the latest `closed_on_broker` or `close_realized` of a ticket states its
close as it now stands, so a deal that arrives late amends it. `domain.reconcile` decides what a
deal is; this module is the record's format, written and read (the entries through
`store.reconciliation_log`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.actions.audit import audit_event
from tradeguard.domain.model import ClosedDeal, CloseReason
from tradeguard.domain.reconcile import (
    ClosedOnBroker,
    DealHistory,
    PnlSource,
    RealizedPnl,
    Reconciliation,
    RecordedClose,
)
from tradeguard.store.reconciliation_log import entries_of_tickets

CLOSE_EVENTS = ("closed_on_broker", "close_realized")
DEAL_EVENTS = (*CLOSE_EVENTS, "partial_close", "unmatched_deal")


async def deal_history(session: AsyncSession, account_id: int, deals: Iterable[ClosedDeal]) -> DealHistory:
    """What the audit trail holds about the deals' tickets; nothing to read when there are no deals."""
    tickets = sorted({deal.ticket for deal in deals})
    if not tickets:
        return DealHistory()
    recorded: set[ClosedDeal] = set()
    closes: dict[str, RecordedClose] = {}
    for row in await entries_of_tickets(session, account_id, tickets, DEAL_EVENTS):
        details = row.details
        recorded.update(_deal_of(row.ticket, deal) for deal in details.get("deals", ()))
        if row.event_type in CLOSE_EVENTS:
            closes[row.ticket] = RecordedClose(
                ticket=row.ticket,
                symbol=row.symbol,
                volume=Decimal(details["volume"]),
                trade_id=row.trade_id,
                net_profit=Decimal(details["net_profit"]),
                # Entries written before deals existed carry no source: theirs was the floating P&L.
                pnl_source=PnlSource(details.get("pnl_source", PnlSource.LAST_FLOATING)),
            )
    return DealHistory(frozenset(recorded), closes)


def log_closes(session: AsyncSession, account_id: int, result: Reconciliation, at: datetime) -> None:
    """One entry per close, partial close, amended close and unmatched ticket of the snapshot."""
    for closed in result.closed:
        audit_event(
            session,
            account_id,
            "closed_on_broker",
            _close_message(closed),
            at=at,
            reason=closed.realized.reason.value if closed.realized else None,
            symbol=closed.symbol,
            ticket=closed.ticket,
            trade_id=closed.trade_id,
            details={
                "net_profit": closed.net_profit,
                "pnl_source": closed.pnl_source.value,
                "close_price": closed.close_price,
                "last_price": closed.last_price,
                "last_floating_pnl": closed.last_floating_pnl,
                "side": closed.side.value,
                "volume": closed.volume,
                **(realized_details(closed.realized) if closed.realized else {}),
            },
        )
    for partial in result.partial_closes:
        position, realized = partial.position, partial.realized
        audit_event(
            session,
            account_id,
            "partial_close",
            f"{position.symbol} {position.side.value} (ticket {position.ticket}) partly closed on the broker "
            f"({_said(realized.reason)}) at {realized.close_price}, realized P&L {realized.net_profit}; "
            f"{position.volume} lots still open",
            at=at,
            reason=realized.reason.value,
            symbol=position.symbol,
            ticket=position.ticket,
            details={"volume": position.volume, **realized_details(realized)},
        )
    for late in result.closes_realized:
        close, realized = late.close, late.realized
        audit_event(
            session,
            account_id,
            "close_realized",
            f"{close.symbol} {close.volume} (ticket {close.ticket}) close realized: P&L {late.net_profit} "
            f"({_said(realized.reason)} at {realized.close_price}), recorded as {close.net_profit} "
            f"({_said(close.pnl_source)})",
            at=at,
            reason=realized.reason.value,
            symbol=close.symbol,
            ticket=close.ticket,
            trade_id=close.trade_id,
            details={
                **realized_details(realized),
                "net_profit": late.net_profit,
                "volume": close.volume,
                "replaces": {"net_profit": close.net_profit, "pnl_source": close.pnl_source.value},
            },
        )
    for unmatched in result.unmatched_deals:
        realized = unmatched.realized
        audit_event(
            session,
            account_id,
            "unmatched_deal",
            f"deal for ticket {realized.ticket}, which no snapshot held ({_said(realized.reason)} at "
            f"{realized.close_price}): realized P&L {realized.net_profit}",
            at=at,
            reason=realized.reason.value,
            ticket=realized.ticket,
            details=realized_details(realized),
        )


def realized_details(realized: RealizedPnl) -> dict[str, Any]:
    return {
        "net_profit": realized.net_profit,
        "pnl_source": PnlSource.REALIZED.value,
        "close_price": realized.close_price,
        "profit": realized.profit,
        "swap": realized.swap,
        "commission": realized.commission,
        "closed_at": realized.closed_at,
        "deals": [_deal_details(deal) for deal in realized.deals],
    }


def _close_message(closed: ClosedOnBroker) -> str:
    what = (
        f"{closed.symbol} {closed.side.value} {closed.volume} (ticket {closed.ticket}) closed on the broker"
    )
    if closed.realized is None:
        return f"{what}, P&L {closed.net_profit} (last floating: the bridge sent no deal)"
    return (
        f"{what} ({_said(closed.realized.reason)}) at {closed.close_price}, realized P&L {closed.net_profit}"
    )


def _said(value: CloseReason | PnlSource) -> str:
    return value.value.replace("_", " ")


def _deal_details(deal: ClosedDeal) -> dict[str, Any]:
    return {
        "deal_id": deal.deal_id,
        "close_price": deal.close_price,
        "profit": deal.profit,
        "swap": deal.swap,
        "commission": deal.commission,
        "closed_at": deal.closed_at,
        "reason": deal.reason.value,
    }


def _deal_of(ticket: str, details: dict[str, Any]) -> ClosedDeal:
    return ClosedDeal(
        ticket=ticket,
        deal_id=details["deal_id"],
        close_price=Decimal(details["close_price"]),
        profit=Decimal(details["profit"]),
        swap=Decimal(details["swap"]),
        commission=Decimal(details["commission"]),
        closed_at=datetime.fromisoformat(details["closed_at"]),
        reason=CloseReason(details["reason"]),
    )
