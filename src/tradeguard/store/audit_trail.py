"""The audit trail's rows as a write adds them: plain values, written set-based when it commits.

A write adds entries (and the alerts they tell) to its session; when the session commits, the
transaction's alerts go out in one INSERT, their deliveries in one, and its entries in one, in
the order they were added, which is the order of their ids. A breach adds two dozen entries: as
ORM objects, their flush cost more than the rest of the snapshot. A write that reads the log back
inside its own transaction calls `write_pending` first (`store.reconciliation_log` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, event, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from tradeguard.store.models import Alert, AlertDelivery, ReconciliationEvent

_PENDING = "tradeguard.audit.pending"
_WRITTEN = "tradeguard.audit.written"
_alerts = Alert.__table__
_deliveries = AlertDelivery.__table__
_log = ReconciliationEvent.__table__


@dataclass(slots=True)
class PendingAlert:
    account_id: int
    created_at: datetime
    kind: str
    level: str
    symbol: str | None
    message: str
    details: str
    notifiers: tuple[str, ...]
    id: int | None = None
    """given when the transaction commits"""


@dataclass(slots=True)
class AuditEntry:
    """One entry of the reconciliation log, as `ReconciliationEvent` stores it."""

    account_id: int
    created_at: datetime
    event_type: str
    message: str
    details: str
    reason: str | None = None
    symbol: str | None = None
    ticket: str | None = None
    trade_id: str | None = None
    alert: PendingAlert | None = field(default=None, repr=False)
    """the alert this entry tells, written before it"""
    id: int | None = None
    """given when the transaction commits"""

    @property
    def alert_id(self) -> int | None:
        return None if self.alert is None else self.alert.id


def add_entry(session: AsyncSession, entry: AuditEntry) -> None:
    if not session.in_transaction():
        # Begun now, so that a rollback before any statement runs still ends it and forgets the entry.
        session.sync_session.begin()
    session.info.setdefault(_PENDING, []).append(entry)


async def write_pending(session: AsyncSession) -> None:
    """Write the entries added so far, so that what follows in the transaction reads them."""
    if session.info.get(_PENDING):
        await session.run_sync(_write)


def written_entries(session: AsyncSession) -> list[AuditEntry]:
    """The entries the session's last transaction wrote, in order, with their ids; taken once."""
    return session.info.pop(_WRITTEN, [])


def _write(session: Session) -> None:
    pending: list[AuditEntry] = session.info.pop(_PENDING, [])
    if not pending:
        return
    # What the entries refer to (an account created in the same transaction) is written first.
    session.flush()
    connection = session.connection()
    alerts = [entry.alert for entry in pending if entry.alert is not None]
    if alerts:
        ids = _insert_returning_ids(connection, _alerts, [_row(alert, _ALERT_COLUMNS) for alert in alerts])
        for alert, alert_id in zip(alerts, ids, strict=True):
            alert.id = alert_id
        deliveries = [
            {
                "alert_id": alert.id,
                "notifier": notifier,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": alert.created_at,
            }
            for alert in alerts
            for notifier in alert.notifiers
        ]
        if deliveries:
            _insert_returning_ids(connection, _deliveries, deliveries)
    ids = _insert_returning_ids(connection, _log, [_row(entry, _ENTRY_COLUMNS) for entry in pending])
    for entry, entry_id in zip(pending, ids, strict=True):
        entry.id = entry_id
    session.info.setdefault(_WRITTEN, []).extend(pending)


def _insert_returning_ids(connection, table, rows: list[dict]) -> list[int]:
    """Insert the rows in order and return their ids in the same order."""
    if connection.dialect.name == "postgresql":
        names = list(rows[0])
        arrays = {name: [row[name] for row in rows] for name in names}
        # Ids come from the table's sequence as the rows go in, in the order selected.
        return sorted(connection.execute(_INSERT_FROM_ARRAYS[table.name], arrays).scalars())
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(connection.execute(statement, rows).scalars())


def _insert_from_arrays(table, names: tuple[str, ...]):
    """On PostgreSQL the rows go in as one array per column, so that one statement, prepared once,
    serves writes of any size (a VALUES list would be a statement of its own for each)."""
    added = (
        func.unnest(*(bindparam(name, type_=ARRAY(table.c[name].type)) for name in names))
        .table_valued(*names, with_ordinality="position")
        .render_derived("added")
    )
    chosen = select(*(added.c[name] for name in names)).order_by(added.c.position)
    return postgresql_insert(table).from_select(list(names), chosen).returning(table.c.id)


_ALERT_COLUMNS = ("account_id", "created_at", "kind", "level", "symbol", "message", "details")
_ENTRY_COLUMNS = (
    "account_id",
    "created_at",
    "event_type",
    "reason",
    "symbol",
    "ticket",
    "trade_id",
    "message",
    "details",
    "alert_id",
)
_DELIVERY_COLUMNS = ("alert_id", "notifier", "state", "attempts", "next_attempt_at")
_INSERT_FROM_ARRAYS = {
    _alerts.name: _insert_from_arrays(_alerts, _ALERT_COLUMNS),
    _deliveries.name: _insert_from_arrays(_deliveries, _DELIVERY_COLUMNS),
    _log.name: _insert_from_arrays(_log, _ENTRY_COLUMNS),
}


def _row(added: PendingAlert | AuditEntry, columns: tuple[str, ...]) -> dict:
    return {name: getattr(added, name) for name in columns}


def _forget(session: Session, *_transaction) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_WRITTEN, None)


def _forget_unless_nested(session: Session, previous_transaction: SessionTransaction) -> None:
    # Soft: a rollback before any statement ran has no database transaction to roll back, and
    # would not be heard otherwise.
    if not previous_transaction.nested:
        _forget(session)


# Every session that commits writes what was added to it; one that rolls back forgets it, and a
# new transaction starts with nothing written.
event.listen(Session, "before_commit", _write)
event.listen(Session, "after_soft_rollback", _forget_unless_nested)
event.listen(Session, "after_begin", _forget)
