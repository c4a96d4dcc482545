"""The equity history's maintenance: partitions made ahead, raw points rolled up into minute aggregates
once past their retention, and what is past every retention removed.

On PostgreSQL both tables are partitioned by time (in the `history_partitions` schema): a day of raw
points is rolled up and its partition dropped in one transaction, never deleted row by row, and a
default partition takes whatever no partition covers (a snapshot dated far ahead, one arriving
after its day was rolled up), so that an insert never fails; its rows are moved into a partition
when one is made for them, or rolled up and deleted once past the retention. SQLite keeps the tables
unpartitioned: its raw points are rolled up by `domain/history.py` itself and deleted by time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.domain.history import (
    MINUTE_PARTITION,
    RAW_PARTITION,
    MinuteAggregate,
    Partition,
    RawPoint,
    Resolution,
    merge,
    partition_named,
    partitions_past,
    partitions_wanted,
    retention_cutoff,
    roll_up,
)
from tradeguard.store.models import AccountSnapshot, EquityMinute, HistoryRetention

PARTITIONS_SCHEMA = "history_partitions"
RAW_TABLE = AccountSnapshot.__tablename__
MINUTE_TABLE = EquityMinute.__tablename__
# Any fixed number: the workers sharing a database take turns, and one that finds it taken skips.
_MAINTENANCE_LOCK = 0x7472_6869_7374_6F72
# Creating and dropping a partition locks its parent briefly; rather than queue the ingest's inserts
# behind a long read that holds the parent, give up and try again at the next run.
_LOCK_TIMEOUT = "5s"

_MINUTE_COLUMNS = tuple(EquityMinute.__table__.c.keys())

_ROLL_UP = """
INSERT INTO equity_minutes AS m ({columns})
SELECT g.account_id, g.minute, g.snapshots, g.first_taken_at, g.last_taken_at,
       f.equity, l.equity, g.equity_min, g.equity_max,
       f.balance, l.balance, g.balance_min, g.balance_max,
       l.peak_equity, l.drawdown_pct, g.drawdown_max_pct
