"""Expected trades: the platform tells an account which trades it sent, and which it closed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from tradeguard.accounts.service import get_visible_account
from tradeguard.api.deps import AuthenticatedRoute, PrincipalDep, ServicesDep, SessionDep
from tradeguard.api.openapi import exact_json_body, raw_json_body
from tradeguard.api.params import AccountIdPath, CursorQuery, KeyPath
from tradeguard.api.responses import model_response
from tradeguard.api.schemas import ErrorBody, NoFields
from tradeguard.ingest.trade_body import TradeIn
from tradeguard.ingest.trades import close_expected_trade, list_expected_trades, record_expected_trade
from tradeguard.queries.read_models import TradeOut, TradePage, TradeStatus
from tradeguard.store.models import ExpectedTrade

router = APIRouter(prefix="/accounts", tags=["trades"], route_class=AuthenticatedRoute)


def _checked_against_the_server_clock(request: Request) -> dict:
    services = request.app.state.services
    return services.ingest_policy.clock_at(datetime.now(UTC)).context()


ExactTradeIn = exact_json_body(TradeIn, context=_checked_against_the_server_clock)

NOT_FOUND = {404: {"model": ErrorBody, "description": "no such account or trade visible to the caller"}}


def _trade_out(trade: ExpectedTrade) -> TradeOut:
    return TradeOut.model_validate(trade, from_attributes=True)


@router.post(
    "/{account_id}/trades",
    response_model=TradeOut,
    status_code=201,
    responses={
        200: {"model": TradeOut, "description": "this trade_id was already recorded with the same body"},
        409: {"model": ErrorBody, "description": "this trade_id was already recorded with a different body"},
        **NOT_FOUND,
    },
    openapi_extra=raw_json_body(TradeIn),
)
async def record(
    account_id: AccountIdPath,
    body: ExactTradeIn,
    principal: PrincipalDep,
    services: ServicesDep,
):
    async with services.unit_of_work() as work:
        account = await get_visible_account(work.session, principal, account_id)
        trade, created = await record_expected_trade(work.session, account, body, now=datetime.now(UTC))
        work.account_changed(account.id, account.owner_id)
    return model_response(_trade_out(trade), 201 if created else 200)


@router.post("/{account_id}/trades/{trade_id}/close", response_model=TradeOut, responses=NOT_FOUND)
async def close(
    account_id: AccountIdPath,
    trade_id: KeyPath,
    principal: PrincipalDep,
    services: ServicesDep,
    body: NoFields | None = None,
):
    async with services.unit_of_work() as work:
        account = await get_visible_account(work.session, principal, account_id)
        trade = await close_expected_trade(work.session, account, trade_id, now=datetime.now(UTC))
        work.account_changed(account.id, account.owner_id)
    return model_response(_trade_out(trade))


@router.get("/{account_id}/trades", response_model=TradePage, responses=NOT_FOUND)
async def index(
    account_id: AccountIdPath,
    principal: PrincipalDep,
    session: SessionDep,
    status: TradeStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: CursorQuery = None,
):
    account = await get_visible_account(session, principal, account_id)
    trades = await list_expected_trades(session, account, status=status, limit=limit, before_id=cursor)
    next_cursor = trades[-1].id if len(trades) == limit else None
    return model_response(
        TradePage(account_id=account.id, trades=[_trade_out(t) for t in trades], next_cursor=next_cursor)
    )
