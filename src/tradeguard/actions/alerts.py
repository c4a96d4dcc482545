"""Alerts: stored with the ingest step's transaction, delivered later by the notifier loop."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.actions.audit import audit_event, details_json
from tradeguard.store.audit_trail import PendingAlert


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
) -> PendingAlert:
    """Store the alert and one pending delivery per notifier; sending never happens on this path."""
    alert = PendingAlert(
        account_id=account_id,
        created_at=now,
        kind=kind,
        level=level,
        symbol=symbol,
        message=message,
        details=details_json(details),
        notifiers=tuple(notifiers),
    )
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
    # The stream tells an alert as this entry, with the alert's id once both are written.
    entry.alert = alert
    return alert
