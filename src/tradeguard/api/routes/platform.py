"""The operator's view of the whole platform: owners and admins only, a 404 to anyone else."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field

from tradeguard.api.deps import PrincipalDep, ReadsDep
from tradeguard.api.params import MAX_ID, CursorQuery
from tradeguard.api.responses import JSONBytes
from tradeguard.api.routes.exposure import OPERATORS_ONLY
from tradeguard.queries.platform import PlatformFilters
from tradeguard.queries.read_models import AttentionName, PlatformAccountPage, PlatformDrawdowns
from tradeguard.values import text

router = APIRouter(prefix="/platform", tags=["platform"])

MAX_DRAWDOWN_ACCOUNTS = 100


@router.get(
    "/accounts",
    response_model=PlatformAccountPage,
    responses=OPERATORS_ONLY,
)
async def accounts(
    principal: PrincipalDep,
    reads: ReadsDep,
    status: Annotated[AttentionName | None, Query(description="the account's attention status")] = None,
    broker: text(120) | None = None,
    signal: Annotated[
        text(64, min_length=1) | None, Query(description="accounts holding an open trade of this signal")
    ] = None,
    owner_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: CursorQuery = None,
):
    filters = PlatformFilters(status=status, broker=broker, signal=signal, owner_id=owner_id)
    return JSONBytes(await reads.platform_accounts(principal, filters, limit=limit, cursor=cursor))


@router.get("/drawdowns", response_model=PlatformDrawdowns, responses=OPERATORS_ONLY)
async def drawdowns(
    principal: PrincipalDep,
    reads: ReadsDep,
    account_id: Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_ID)]],
        Query(min_length=1, max_length=MAX_DRAWDOWN_ACCOUNTS, description="an account; repeated, up to 100"),
    ],
    hours: Annotated[int, Query(ge=1, le=24, description="how far back the series reaches")] = 1,
):
    """Each account's deepest drawdown per bucket over the last `hours`, for a page's sparklines."""
    account_ids = sorted(set(account_id))
    return JSONBytes(await reads.platform_drawdowns(principal, account_ids, timedelta(hours=hours)))
