"""The cached read endpoints: reconciliation, positions, guards, alerts, equity.

The endpoints named after a hot view (`reconciliation_status`, `open_positions`, `guard_status`)
are also the definitions the cache-hit fast path (`api/fast_reads.py`) answers from: their path,
query parameters and latency series.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError

from tradeguard.api.deps import PrincipalDep, ReadsDep
from tradeguard.api.params import AccountIdPath, AccountIdQuery, CursorQuery, PositionIdPath
from tradeguard.api.responses import JSONBytes
from tradeguard.domain.history import Resolution
from tradeguard.queries.read_models import (
    AlertPage,
    EquitySeries,
    GuardStatus,
    OpenPositions,
    PositionOut,
    ReconciliationLogPage,
    ReconciliationStatus,
)
from tradeguard.values import UtcTime, text

router = APIRouter(tags=["reads"])

Limit = Annotated[int, Query(ge=1, le=500)]
NOT_FOUND = {404: {"description": "no such resource visible to the caller"}}


@router.get("/reconciliation/status", response_model=ReconciliationStatus, responses=NOT_FOUND)
async def reconciliation_status(principal: PrincipalDep, reads: ReadsDep, account_id: AccountIdQuery = None):
    return JSONBytes(await reads.reconciliation_status(principal, account_id))


@router.get("/reconciliation/logs", response_model=ReconciliationLogPage, responses=NOT_FOUND)
async def reconciliation_logs(
    principal: PrincipalDep,
    reads: ReadsDep,
    account_id: AccountIdQuery = None,
    event_type: text(32) | None = None,
    reason: text(64) | None = None,
    symbol: text(32) | None = None,
    since: UtcTime | None = None,
    until: UtcTime | None = None,
    limit: Limit = 50,
    cursor: CursorQuery = None,
):
    body = await reads.reconciliation_logs(
        principal,
        account_id,
        limit=limit,
        cursor=cursor,
        event_type=event_type,
        reason=reason,
        symbol=symbol,
        since=since,
        until=until,
    )
    return JSONBytes(body)


@router.get("/positions/open", response_model=OpenPositions, responses=NOT_FOUND)
async def open_positions(
    principal: PrincipalDep,
    reads: ReadsDep,
    account_id: AccountIdQuery = None,
    symbol: text(32, min_length=1) | None = None,
):
    return JSONBytes(await reads.open_positions(principal, account_id, symbol))


@router.get("/positions/{position_id}", response_model=PositionOut, responses=NOT_FOUND)
async def position(position_id: PositionIdPath, principal: PrincipalDep, reads: ReadsDep):
    return JSONBytes(await reads.position(principal, position_id))


@router.get("/guards/status", response_model=GuardStatus, responses=NOT_FOUND)
async def guard_status(principal: PrincipalDep, reads: ReadsDep, account_id: AccountIdQuery = None):
    return JSONBytes(await reads.guard_status(principal, account_id))


@router.get("/alerts", response_model=AlertPage, responses=NOT_FOUND)
async def alerts(
    principal: PrincipalDep,
    reads: ReadsDep,
    account_id: AccountIdQuery = None,
    level: Literal["info", "warning", "critical"] | None = None,
    kind: text(32) | None = None,
    limit: Limit = 50,
    cursor: CursorQuery = None,
):
    body = await reads.alerts(principal, account_id, limit=limit, cursor=cursor, level=level, kind=kind)
    return JSONBytes(body)


@router.get("/accounts/{account_id}/equity", response_model=EquitySeries, responses=NOT_FOUND)
async def equity(
    account_id: AccountIdPath,
    principal: PrincipalDep,
    reads: ReadsDep,
    since: UtcTime | None = None,
    until: UtcTime | None = None,
    limit: Annotated[
        int | None,
        Query(ge=1, le=5000, description="the window's latest snapshots, one by one (500 by default)"),
    ] = None,
    max_points: Annotated[
        int | None, Query(ge=2, le=5000, description="the window cut into at most this many buckets instead")
    ] = None,
    resolution: Annotated[
        Resolution | None,
        Query(
            description="raw (each snapshot) or minute (minute aggregates); by default raw, unless the "
            "window reaches before the raw points kept"
        ),
    ] = None,
):
    if since is not None and until is not None and since >= until:
        raise _invalid_query("until", until, "must be later than since")
    if limit is not None and max_points is not None:
        raise _invalid_query(
            "max_points", max_points, "give max_points (buckets) or limit (snapshots), not both"
        )
    body = await reads.equity(
        principal,
        account_id,
        since=since,
        until=until,
        limit=limit,
        max_points=max_points,
        resolution=resolution,
    )
    return JSONBytes(body)


def _invalid_query(name: str, value: object, message: str) -> RequestValidationError:
    """Reported like the framework's own refusals: a 422 naming the parameter."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", name), "msg": message, "input": value}]
    )
