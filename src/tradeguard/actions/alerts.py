"""Alerts: stored with the ingest step's transaction, delivered later by the notifier loop."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.actions.audit import audit_event, details_json
from tradeguard.store.models import Alert, AlertDelivery


def raise_alert(
    session: AsyncSession,
    account_id: int,
    *,
    kind: str,
    level: str,
    message: str,
    now: datetime,
    notifiers: list[str],
    symbol: str | None = None,
    details: dict[str, Any] | None = None,
) -> Alert:
    """Store the alert and one pending delivery per notifier; sending never happens on this path."""
    alert = Alert(
        account_id=account_id,
        created_at=now,
        kind=kind,
        level=level,
        symbol=symbol,
        message=message,
        details=details_json(details),
    )
    session.add(alert)
    entry = audit_event(
        session,
        account_id,
        "alert",
        message,
        at=now,
        reason=kind,
        symbol=symbol,
        details={"kind": kind, "level": level, **(details or {})},
    )
    # The stream tells an alert as this entry; the link gives it the alert's id without a flush.
    entry.alert = alert
    for notifier in notifiers:
        session.add(
            AlertDelivery(alert=alert, notifier=notifier, state="pending", attempts=0, next_attempt_at=now)
        )
    return alert
