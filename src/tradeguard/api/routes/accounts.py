from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Query

from tradeguard.accounts.risk_rules import RuleIn, RuleSetIn, rule_data, rule_set_data
from tradeguard.accounts.service import (
    change_guard_rules,
    create_account,
    get_visible_account,
    guard_config_of,
    guard_rules_of,
    guard_rules_source,
    list_accounts,
    update_guard_config,
)
from tradeguard.actions.guarding import rearm_account
from tradeguard.api.deps import AuthenticatedRoute, PrincipalDep, ServicesDep, SessionDep
from tradeguard.api.params import MAX_ID, AccountIdPath
from tradeguard.api.responses import JSONBytes, model_response
from tradeguard.api.schemas import (
    AccountCreate,
    AccountList,
    AccountOut,
    GuardConfigOut,
    GuardConfigUpdate,
    GuardRulesOut,
    RearmRequest,
)
from tradeguard.queries.guard_rules import rule_standings
from tradeguard.queries.read_models import GuardStatus
from tradeguard.store.models import Account, AccountState

router = APIRouter(prefix="/accounts", tags=["accounts"], route_class=AuthenticatedRoute)


def _account_out(account: Account) -> AccountOut:
    return AccountOut.model_validate(account, from_attributes=True)


@router.post("", response_model=AccountOut, status_code=201)
async def create(body: AccountCreate, principal: PrincipalDep, services: ServicesDep):
    async with services.unit_of_work() as work:
        account = await create_account(
            work.session,
            principal,
            name=body.name,
            broker=body.broker,
            login=body.login,
            currency=body.currency,
            now=datetime.now(UTC),
        )
        work.account_changed(account.id, account.owner_id)
    return model_response(_account_out(account), 201)


@router.get("", response_model=AccountList)
async def index(
    principal: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="next_cursor of the previous page")
    ] = None,
):
    accounts = await list_accounts(session, principal, limit=limit, after_id=cursor)
    next_cursor = accounts[-1].id if len(accounts) == limit else None
    return model_response(AccountList(accounts=[_account_out(a) for a in accounts], next_cursor=next_cursor))


@router.get("/{account_id}/guard-config", response_model=GuardConfigOut)
async def read_guard_config(account_id: AccountIdPath, principal: PrincipalDep, session: SessionDep):
    account = await get_visible_account(session, principal, account_id)
    return model_response(GuardConfigOut(account_id=account.id, **guard_config_of(account).model_dump()))


@router.put("/{account_id}/guard-config", response_model=GuardConfigOut)
async def change_guard_config(
    account_id: AccountIdPath,
    body: GuardConfigUpdate,
    principal: PrincipalDep,
    services: ServicesDep,
):
    async with services.unit_of_work() as work:
        account = await get_visible_account(work.session, principal, account_id)
        config = await update_guard_config(work.session, account, body.model_dump(exclude_unset=True))
        work.account_changed(account.id, account.owner_id)
    return model_response(GuardConfigOut(account_id=account.id, **config.model_dump()))


async def _guard_rules_out(session: SessionDep, account: Account) -> GuardRulesOut:
    state = await session.get(AccountState, account.id)
    judged = guard_rules_of(account)
    given = rule_set_data(judged) if account.guard_rules is None else orjson.loads(account.guard_rules)
    return GuardRulesOut(
        account_id=account.id,
        source=guard_rules_source(account),
        rule_set=RuleSetIn.model_validate(given),
        rules=[RuleIn.model_validate(rule_data(rule)) for rule in judged.rules],
        standings=await rule_standings(session, account, state),
    )


@router.get("/{account_id}/guard-rules", response_model=GuardRulesOut)
async def read_guard_rules(account_id: AccountIdPath, principal: PrincipalDep, session: SessionDep):
    """The rules the account is judged by, and where it stands against each on its last snapshot."""
    account = await get_visible_account(session, principal, account_id)
    return model_response(await _guard_rules_out(session, account))


@router.put("/{account_id}/guard-rules", response_model=GuardRulesOut)
async def set_guard_rules(
    account_id: AccountIdPath, body: RuleSetIn, principal: PrincipalDep, services: ServicesDep
):
    """Judge the account by this rule set from its next snapshot on; audited."""
    return await _change_guard_rules(account_id, body, principal, services)


@router.delete("/{account_id}/guard-rules", response_model=GuardRulesOut)
async def remove_guard_rules(account_id: AccountIdPath, principal: PrincipalDep, services: ServicesDep):
    """Judge the account by its drawdown settings again from its next snapshot on; audited."""
    return await _change_guard_rules(account_id, None, principal, services)


async def _change_guard_rules(account_id: int, body: RuleSetIn | None, principal, services) -> JSONBytes:
    async with services.unit_of_work() as work:
        account = await get_visible_account(work.session, principal, account_id)
        change_guard_rules(work.session, account, body, by_user_id=principal.user_id, now=datetime.now(UTC))
        answer = await _guard_rules_out(work.session, account)
        work.account_changed(account.id, account.owner_id)
    return model_response(answer)


@router.post(
    "/{account_id}/guard/rearm",
    response_model=GuardStatus,
    responses={404: {"description": "no such account"}},
)
async def rearm(
    account_id: AccountIdPath,
    principal: PrincipalDep,
    services: ServicesDep,
    body: RearmRequest | None = None,
):
    """Let a halted account trade again (`trading_allowed: true`); audited and alerted.

    Cancels the account's drawdown close commands not yet carried out.
    """
    async with services.unit_of_work() as work:
        account = await get_visible_account(work.session, principal, account_id)
        state = await rearm_account(
            work.session,
            account,
            by_user_id=principal.user_id,
            reset_peak=body.reset_peak if body else False,
            now=datetime.now(UTC),
            policy=services.ingest_policy.guards,
        )
        work.account_changed(account.id, account.owner_id)
        work.publish_state(state)
    return JSONBytes(await services.reads.guard_status(principal, account.id))
