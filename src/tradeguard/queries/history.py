"""Alert history and the equity and drawdown series."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.queries.read_models import AlertOut, EquityPoint, EquitySeries
from tradeguard.store.functions import decimal_max, decimal_min, time_bucket
from tradeguard.store.models import Account, AccountSnapshot, Alert

RAW_POINTS_LIMIT = 500
"""How many snapshots a series without `limit` or `max_points` holds: the latest ones."""

_JUST_AFTER = timedelta(microseconds=1)
_MILLISECOND = timedelta(milliseconds=1)
_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)
_ROUND_WIDTHS = (
    *(_MILLISECOND * ms for ms in (1, 2, 5, 10, 20, 50, 100, 200, 500)),
    *(
        _SECOND * s
        for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)
    ),
)
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def alerts_page(
    session: AsyncSession,
    account_ids: list[int],
    *,
    limit: int,
    before_id: int | None,
    level: str | None,
    kind: str | None,
) -> list[AlertOut]:
    if not account_ids:
        return []
    query = select(Alert).where(Alert.account_id.in_(account_ids)).order_by(Alert.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(Alert.id < before_id)
    if level is not None:
        query = query.where(Alert.level == level)
    if kind is not None:
        query = query.where(Alert.kind == kind)
    return [
        AlertOut(
            id=row.id,
            account_id=row.account_id,
            created_at=row.created_at,
            kind=row.kind,
            level=row.level,
            symbol=row.symbol,
            message=row.message,
            details=orjson.loads(row.details),
        )
        for row in (await session.scalars(query)).all()
    ]


async def equity_series(
    session: AsyncSession,
    account: Account,
    *,
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
    max_points: int | None,
) -> EquitySeries:
    """The window's snapshots one by one (the latest `limit`), or cut into at most `max_points` buckets.

    Without bounds, a bucketed window is the whole history: from the first snapshot to just after the
    latest one.
    """
    first, last = await _history_bounds(session, account.id)
    bucket_width: timedelta | None = None
    if max_points is None:
        limit = limit or RAW_POINTS_LIMIT
        points = await _equity_points(session, account.id, since=since, until=until, limit=limit)
    else:
        since = since or first
        until = until or (last + _JUST_AFTER if last is not None else None)
        points = []
        if since is not None and until is not None and since < until:
            bucket_width = bucket_width_for(until - since, max_points)
            points = await _equity_buckets(session, account.id, since=since, until=until, width=bucket_width)
    return EquitySeries(
        account_id=account.id,
        warning_threshold_pct=account.drawdown_warning_pct,
        critical_threshold_pct=account.drawdown_critical_pct,
        points=points,
        since=since,
        until=until,
        bucket_seconds=bucket_width.total_seconds() if bucket_width is not None else None,
        first_taken_at=first,
        last_taken_at=last,
    )


def bucket_width_for(span: timedelta, max_points: int) -> timedelta:
    """The narrowest round width (1 ms to 12 h, then whole days) that cuts a window of `span` into at
    most `max_points` buckets of a grid aligned on the Unix epoch, wherever the window starts."""
    # A window starting inside a bucket reaches into span / width + 1 buckets at most; a millisecond
    # more because the database rounds each time to the nearest one, possibly up to the window's end.
    needed = (span + _MILLISECOND) / (max_points - 1)
    for width in _ROUND_WIDTHS:
        if width >= needed:
            return width
    return math.ceil(needed / _DAY) * _DAY


async def _history_bounds(session: AsyncSession, account_id: int) -> tuple[datetime | None, datetime | None]:
    """When the account's first and latest snapshots were taken (each one look-up in the index)."""
    of_account = AccountSnapshot.account_id == account_id
    first = select(func.min(AccountSnapshot.taken_at)).where(of_account).scalar_subquery()
    last = select(func.max(AccountSnapshot.taken_at)).where(of_account).scalar_subquery()
    row = (await session.execute(select(first, last))).one()
    return row[0], row[1]


async def _equity_points(
    session: AsyncSession, account_id: int, *, since: datetime | None, until: datetime | None, limit: int
) -> list[EquityPoint]:
    """The latest `limit` snapshots in the window, oldest first, as a chart wants them."""
    query = (
        select(AccountSnapshot)
        .where(AccountSnapshot.account_id == account_id)
        .order_by(AccountSnapshot.taken_at.desc(), AccountSnapshot.id.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(AccountSnapshot.taken_at >= since)
    if until is not None:
        query = query.where(AccountSnapshot.taken_at < until)
    rows = list((await session.scalars(query)).all())
    rows.reverse()
    return [
        _point(
            row, snapshots=1, equity_min=row.equity, equity_max=row.equity, drawdown_max_pct=row.drawdown_pct
        )
        for row in rows
    ]


async def _equity_buckets(
    session: AsyncSession, account_id: int, *, since: datetime, until: datetime, width: timedelta
) -> list[EquityPoint]:
    """One point per bucket that holds snapshots: its latest snapshot, with the lowest and highest
    equity and the deepest drawdown of all of them, so a spike within a bucket is never averaged away."""
    width_ms = width // _MILLISECOND
    origin_ms = _epoch_ms(since) // width_ms * width_ms
    in_window = (
        select(
            AccountSnapshot.taken_at,
            AccountSnapshot.equity,
            AccountSnapshot.drawdown_pct,
            time_bucket(AccountSnapshot.taken_at, origin_ms, width_ms).label("bucket"),
        )
        .where(
            AccountSnapshot.account_id == account_id,
            AccountSnapshot.taken_at >= since,
            AccountSnapshot.taken_at < until,
        )
        .subquery()
    )
    buckets = (
        select(
            func.count().label("snapshots"),
            decimal_min(in_window.c.equity).label("equity_min"),
            decimal_max(in_window.c.equity).label("equity_max"),
            decimal_max(in_window.c.drawdown_pct).label("drawdown_max_pct"),
            func.max(in_window.c.taken_at).label("latest"),
        )
        .group_by(in_window.c.bucket)
        .order_by(func.max(in_window.c.taken_at))
    )
    extremes = (await session.execute(buckets)).all()
    if not extremes:
        return []
    # The latest snapshot of each bucket, looked up in the index (a join would hash the whole window).
    latest = select(AccountSnapshot).where(
        AccountSnapshot.account_id == account_id,
        AccountSnapshot.taken_at.in_([bucket.latest for bucket in extremes]),
    )
    # Two snapshots taken at the same moment: the one stored last stands for its bucket.
    by_time = {
        row.taken_at: row for row in (await session.scalars(latest.order_by(AccountSnapshot.id))).all()
    }
    return [
        _point(
            by_time[bucket.latest],
            snapshots=bucket.snapshots,
            equity_min=bucket.equity_min,
            equity_max=bucket.equity_max,
            drawdown_max_pct=bucket.drawdown_max_pct,
        )
        for bucket in extremes
    ]


def _point(
    row: AccountSnapshot,
    *,
    snapshots: int,
    equity_min: Decimal,
    equity_max: Decimal,
    drawdown_max_pct: Decimal,
) -> EquityPoint:
    return EquityPoint(
        taken_at=row.taken_at,
        balance=row.balance,
        equity=row.equity,
        peak_equity=row.peak_equity,
        drawdown_pct=row.drawdown_pct,
        snapshots=snapshots,
        equity_min=equity_min,
        equity_max=equity_max,
        drawdown_max_pct=drawdown_max_pct,
    )


def _epoch_ms(moment: datetime) -> int:
    return (moment - _UNIX_EPOCH) // _MILLISECOND
