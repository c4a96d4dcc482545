"""The bridge's memory of close commands, on disk: what was asked of the broker, what came of it.

An entry is begun before the broker is asked to close (write-ahead), so a bridge killed between
sending an order and recording its outcome finds, on restart, an entry without an outcome: it then
settles the order by looking, never by sending it again. WAL with synchronous=FULL makes every
recorded step durable before the next one starts.

Decimals are stored as text, digit for digit; times as RFC 3339 UTC text.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tradeguard.bridges.broker import CloseOrder, CloseOutcome, OutcomeStatus

KEEP_ACKNOWLEDGED = timedelta(days=7)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    binding TEXT NOT NULL,
    command_id TEXT NOT NULL,
    ticket TEXT NOT NULL,
    symbol TEXT NOT NULL,
    volume TEXT NOT NULL,
    began_at TEXT NOT NULL,
    status TEXT,
    detail TEXT,
    close_price TEXT,
    profit TEXT,
    finished_at TEXT,
    acknowledged_at TEXT,
    PRIMARY KEY (binding, command_id)
)
"""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    order: CloseOrder
    began_at: datetime
    outcome: CloseOutcome | None
    """None: the order may have reached the broker, and what came of it is not known yet."""
    finished_at: datetime | None
    acknowledged_at: datetime | None


class Journal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def entry(self, binding: str, command_id: str) -> JournalEntry | None:
        row = self._db.execute(
            "SELECT ticket, symbol, volume, began_at, status, detail, close_price, profit, finished_at,"
            " acknowledged_at FROM commands WHERE binding = ? AND command_id = ?",
            (binding, command_id),
        ).fetchone()
        if row is None:
            return None
        (
            ticket,
            symbol,
            volume,
            began_at,
            status,
            detail,
            close_price,
            profit,
            finished_at,
            acknowledged_at,
        ) = row
        outcome = None
        if status is not None:
            outcome = CloseOutcome(OutcomeStatus(status), detail, _decimal(close_price), _decimal(profit))
        return JournalEntry(
            CloseOrder(command_id, ticket, symbol, Decimal(volume)),
            datetime.fromisoformat(began_at),
            outcome,
            _time(finished_at),
            _time(acknowledged_at),
        )

    def begin(self, binding: str, order: CloseOrder, at: datetime) -> None:
        """Before the broker is asked: from here on, the order counts as possibly sent."""
        self._db.execute(
            "INSERT INTO commands (binding, command_id, ticket, symbol, volume, began_at) VALUES (?, ?, ?, ?, ?, ?)",
            (binding, order.command_id, order.ticket, order.symbol, str(order.volume), at.isoformat()),
        )

    def record(self, binding: str, command_id: str, outcome: CloseOutcome, at: datetime) -> None:
        self._db.execute(
            "UPDATE commands SET status = ?, detail = ?, close_price = ?, profit = ?, finished_at = ?"
            " WHERE binding = ? AND command_id = ?",
            (
                str(outcome.status),
                outcome.detail,
                _text(outcome.close_price),
                _text(outcome.profit),
                at.isoformat(),
                binding,
                command_id,
            ),
        )

    def mark_acknowledged(self, binding: str, command_id: str, at: datetime) -> None:
        self._db.execute(
            "UPDATE commands SET acknowledged_at = ? WHERE binding = ? AND command_id = ?",
            (at.isoformat(), binding, command_id),
        )

    def unsettled(self, binding: str, ticket: str) -> list[str]:
        """The command ids begun for this ticket whose outcome is unknown or was never recorded:
        the broker may have carried them out, so a new close must look for them first."""
        rows = self._db.execute(
            "SELECT command_id FROM commands WHERE binding = ? AND ticket = ?"
            " AND (status IS NULL OR status = ?) ORDER BY began_at, command_id",
            (binding, ticket, str(OutcomeStatus.UNKNOWN)),
        )
        return [command_id for (command_id,) in rows]

    def prune(self, now: datetime) -> int:
        """Forget acknowledged entries older than a week; the number forgotten."""
        cursor = self._db.execute(
            "DELETE FROM commands WHERE acknowledged_at IS NOT NULL AND acknowledged_at < ?",
            ((now - KEEP_ACKNOWLEDGED).isoformat(),),
        )
        return cursor.rowcount


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
