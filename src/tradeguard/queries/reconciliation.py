"""Reconciliation status and the reconciliation log, for one account or all of a user's accounts."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.queries.read_models import ReconciliationEventOut
from tradeguard.store.audit_trail import AuditEntry
from tradeguard.store.models import AccountState, ReconciliationEvent

RECENT_EVENTS = 10
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)
# When a user's accounts are summarised, the worst status speaks for all of them.
_STATUS_SEVERITY = {"idle": 0, "healthy": 1, "warning": 2, "error": 3}


def event_out(row: ReconciliationEvent | AuditEntry) -> ReconciliationEventOut:
    return ReconciliationEventOut(
        id=row.id,
        account_id=row.account_id,
        created_at=row.created_at,
        event_type=row.event_type,
        reason=row.reason,
        symbol=row.symbol,
        ticket=row.ticket,
        trade_id=row.trade_id,
        message=row.message,
        details=orjson.loads(row.details),
    )


async def status_fields(session: AsyncSession, account_ids: list[int]) -> dict:
    states = list(
        (await session.scalars(select(AccountState).where(AccountState.account_id.in_(account_ids)))).all()
    )
    recent = await log_events(session, account_ids, limit=RECENT_EVENTS)
    if not states:
        return {
            "status": "idle",
            "last_sync_at": None,
            "total_syncs": 0,
            "last_sync_duration_ms": None,
            "open_positions_count": 0,
            "matched_positions": 0,
            "divergences_detected": 0,
            "recent_events": recent,
            "error_message": None,
        }
    latest = max(states, key=lambda state: state.last_sync_at or _NEVER)
    if len(states) == 1:
        error_message = states[0].error_message
    else:
        errors = [
            f"account {state.account_id}: {state.error_message}" for state in states if state.error_message
        ]
        error_message = "; ".join(errors) or None
    return {
        "status": max((state.status for state in states), key=_STATUS_SEVERITY.__getitem__),
        "last_sync_at": latest.last_sync_at,
        "total_syncs": sum(state.total_syncs for state in states),
        "last_sync_duration_ms": latest.last_sync_duration_ms,
        "open_positions_count": sum(state.open_positions_count for state in states),
        "matched_positions": sum(state.matched_positions for state in states),
        "divergences_detected": sum(state.divergences_detected for state in states),
        "recent_events": recent,
        "error_message": error_message,
    }


async def log_events(
    session: AsyncSession,
    account_ids: list[int],
    *,
    limit: int,
    before_id: int | None = None,
    event_type: str | None = None,
    reason: str | None = None,
    symbol: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ReconciliationEventOut]:
    if not account_ids:
        return []
    query = (
        select(ReconciliationEvent)
        .where(ReconciliationEvent.account_id.in_(account_ids))
        .order_by(ReconciliationEvent.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(ReconciliationEvent.id < before_id)
    if event_type is not None:
        query = query.where(ReconciliationEvent.event_type == event_type)
    if reason is not None:
        query = query.where(ReconciliationEvent.reason == reason)
    if symbol is not None:
        query = query.where(ReconciliationEvent.symbol == symbol)
    if since is not None:
        query = query.where(ReconciliationEvent.created_at >= since)
    if until is not None:
        query = query.where(ReconciliationEvent.created_at < until)
    return [event_out(row) for row in (await session.scalars(query)).all()]