FROM (
    SELECT account_id,
           date_trunc('minute', taken_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS minute,
           count(*) AS snapshots, min(taken_at) AS first_taken_at, max(taken_at) AS last_taken_at,
           min(equity) AS equity_min, max(equity) AS equity_max,
           min(balance) AS balance_min, max(balance) AS balance_max, max(drawdown_pct) AS drawdown_max_pct
    FROM {source}
    WHERE taken_at >= :kept_from AND taken_at < :cutoff
    GROUP BY 1, 2
) AS g
JOIN {source} AS f ON f.account_id = g.account_id AND f.taken_at = g.first_taken_at
JOIN {source} AS l ON l.account_id = g.account_id AND l.taken_at = g.last_taken_at
ON CONFLICT (account_id, minute) DO UPDATE SET
    snapshots = m.snapshots + EXCLUDED.snapshots,
    first_taken_at = LEAST(m.first_taken_at, EXCLUDED.first_taken_at),
    equity_first = CASE WHEN EXCLUDED.first_taken_at < m.first_taken_at
                        THEN EXCLUDED.equity_first ELSE m.equity_first END,
    balance_first = CASE WHEN EXCLUDED.first_taken_at < m.first_taken_at
                         THEN EXCLUDED.balance_first ELSE m.balance_first END,
    last_taken_at = GREATEST(m.last_taken_at, EXCLUDED.last_taken_at),
    equity_last = CASE WHEN EXCLUDED.last_taken_at > m.last_taken_at
                       THEN EXCLUDED.equity_last ELSE m.equity_last END,
    balance_last = CASE WHEN EXCLUDED.last_taken_at > m.last_taken_at
                        THEN EXCLUDED.balance_last ELSE m.balance_last END,
    peak_equity = CASE WHEN EXCLUDED.last_taken_at > m.last_taken_at
                       THEN EXCLUDED.peak_equity ELSE m.peak_equity END,
    drawdown_pct = CASE WHEN EXCLUDED.last_taken_at > m.last_taken_at
                        THEN EXCLUDED.drawdown_pct ELSE m.drawdown_pct END,
    equity_min = LEAST(m.equity_min, EXCLUDED.equity_min),
    equity_max = GREATEST(m.equity_max, EXCLUDED.equity_max),
    balance_min = LEAST(m.balance_min, EXCLUDED.balance_min),
    balance_max = GREATEST(m.balance_max, EXCLUDED.balance_max),
    drawdown_max_pct = GREATEST(m.drawdown_max_pct, EXCLUDED.drawdown_max_pct)
"""


@dataclass(frozen=True)
class HistoryPolicy:
    raw_retention: timedelta
    minute_retention: timedelta
    partitions_ahead: int


@dataclass
class MaintenanceReport:
    ran: bool = True
    """False when another process held the maintenance."""
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    minutes_written: int = 0
    """Minute aggregates inserted or merged into."""
    raw_kept_from: datetime | None = None
    minute_kept_from: datetime | None = None


async def maintain_history(
    session: AsyncSession, *, now: datetime, policy: HistoryPolicy
) -> MaintenanceReport:
    """One run of the maintenance, in the session's transaction (the caller commits)."""
    raw_cutoff = retention_cutoff(now, policy.raw_retention, RAW_PARTITION)
    minute_cutoff = retention_cutoff(now, policy.minute_retention, MINUTE_PARTITION)
    report = MaintenanceReport(raw_kept_from=raw_cutoff, minute_kept_from=minute_cutoff)
    if session.bind.dialect.name == "postgresql":
        taken = await session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _MAINTENANCE_LOCK}
        )
        if not taken:
            return MaintenanceReport(ran=False)
        await session.execute(text(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'"))
        await _maintain_partitions(session, now=now, policy=policy, report=report)
    else:
        await _maintain_tables(session, raw_cutoff=raw_cutoff, minute_cutoff=minute_cutoff, report=report)
    await _store_kept_from(session, {Resolution.RAW: raw_cutoff, Resolution.MINUTE: minute_cutoff})
    return report


async def kept_from(session: AsyncSession) -> dict[Resolution, datetime]:
    rows = await session.execute(select(HistoryRetention.series, HistoryRetention.kept_from))
    return {Resolution(series): moment for series, moment in rows}


async def _store_kept_from(session: AsyncSession, bounds: dict[Resolution, datetime]) -> None:
    """Only ever later: a run with a longer retention than the last cannot bring back what is gone."""
    held = await kept_from(session)
    for series, moment in bounds.items():
        if series in held and held[series] >= moment:
            continue
        await session.merge(HistoryRetention(series=series.value, kept_from=moment))


async def _maintain_partitions(
    session: AsyncSession, *, now: datetime, policy: HistoryPolicy, report: MaintenanceReport
) -> None:
    raw_cutoff, minute_cutoff = report.raw_kept_from, report.minute_kept_from
    raw = await _partitions(session, RAW_TABLE, RAW_PARTITION)
    minute = await _partitions(session, MINUTE_TABLE, MINUTE_PARTITION)
    # Minute partitions first, so that the roll-up lands in them rather than in the default one.
    for partition in partitions_wanted(now, minute_cutoff, MINUTE_PARTITION, 1):
        if partition not in minute:
            await _create_partition(session, MINUTE_TABLE, "minute", partition, report)
    for partition in partitions_wanted(now, raw_cutoff, RAW_PARTITION, policy.partitions_ahead):
        if partition not in raw:
            await _create_partition(session, RAW_TABLE, "taken_at", partition, report)
    bounds = {"kept_from": minute_cutoff, "cutoff": raw_cutoff}
    for partition in partitions_past(raw, raw_cutoff):
        name = _qualified(partition.name(RAW_TABLE))
        report.minutes_written += (await session.execute(text(_roll_up_from(name)), bounds)).rowcount
        await session.execute(text(f"DROP TABLE {name}"))
        report.dropped.append(name)
    default = _qualified(f"{RAW_TABLE}_default")
    report.minutes_written += (await session.execute(text(_roll_up_from(default)), bounds)).rowcount
    await session.execute(text(f"DELETE FROM {default} WHERE taken_at < :cutoff"), {"cutoff": raw_cutoff})
    for partition in partitions_past(minute, minute_cutoff):
        name = _qualified(partition.name(MINUTE_TABLE))
        await session.execute(text(f"DROP TABLE {name}"))
        report.dropped.append(name)
    await session.execute(
        text(f"DELETE FROM {_qualified(f'{MINUTE_TABLE}_default')} WHERE minute < :cutoff"),
        {"cutoff": minute_cutoff},
    )


def _roll_up_from(source: str) -> str:
    return _ROLL_UP.format(columns=", ".join(_MINUTE_COLUMNS), source=source)


def _qualified(name: str) -> str:
    return f"{PARTITIONS_SCHEMA}.{name}"


async def _partitions(session: AsyncSession, table: str, width: timedelta) -> dict[Partition, str]:
    """The table's partitions by the range their names stand for (the default one has none)."""
    names = await session.scalars(
        text(
            "SELECT child.relname FROM pg_inherits"
            " JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid"
            " JOIN pg_class AS parent ON parent.oid = pg_inherits.inhparent"
            " JOIN pg_namespace ON pg_namespace.oid = parent.relnamespace"
            " WHERE parent.relname = :table AND pg_namespace.nspname = current_schema()"
        ),
        {"table": table},
    )
    found = {}
    for name in names:
        partition = partition_named(name, table, width)
        if partition is not None:
            found[partition] = name
    return found


async def _create_partition(
    session: AsyncSession, table: str, column: str, partition: Partition, report: MaintenanceReport
) -> None:
    """A partition for the range; rows of it that the default partition took meanwhile move into it,
    since PostgreSQL refuses a partition whose rows the default one holds."""
    name = _qualified(partition.name(table))
    default = _qualified(f"{table}_default")
    bounds = {"start": partition.start, "end": partition.end}
    in_range = f"{column} >= :start AND {column} < :end"
    # DDL takes no parameters; the bounds are times this module made, written out in ISO 8601.
    range_of = f"FROM ('{partition.start.isoformat()}') TO ('{partition.end.isoformat()}')"
    held = await session.scalar(text(f"SELECT EXISTS (SELECT 1 FROM {default} WHERE {in_range})"), bounds)
    if held:
        await session.execute(
            text(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        )
        await session.execute(
            text(
                f"WITH moved AS (DELETE FROM {default} WHERE {in_range} RETURNING *) INSERT INTO {name} SELECT * FROM moved"
            ),
            bounds,
        )
        await session.execute(text(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES {range_of}"))
    else:
        await session.execute(text(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES {range_of}"))
    report.created.append(name)


async def _maintain_tables(
    session: AsyncSession, *, raw_cutoff: datetime, minute_cutoff: datetime, report: MaintenanceReport
) -> None:
    raw_rows = (
        await session.execute(
            select(
                AccountSnapshot.account_id,
                AccountSnapshot.taken_at,
                AccountSnapshot.balance,
                AccountSnapshot.equity,
                AccountSnapshot.peak_equity,
                AccountSnapshot.drawdown_pct,
            ).where(AccountSnapshot.taken_at >= minute_cutoff, AccountSnapshot.taken_at < raw_cutoff)
        )
    ).all()
    rolled = roll_up(RawPoint(*row) for row in raw_rows)
    if rolled:
        # The minutes rolled up before, which points arriving late add to.
        held = {
            (row.account_id, row.minute): row
            for row in await session.scalars(
                select(EquityMinute).where(
                    EquityMinute.minute >= min(aggregate.minute for aggregate in rolled),
                    EquityMinute.minute <= max(aggregate.minute for aggregate in rolled),
                )
            )
        }
        merged = [
            aggregate
            if (aggregate.account_id, aggregate.minute) not in held
            else merge(_aggregate_of_row(held[aggregate.account_id, aggregate.minute]), aggregate)
            for aggregate in rolled
        ]
        statement = sqlite_insert(EquityMinute)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["account_id", "minute"],
                set_={
                    key: statement.excluded[key]
                    for key in _MINUTE_COLUMNS
                    if key not in ("account_id", "minute")
                },
            ),
            [{key: getattr(aggregate, key) for key in _MINUTE_COLUMNS} for aggregate in merged],
        )
        report.minutes_written = len(merged)
    await session.execute(delete(AccountSnapshot).where(AccountSnapshot.taken_at < raw_cutoff))
    await session.execute(delete(EquityMinute).where(EquityMinute.minute < minute_cutoff))


def _aggregate_of_row(row: EquityMinute) -> MinuteAggregate:
    return MinuteAggregate(**{key: getattr(row, key) for key in _MINUTE_COLUMNS})
