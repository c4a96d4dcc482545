"""Alert history and the equity and drawdown series."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
from sqlalchemy import Integer, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Subquery

from tradeguard.domain.history import (
    MINUTE,
    Resolution,
    UnanswerableWindow,
    bucket_width_at,
    resolution_for,
    window_at,
)
from tradeguard.errors import InvalidInput
from tradeguard.queries.read_models import (
    AlertOut,
    DrawdownSeries,
    EquityPoint,
    EquitySeries,
    PlatformDrawdowns,
)
from tradeguard.store.functions import decimal_max, decimal_min, time_bucket
from tradeguard.store.models import Account, AccountSnapshot, Alert, EquityMinute, HistoryRetention

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
    resolution: Resolution | None = None,
) -> EquitySeries:
    """The window's snapshots one by one (the latest `limit`), or cut into at most `max_points` buckets.

    Without bounds, a bucketed window is the whole history: from the first snapshot to just after the
    latest one. A window reaching before the raw points kept is answered from minute aggregates (as
    is any window when `resolution` asks for minutes), one by one or in buckets of whole minutes.
    """
    first, last, raw_kept_from = await _history_bounds(session, account.id)
    bucket_width: timedelta | None = None
    if max_points is None:
        chosen = _resolution(resolution, since, raw_kept_from)
        if chosen is Resolution.RAW:
            limit = limit or RAW_POINTS_LIMIT
            points = await _equity_points(session, account.id, since=since, until=until, limit=limit)
        else:
            since, until = window_at(chosen, since, until)
            bucket_width = MINUTE
            points = await _minute_buckets(
                session,
                account.id,
                since=since,
                until=until,
                width=bucket_width,
                raw_kept_from=raw_kept_from,
                latest=limit or RAW_POINTS_LIMIT,
            )
    else:
        since = since or first
        until = until or (last + _JUST_AFTER if last is not None else None)
        chosen = _resolution(resolution, since, raw_kept_from)
        since, until = window_at(chosen, since, until)
        points = []
        if since is not None and until is not None and since < until:
            bucket_width = bucket_width_at(chosen, bucket_width_for(until - since, max_points))
            if chosen is Resolution.RAW:
                points = await _equity_buckets(
                    session, account.id, since=since, until=until, width=bucket_width
                )
            else:
                points = await _minute_buckets(
                    session,
                    account.id,
                    since=since,
                    until=until,
                    width=bucket_width,
                    raw_kept_from=raw_kept_from,
                )
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
        resolution=chosen.value,
    )


def _resolution(
    asked: Resolution | None, since: datetime | None, raw_kept_from: datetime | None
) -> Resolution:
    try:
        return resolution_for(asked, since, raw_kept_from)
    except UnanswerableWindow as refused:
        raise InvalidInput(str(refused), location=("query", refused.parameter)) from refused


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


async def _history_bounds(
    session: AsyncSession, account_id: int
) -> tuple[datetime | None, datetime | None, datetime | None]:
    """When the account's first and latest snapshots were taken, raw or rolled up into minutes (each
    one look-up in a key), and from when on the account's raw points are kept (None: none of them
    were ever rolled up)."""
    raw = AccountSnapshot.account_id == account_id
    minutes = select().where(EquityMinute.account_id == account_id).limit(1)
    row = (
        await session.execute(
            select(
                select(func.min(AccountSnapshot.taken_at)).where(raw).scalar_subquery(),
                select(func.max(AccountSnapshot.taken_at)).where(raw).scalar_subquery(),
                minutes.add_columns(EquityMinute.first_taken_at)
                .order_by(EquityMinute.minute)
                .scalar_subquery(),
                minutes.add_columns(EquityMinute.last_taken_at)
                .order_by(EquityMinute.minute.desc())
                .scalar_subquery(),
                select(HistoryRetention.kept_from)
                .where(HistoryRetention.series == Resolution.RAW.value)
                .scalar_subquery(),
            )
        )
    ).one()
    raw_first, raw_last, minute_first, minute_last, raw_kept_from = row
    if minute_first is None:
        # Nothing of the account was ever rolled up: all it has is raw, whenever it was taken (its
        # points older than the boundary came after the last roll-up, and go at the next).
        return raw_first, raw_last, None
    # Rolled-up minutes all come before the raw points kept.
    return minute_first, raw_last or minute_last, raw_kept_from


async def _equity_points(
    session: AsyncSession, account_id: int, *, since: datetime | None, until: datetime | None, limit: int
) -> list[EquityPoint]:
    """The latest `limit` snapshots in the window, oldest first, as a chart wants them."""
    query = (
        select(AccountSnapshot)
        .where(AccountSnapshot.account_id == account_id)
        .order_by(AccountSnapshot.taken_at.desc())
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
    by_time = {row.taken_at: row for row in (await session.scalars(latest)).all()}
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


async def _minute_buckets(
    session: AsyncSession,
    account_id: int,
    *,
    since: datetime | None,
    until: datetime | None,
    width: timedelta,
    raw_kept_from: datetime | None,
    latest: int | None = None,
) -> list[EquityPoint]:
    """As `_equity_buckets`, in buckets of whole minutes: the minute aggregates before the raw points
    kept, and the raw points from there on (not rolled up yet) in the same buckets, so that a window
    across the boundary reads as one series. With `latest`, only the latest that many buckets."""
    width_ms = width // _MILLISECOND
    origin_ms = _epoch_ms(since) // width_ms * width_ms if since is not None else 0
    combined = _minutes_and_raw_points(
        [account_id],
        since=since,
        until=until,
        origin_ms=origin_ms,
        width_ms=width_ms,
        raw_kept_from=raw_kept_from,
    )
    newest = func.max(combined.c.latest)
    buckets = select(
        func.sum(combined.c.snapshots).label("snapshots"),
        decimal_min(combined.c.equity_min).label("equity_min"),
        decimal_max(combined.c.equity_max).label("equity_max"),
        decimal_max(combined.c.drawdown_max_pct).label("drawdown_max_pct"),
        newest.label("latest"),
    ).group_by(combined.c.bucket)
    if latest is None:
        extremes = list((await session.execute(buckets.order_by(newest))).all())
    else:
        extremes = list((await session.execute(buckets.order_by(newest.desc()).limit(latest))).all())
        extremes.reverse()
    if not extremes:
        return []
    moments = [bucket.latest for bucket in extremes]
    # Each bucket's latest point, looked up in the keys: a minute by its last point, or a raw point.
    by_time: dict[datetime, EquityPoint] = {
        row.taken_at: _point(
            row, snapshots=1, equity_min=row.equity, equity_max=row.equity, drawdown_max_pct=row.drawdown_pct
        )
        for row in await session.scalars(
            select(AccountSnapshot).where(
                AccountSnapshot.account_id == account_id, AccountSnapshot.taken_at.in_(moments)
            )
        )
    }
    for row in await session.scalars(
        select(EquityMinute).where(
            EquityMinute.account_id == account_id, EquityMinute.last_taken_at.in_(moments)
        )
    ):
        by_time[row.last_taken_at] = EquityPoint(
            taken_at=row.last_taken_at,
            balance=row.balance_last,
            equity=row.equity_last,
            peak_equity=row.peak_equity,
            drawdown_pct=row.drawdown_pct,
            snapshots=row.snapshots,
            equity_min=row.equity_min,
            equity_max=row.equity_max,
            drawdown_max_pct=row.drawdown_max_pct,
        )
    return [
        by_time[bucket.latest].model_copy(
            update={
                "snapshots": bucket.snapshots,
                "equity_min": bucket.equity_min,
                "equity_max": bucket.equity_max,
                "drawdown_max_pct": bucket.drawdown_max_pct,
            }
        )
        for bucket in extremes
    ]


async def deepest_drawdowns(
    session: AsyncSession, account_ids: list[int], *, since: datetime, until: datetime, width: timedelta
) -> PlatformDrawdowns:
    """Per account, the deepest drawdown of each bucket of `width` from `since` to `until` (whole
    minutes on the grid of minutes), beside its drawdown thresholds, from raw points and minute
    aggregates alike, in one statement."""
    width_ms = width // _MILLISECOND
    buckets = (until - since) // width
    # No raw point is left out: one already rolled up into its minute counts twice, which leaves
    # the deepest drawdown as it is.
    combined = _minutes_and_raw_points(
        account_ids,
        since=since,
        until=until,
        origin_ms=_epoch_ms(since),
        width_ms=width_ms,
        raw_kept_from=None,
    )
    thresholds = (Account.drawdown_warning_pct, Account.drawdown_critical_pct)
    rows = await session.execute(
        select(Account.id, *thresholds, combined.c.bucket, decimal_max(combined.c.drawdown_max_pct))
        .join(Account, Account.id == combined.c.account_id)
        .group_by(Account.id, *thresholds, combined.c.bucket)
        .order_by(Account.id)
    )
    series: dict[int, DrawdownSeries] = {}
    for account_id, warning, critical, bucket, deepest in rows:
        held = series.get(account_id)
        if held is None:
            held = series[account_id] = DrawdownSeries(
                account_id=account_id,
                warning_threshold_pct=warning,
                critical_threshold_pct=critical,
                points=[None] * buckets,
            )
        # A time in the window's last half millisecond rounds to its end, one bucket too far.
        held.points[min(bucket, buckets - 1)] = deepest
    return PlatformDrawdowns(
        since=since, until=until, bucket_seconds=width.total_seconds(), accounts=list(series.values())
    )


def _minutes_and_raw_points(
    account_ids: list[int],
    *,
    since: datetime | None,
    until: datetime | None,
    origin_ms: int,
    width_ms: int,
    raw_kept_from: datetime | None,
) -> Subquery:
    """The accounts' minute aggregates and raw points in the window as one table, each row with its
    bucket of a grid of `width_ms` from `origin_ms` (a raw point as a minute of one snapshot). With
    `raw_kept_from`, only the raw points from there on."""
    minute_part = select(
        EquityMinute.account_id.label("account_id"),
        EquityMinute.last_taken_at.label("latest"),
        EquityMinute.snapshots.label("snapshots"),
        EquityMinute.equity_min.label("equity_min"),
        EquityMinute.equity_max.label("equity_max"),
        EquityMinute.drawdown_max_pct.label("drawdown_max_pct"),
        time_bucket(EquityMinute.minute, origin_ms, width_ms).label("bucket"),
    ).where(EquityMinute.account_id.in_(account_ids))
    raw_part = select(
        AccountSnapshot.account_id,
        AccountSnapshot.taken_at,
        literal(1, Integer),
        AccountSnapshot.equity,
        AccountSnapshot.equity,
        AccountSnapshot.drawdown_pct,
        time_bucket(AccountSnapshot.taken_at, origin_ms, width_ms),
    ).where(AccountSnapshot.account_id.in_(account_ids))
    if since is not None:
        minute_part = minute_part.where(EquityMinute.minute >= since)
        raw_part = raw_part.where(AccountSnapshot.taken_at >= since)
    if until is not None:
        minute_part = minute_part.where(EquityMinute.minute < until)
        raw_part = raw_part.where(AccountSnapshot.taken_at < until)
    if raw_kept_from is not None:
        # Points that arrived after their day was rolled up wait for the next roll-up, rather than be
        # counted in their minute twice.
        raw_part = raw_part.where(AccountSnapshot.taken_at >= raw_kept_from)
    return union_all(minute_part, raw_part).subquery()


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
