"""The append-only audit trail: every reconciliation change, guard transition and command step."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.store.models import ReconciliationEvent

_AUDIT_KEY = "tradeguard.audit_events"


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
) -> ReconciliationEvent:
    """Add an entry to the session; after commit, `committed_audit_events` lists it for the live stream."""
    event = ReconciliationEvent(
        account_id=account_id,
        created_at=at,
        event_type=event_type,
        reason=reason,
        symbol=symbol,
        ticket=ticket,
        trade_id=trade_id,
        message=message,
        details=details_json(details),
    )
    session.add(event)
    session.info.setdefault(_AUDIT_KEY, []).append(event)
    return event


def details_json(details: dict[str, Any] | None) -> str:
    """Details as stored and served: decimals become JSON numbers, like every other number the API sends."""
    return orjson.dumps(details or {}, default=_as_json_number).decode()


def _as_json_number(value: object) -> float:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} has no JSON form")


def committed_audit_events(session: AsyncSession) -> list[ReconciliationEvent]:
    """The entries this session added, in order; call after commit, when they have their ids."""
    return session.info.pop(_AUDIT_KEY, [])
