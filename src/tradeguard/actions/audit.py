"""The append-only audit trail: every reconciliation change, guard transition and command step."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.store.models import ReconciliationEvent


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
) -> None:
    session.add(
        ReconciliationEvent(
            account_id=account_id,
            created_at=at,
            event_type=event_type,
            reason=reason,
            symbol=symbol,
            ticket=ticket,
            trade_id=trade_id,
            message=message,
            details=orjson.dumps(details or {}, default=str).decode(),
        )
    )
