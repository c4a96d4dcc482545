"""What subscribers are sent: account state after a sync, and every audit entry (alerts included)."""

from __future__ import annotations

from collections.abc import Iterable

from tradeguard.accounts.trading import trading_state_of
from tradeguard.queries.read_models import ReconciliationEventOut, StreamAlert, StreamSync
from tradeguard.queries.reconciliation import event_out
from tradeguard.store.audit_trail import AuditEntry
from tradeguard.store.models import AccountState, ReconciliationEvent
from tradeguard.stream.bus import StreamEvent


def sync_event(state: AccountState) -> StreamEvent:
    sync = StreamSync(
        account_id=state.account_id,
        status=state.status,
        total_syncs=state.total_syncs,
        open_positions_count=state.open_positions_count,
        matched_positions=state.matched_positions,
        divergences_detected=state.divergences_detected,
        equity=state.equity,
        balance=state.balance,
        peak_equity=state.peak_equity,
        drawdown_pct=state.drawdown_pct,
        drawdown_level=state.drawdown_level,
        trading_allowed=trading_state_of(state).trading_allowed,
        last_sync_at=state.last_sync_at,
        error_message=state.error_message,
    )
    return StreamEvent("sync", state.account_id, _json(sync))


def audit_stream_event(row: AuditEntry | ReconciliationEvent) -> StreamEvent:
    """Alerts travel as audit entries, so one sequence of ids orders and resumes everything."""
    entry = event_out(row)
    if row.event_type == "alert":
        # The entry's details are the alert's plus its kind and level (`raise_alert`); the event
        # says what /alerts says of the same alert.
        details = dict(entry.details)
        alert = StreamAlert(
            id=row.id,
            alert_id=row.alert_id,
            account_id=row.account_id,
            created_at=row.created_at,
            kind=details.pop("kind", row.reason),
            level=details.pop("level", "info"),
            symbol=row.symbol,
            message=row.message,
            details=details,
        )
        return StreamEvent("alert", row.account_id, _json(alert), row.id)
    return StreamEvent("log", row.account_id, _json(entry), row.id)


def account_events(audit_rows: Iterable[AuditEntry], states: Iterable[AccountState]) -> list[StreamEvent]:
    events = [audit_stream_event(row) for row in audit_rows]
    events += [sync_event(state) for state in states]
    return events


def _json(model: ReconciliationEventOut | StreamAlert | StreamSync) -> bytes:
    return model.__pydantic_serializer__.to_json(model)
