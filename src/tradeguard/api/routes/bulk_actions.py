"""The operator's bulk actions: halt or re-arm every account of a signal or a broker, close a symbol everywhere.

Each request is one transaction: it is done for every account it selects, or for none.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from tradeguard.actions.bulk import Operator, TradingChange, close_symbol, halt_selected, rearm_selected
from tradeguard.api.deps import AuthenticatedRoute, OperatorDep, ServicesDep
from tradeguard.api.responses import model_response
from tradeguard.api.routes.ingest import command_out
from tradeguard.api.schemas import (
    AccountSelector,
    BulkCloseOut,
    BulkCloseSymbol,
    BulkHalt,
    BulkTradingOut,
    SymbolCloseOut,
    TradingChangeOut,
)
from tradeguard.unit_of_work import UnitOfWork

router = APIRouter(prefix="/platform", tags=["platform"], route_class=AuthenticatedRoute)

_NOT_AN_OPERATOR = {404: {"description": "the caller is not the platform's operator"}}


def _trading_out(
    operator: Operator, changes: list[TradingChange], changed: str, unchanged: str
) -> BulkTradingOut:
    return BulkTradingOut(
        bulk_action_id=operator.bulk_action_id,
        accounts=[
            TradingChangeOut(account_id=change.account.id, outcome=changed if change.changed else unchanged)
            for change in changes
        ],
    )


def _changed(work: UnitOfWork, changes: list[TradingChange]) -> None:
    for change in changes:
        if change.changed:
            work.account_changed(change.account.id, change.account.owner_id)
            work.publish_state(change.state)


@router.post("/halt", response_model=BulkTradingOut, responses=_NOT_AN_OPERATOR)
async def halt(body: BulkHalt, principal: OperatorDep, services: ServicesDep):
    """Halt every account of the signal or broker, as a drawdown halt does; audited and alerted.

    An account already halted keeps its first reason (`already_halted`).
    """
    operator = Operator(principal.user_id)
    async with services.unit_of_work() as work:
        changes = await halt_selected(
            work.session,
            body.selection(),
            reason=body.reason,
            operator=operator,
            now=datetime.now(UTC),
            notifiers=services.ingest_policy.guards.notifiers,
        )
        _changed(work, changes)
    return model_response(_trading_out(operator, changes, "halted", "already_halted"))


@router.post("/rearm", response_model=BulkTradingOut, responses=_NOT_AN_OPERATOR)
async def rearm(body: AccountSelector, principal: OperatorDep, services: ServicesDep):
    """Re-arm every halted account of the signal or broker, as its owner's re-arm does (keeping the peak)."""
    operator = Operator(principal.user_id)
    async with services.unit_of_work() as work:
        changes = await rearm_selected(
            work.session,
            body.selection(),
            operator=operator,
            now=datetime.now(UTC),
            policy=services.ingest_policy.guards,
        )
        _changed(work, changes)
    return model_response(_trading_out(operator, changes, "rearmed", "not_halted"))


@router.post("/close-symbol", response_model=BulkCloseOut, responses=_NOT_AN_OPERATOR)
async def close_symbol_everywhere(body: BulkCloseSymbol, principal: OperatorDep, services: ServicesDep):
    """A close command, cause `operator`, for every open position in the symbol (of the signal, if given).

    Bridges receive them on their next poll; snapshots settle them as any close command.
    """
    operator = Operator(principal.user_id)
    async with services.unit_of_work() as work:
        closes = await close_symbol(
            work.session,
            body.symbol,
            signal=body.signal,
            operator=operator,
            now=datetime.now(UTC),
            max_attempts=services.ingest_policy.guards.command_max_attempts,
        )
        for close in closes:
            if close.issued:
                work.account_changed(close.account_id, close.owner_id)
    return model_response(
        BulkCloseOut(
            bulk_action_id=operator.bulk_action_id,
            accounts=[
                SymbolCloseOut(
                    account_id=close.account_id,
                    commands=[command_out(command) for command in close.issued],
                    not_issued=close.not_issued,
                )
                for close in closes
            ],
        )
    )
