"""The append-only audit trail: every reconciliation change, guard transition and command step."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.store.audit_trail import AuditEntry, add_entry, written_entries


def audit_event(
    session: AsyncSession,
    account_id: int,
    event_type: str,
    message: str,
    *,
    at: datetime,
    reason: str | None = None,
    symbol: str | None = None,
    ticket: str | None = None,
    trade_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an entry to the session's transaction, written when it commits (`store.audit_trail`);
    after the commit, `committed_audit_events` lists it for the live stream."""
    entry = AuditEntry(
        account_id=account_id,
        created_at=at,
        event_type=event_type,
        message=message,
        details=details_json(details),
        reason=reason,
        symbol=symbol,
        ticket=ticket,
        trade_id=trade_id,
    )
    add_entry(session, entry)
    return entry


def details_json(details: dict[str, Any] | None) -> str:
    """Details as stored and served: decimals become JSON numbers, like every other number the API sends."""
    return orjson.dumps(details or {}, default=as_json_number).decode()


def as_json_number(value: object) -> float:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} has no JSON form")


def committed_audit_events(session: AsyncSession) -> list[AuditEntry]:
    """The entries the session's transaction wrote, in order; call after commit, when they have their ids."""
    return written_entries(session)
