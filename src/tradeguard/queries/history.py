"""Alert history and the equity and drawdown series."""

from __future__ import annotations

from datetime import datetime

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.api.schemas import AlertOut, EquityPoint
from tradeguard.store.models import AccountSnapshot, Alert


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


async def equity_points(
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
        EquityPoint(
            taken_at=row.taken_at,
            balance=row.balance,
            equity=row.equity,
            peak_equity=row.peak_equity,
            drawdown_pct=row.drawdown_pct,
        )
        for row in rows
    ]
