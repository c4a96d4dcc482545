"""Creating and finding accounts, with the rule that a user only ever reaches their own."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.accounts.guard_config import GUARD_CONFIG_FIELDS, GuardConfig
from tradeguard.accounts.risk_rules import RuleSetIn, canonical_json, rule_set_of
from tradeguard.accounts.trading import store_trading_state
from tradeguard.actions.audit import audit_event
from tradeguard.auth.tokens import Principal
from tradeguard.domain.guards.rules import RuleSet
from tradeguard.domain.trading import TradingState
from tradeguard.errors import Conflict, NotFound
from tradeguard.store.models import Account, AccountState


def initial_state(account_id: int) -> AccountState:
    state = AccountState(
        account_id=account_id,
        status="idle",
        total_syncs=0,
        open_positions_count=0,
        matched_positions=0,
        divergences_detected=0,
        drawdown_level="normal",
        consecutive_critical=0,
        open_divergences="[]",
        market_levels="{}",
        feed_stale=False,
    )
    store_trading_state(state, TradingState.active())
    return state


async def create_account(
    session: AsyncSession,
    owner: Principal,
    *,
    name: str,
    broker: str | None,
    login: str | None,
    currency: str,
    now: datetime,
) -> Account:
    account = Account(
        owner_id=owner.user_id,
        name=name,
        broker=broker,
        login=login,
        currency=currency,
        created_at=now,
        **GuardConfig().model_dump(),
    )
    session.add(account)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        existing = await session.scalar(
            select(Account.id).where(
                Account.owner_id == owner.user_id, Account.broker == broker, Account.login == login
            )
        )
        if existing is None:
            raise
        raise Conflict(f"broker {broker} login {login} is already registered as account {existing}") from None
    session.add(initial_state(account.id))
    await session.flush()
    return account


async def list_accounts(
    session: AsyncSession, principal: Principal, *, limit: int, after_id: int | None
) -> list[Account]:
    query = select(Account).order_by(Account.id).limit(limit)
    if not principal.sees_every_account:
        query = query.where(Account.owner_id == principal.user_id)
    if after_id is not None:
        query = query.where(Account.id > after_id)
    return list((await session.scalars(query)).all())


async def account_ids_of(session: AsyncSession, user_id: int) -> list[int]:
    rows = await session.scalars(select(Account.id).where(Account.owner_id == user_id).order_by(Account.id))
    return list(rows.all())


async def get_visible_account(session: AsyncSession, principal: Principal, account_id: int) -> Account:
    account = await session.get(Account, account_id)
    if account is None or not may_see(principal, account.owner_id):
        raise NotFound(f"account {account_id} not found")
    return account


def may_see(principal: Principal, owner_id: int) -> bool:
    return principal.sees_every_account or owner_id == principal.user_id


def stored_guard_config(account: Account) -> dict[str, Any]:
    """The account's guard configuration by field name, as stored: only a validated `GuardConfig`
    writes it, so reading it needs no validation (the guards read it on every snapshot)."""
    return {name: getattr(account, name) for name in GUARD_CONFIG_FIELDS}


def guard_config_of(account: Account) -> GuardConfig:
    return GuardConfig.model_validate(stored_guard_config(account))


async def update_guard_config(session: AsyncSession, account: Account, changes: dict) -> GuardConfig:
    """Store a partial update; a new stale-feed limit applies from the last snapshot on."""
    config = apply_guard_config(account, changes)
    state = await session.get(AccountState, account.id)
    if state.last_sync_at is not None:
        state.stale_at = state.last_sync_at + timedelta(seconds=config.stale_after_seconds)
    return config


def apply_guard_config(account: Account, changes: dict) -> GuardConfig:
    """Merge a partial update into the stored configuration and validate the whole before storing any of it.

    A merged whole that does not hold raises pydantic's `ValidationError`, its errors at the fields
    of the body (a rule over two fields at the first of them).
    """
    config = GuardConfig.model_validate(guard_config_of(account).model_dump() | changes)
    for name, value in config.model_dump().items():
        setattr(account, name, value)
    return config


def guard_rules_source(account: Account) -> str:
    return "settings" if account.guard_rules is None else "rules"


def guard_rules_of(account: Account) -> RuleSet:
    return rule_set_of(account.guard_rules, stored_guard_config(account))


def change_guard_rules(
    session: AsyncSession, account: Account, body: RuleSetIn | None, *, by_user_id: int, now: datetime
) -> RuleSet:
    """Store the account's rule set (None: back to its drawdown settings'), audited with what it changes.

    Nothing is judged now: the next snapshot is. A rule new to the account starts its period at
    that snapshot, taking its balance and equity as the period's start; a halt in place stays
    until re-armed, or until the rule that set it resumes.
    """
    before = guard_rules_source(account)
    account.guard_rules = None if body is None else canonical_json(body)
    rules = guard_rules_of(account)
    ids = [rule.id for rule in rules.rules]
    changed = (
        f"risk rules set by user {by_user_id}: {', '.join(ids) or 'none'}"
        if body is not None
        else f"risk rules removed by user {by_user_id}: its drawdown settings judge it again"
    )
    message = (
        f"account {account.id}: {changed}; from the next snapshot on, a new rule measuring its period "
        "from that snapshot; a halt in place stays until re-armed or until the rule that set it resumes"
    )
    audit_event(
        session,
        account.id,
        "guard_rules_changed",
        message,
        at=now,
        reason="drawdown",
        details={
            "user_id": by_user_id,
            "from": before,
            "to": guard_rules_source(account),
            "rules": ids,
            "shadow": [rule.id for rule in rules.rules if rule.shadow],
            "rule_set": None if body is None else orjson.loads(account.guard_rules),
        },
    )
    return rules
