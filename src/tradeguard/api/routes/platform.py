"""The operator's view of the whole platform: owners and admins only, a 404 to anyone else."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from tradeguard.api.deps import PrincipalDep, ReadsDep
from tradeguard.api.params import MAX_ID, CursorQuery
from tradeguard.api.responses import JSONBytes
from tradeguard.queries.platform import STATUSES, PlatformFilters
from tradeguard.queries.read_models import PlatformAccountPage
from tradeguard.values import text

router = APIRouter(prefix="/platform", tags=["platform"])

Status = Literal[STATUSES]


@router.get(
    "/accounts",
    response_model=PlatformAccountPage,
    responses={404: {"description": "the caller is not an operator (owner or admin)"}},
)
async def accounts(
    principal: PrincipalDep,
    reads: ReadsDep,
    status: Annotated[Status | None, Query(description="the account's attention status")] = None,
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
