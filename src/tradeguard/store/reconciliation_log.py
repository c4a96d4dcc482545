"""The reconciliation log read back: the entries of some tickets, by the events that name deals."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.store.audit_trail import write_pending
from tradeguard.store.models import ReconciliationEvent

_log = ReconciliationEvent.__table__
_ENTRIES_OF_TICKETS = (
    select(_log.c.event_type, _log.c.symbol, _log.c.ticket, _log.c.trade_id, _log.c.details)
    .where(
        _log.c.account_id == bindparam("account_id"),
        _log.c.ticket.in_(bindparam("tickets", expanding=True)),
        _log.c.event_type.in_(bindparam("event_types", expanding=True)),
    )
    .order_by(_log.c.id)
)


@dataclass(frozen=True, slots=True)
class LoggedEntry:
    event_type: str
    symbol: str | None
    ticket: str
    trade_id: str | None
    details: dict[str, Any]


async def entries_of_tickets(
    session: AsyncSession, account_id: int, tickets: Iterable[str], event_types: Iterable[str]
) -> list[LoggedEntry]:
    """The account's entries of these types about these tickets, oldest first, those of this
    transaction included."""
    await write_pending(session)
    rows = await session.execute(
        _ENTRIES_OF_TICKETS,
        {"account_id": account_id, "tickets": list(tickets), "event_types": list(event_types)},
    )
    return [
        # Decimals are stored as JSON numbers: read their digits, not the binary double they parse to.
        LoggedEntry(
            row.event_type, row.symbol, row.ticket, row.trade_id, json.loads(row.details, parse_float=Decimal)
        )
        for row in rows
    ]
