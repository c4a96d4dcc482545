"""The one loop that runs every guard and carries out what their verdicts ask.

The guards in `domain.guards` decide over plain values; this module builds their inputs from the
account's rows, runs each guard registered for the event (a snapshot applied, or the sweep's clock
tick), refuses a verdict that asks for what its guard did not declare, and turns the rest into
account-state fields, alerts, audit entries, the halt and close commands, before the answer to the
event is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.accounts.risk_rules import rule_set_of
from tradeguard.accounts.service import stored_guard_config
from tradeguard.accounts.trading import store_trading_state, trading_state_of
from tradeguard.actions.alerts import raise_alert
from tradeguard.actions.audit import audit_event
from tradeguard.actions.commands import cancel_live, issue_close_commands, targets_of
from tradeguard.domain.guards import (
    GUARDS,
    DrawdownGuard,
    Guard,
    GuardAlert,
    GuardInputs,
    GuardVerdict,
    Trigger,
    check_declared,
    guards_on,
)
from tradeguard.domain.guards.drawdown import rule_set_fields, rule_set_state_from
from tradeguard.domain.guards.rule_evaluation import rearm_rules
from tradeguard.domain.model import BrokerPosition, Quote
from tradeguard.store.models import Account, AccountState, CloseCommand

_STATE_FIELDS = frozenset(AccountState.__table__.c.keys()) - {"account_id"}
# A guard changes the trading state only through the HALT action, which also alerts and audits it.
_WRITABLE_FIELDS = _STATE_FIELDS - {"trading_allowed", "halted_at", "halt_reason"}
# Stored as JSON text; guards read and remember them as values.
_JSON_FIELDS = frozenset({"market_levels", "rule_states"})


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    """Deployment-wide settings the guards' actions need, and the guards to run."""

    notifiers: list[str]
    command_max_attempts: int
    guards: tuple[Guard, ...] = GUARDS


@dataclass(frozen=True, slots=True)
class GuardOutcome:
    verdicts: Mapping[str, GuardVerdict]
    """guard name → its verdict, for every guard run, in the order they ran"""
    new_commands: list[CloseCommand]


def guard_inputs(
    account: Account,
    state: AccountState,
    *,
    at: datetime,
    equity: Decimal | None,
    balance: Decimal | None,
    positions: Iterable[BrokerPosition] = (),
    quotes: Iterable[Quote] = (),
    matched_signals: Mapping[str, str | None] = MappingProxyType({}),
) -> GuardInputs:
    config = stored_guard_config(account)
    config["rule_set"] = rule_set_of(account.guard_rules, config)
    return GuardInputs(
        account_id=account.id,
        at=at,
        config=MappingProxyType(config),
        stored=MappingProxyType(stored_fields(state)),
        trading=trading_state_of(state),
        equity=equity,
        balance=balance,
        positions=tuple(positions),
        quotes=tuple(quotes),
        matched_signals=matched_signals,
    )


async def run_guards(
    session: AsyncSession,
    account: Account,
    state: AccountState,
    trigger: Trigger,
    inputs: GuardInputs,
    *,
    now: datetime,
    policy: GuardPolicy,
    delivered_with_timeout: timedelta | None = None,
) -> GuardOutcome:
    """Every guard of `policy` run on `trigger`, in order, each judging `inputs`; `now` stamps the records.

    Each verdict is carried out before the next guard's is (fields, records, halt); close commands
    come last, guard by guard, born delivered when `delivered_with_timeout` says the answer being
    built carries them (`issue_close_commands`).
    """
    verdicts: dict[str, GuardVerdict] = {}
    for guard in guards_on(trigger, policy.guards):
        verdict = guard.decide(inputs)
        check_declared(guard, verdict)
        _remember(state, verdict.remember)
        _write_records(session, account.id, verdict, now=now, notifiers=policy.notifiers)
        if verdict.halt is not None:
            halt_account(
                session, account.id, state, verdict.halt, by=guard.name, now=now, notifiers=policy.notifiers
            )
        if verdict.resume is not None:
            await _resume(session, account, state, guard, verdict.resume, now=now, policy=policy)
        verdicts[guard.name] = verdict

    new_commands: list[CloseCommand] = []
    for name, verdict in verdicts.items():
        closing_symbols = set(verdict.close_symbols)
        closing_tickets = set(verdict.close_tickets)
        to_close = [
            position
            for position in inputs.positions
            if position.ticket in closing_tickets or position.symbol in closing_symbols
        ]
        new_commands += await issue_close_commands(
            session,
            account.id,
            targets_of(to_close),
            cause=name,
            now=now,
            max_attempts=policy.command_max_attempts,
            delivered_with_timeout=delivered_with_timeout,
        )
    return GuardOutcome(verdicts=verdicts, new_commands=new_commands)


async def act_on_guards(
    session: AsyncSession,
    account: Account,
    state: AccountState,
    *,
    equity: Decimal,
    balance: Decimal,
    positions: list[BrokerPosition],
    quotes: list[Quote],
    matched_signals: Mapping[str, str | None],
    evaluated_at: datetime,
    now: datetime,
    policy: GuardPolicy,
    command_timeout: timedelta,
) -> GuardOutcome:
    """The snapshot's guards. `evaluated_at` is the snapshot's time, which places it in a trading
    day; `now` stamps the records. Their close commands go out in the snapshot's answer, so they
    are born delivered, timing out after `command_timeout`."""
    inputs = guard_inputs(
        account,
        state,
        at=evaluated_at,
        equity=equity,
        balance=balance,
        positions=positions,
        quotes=quotes,
        matched_signals=matched_signals,
    )
    outcome = await run_guards(
        session,
        account,
        state,
        Trigger.SNAPSHOT,
        inputs,
        now=now,
        policy=policy,
        delivered_with_timeout=command_timeout,
    )
    state.last_evaluated_at = now
    return outcome


async def guard_on_clock(
    session: AsyncSession, account: Account, state: AccountState, *, now: datetime, policy: GuardPolicy
) -> GuardOutcome:
    """The clock's guards, for an account no snapshot has brought news of."""
    inputs = guard_inputs(account, state, at=now, equity=state.equity, balance=state.balance)
    return await run_guards(session, account, state, Trigger.CLOCK, inputs, now=now, policy=policy)


def stored_fields(state: AccountState) -> dict[str, Any]:
    """The account state by field name, as guards read it: JSON fields decoded."""
    stored = {name: getattr(state, name) for name in _STATE_FIELDS}
    for name in _JSON_FIELDS:
        if stored[name] is not None:
            stored[name] = orjson.loads(stored[name])
    return stored


def _remember(state: AccountState, fields: Mapping[str, Any]) -> None:
    for name, value in fields.items():
        if name not in _WRITABLE_FIELDS:
            raise ValueError(f"a guard cannot write the account state's field {name!r}")
        if name in _JSON_FIELDS:
            # Decimals as text, so that they read back exact.
            value = orjson.dumps(value, default=str).decode()
        setattr(state, name, value)


def _write_records(
    session: AsyncSession, account_id: int, verdict: GuardVerdict, *, now: datetime, notifiers: list[str]
) -> None:
    for record in verdict.records:
        if isinstance(record, GuardAlert):
            raise_alert(
                session,
                account_id,
                kind=record.kind,
                level=record.level,
                message=record.message,
                now=now,
                notifiers=notifiers,
                symbol=record.symbol,
                details=dict(record.details),
            )
        else:
            audit_event(
                session,
                account_id,
                record.event_type,
                record.message,
                at=now,
                reason=record.reason,
                symbol=record.symbol,
                details=dict(record.details),
            )


def halt_account(
    session: AsyncSession,
    account_id: int,
    state: AccountState,
    reason: str,
    *,
    by: str,
    now: datetime,
    notifiers: list[str],
    audited: Mapping[str, Any] = MappingProxyType({}),
) -> bool:
    """Halt with the `halt` alert and the `halted` audit entry, whose reason is `by` (a guard's name,
    or `operator`) and whose details add `audited`; whether the account was halted by this call.

    A halt latches: an account already halted keeps its first reason and says nothing again.
    """
    trading = trading_state_of(state)
    if trading.halted:
        return False
    store_trading_state(state, trading.halt(reason, since=now))
    message = f"account {account_id} halted: {reason}; trading_allowed is false until re-armed"
    raise_alert(
        session,
        account_id,
        kind="halt",
        level="critical",
        message=message,
        now=now,
        notifiers=notifiers,
        details={"trading_allowed": False, "reason": reason},
    )
    audit_event(
        session,
        account_id,
        "halted",
        message,
        at=now,
        reason=by,
        details={"trading_allowed": False, **audited},
    )
    return True


async def _resume(
    session: AsyncSession,
    account: Account,
    state: AccountState,
    guard: Guard,
    reason: str,
    *,
    now: datetime,
    policy: GuardPolicy,
) -> None:
    """The guard's rules lifted the halt they set: as an owner's re-arm, without a new peak."""
    trading = trading_state_of(state)
    if not trading.halted:
        return
    cancelled = await cancel_live(session, account.id, cause=guard.name, why=reason, now=now)
    store_trading_state(state, trading.rearm())
    _announce_rearm(
        session,
        account.id,
        f"account {account.id} re-armed: {reason}",
        cancelled,
        now=now,
        policy=policy,
        reset_peak=False,
        audited={"automatic": True},
    )


def _announce_rearm(
    session: AsyncSession,
    account_id: int,
    message: str,
    cancelled: list[CloseCommand],
    *,
    now: datetime,
    policy: GuardPolicy,
    reset_peak: bool,
    audited: dict[str, Any],
) -> None:
    """The `rearmed` alert and audit entry, with who or what re-armed (`audited`) and what it cancelled."""
    raise_alert(
        session,
        account_id,
        kind="rearmed",
        level="info",
        message=message,
        now=now,
        notifiers=policy.notifiers,
        details={"trading_allowed": True, "reset_peak": reset_peak},
    )
    audit_event(
        session,
        account_id,
        "rearmed",
        message,
        at=now,
        reason=DrawdownGuard.name,
        details={
            "trading_allowed": True,
            **audited,
            "cancelled_commands": [command.id for command in cancelled],
        },
    )


async def rearm_account(
    session: AsyncSession,
    account: Account,
    *,
    by_user_id: int,
    reset_peak: bool,
    now: datetime,
    policy: GuardPolicy,
    audited: Mapping[str, Any] = MappingProxyType({}),
) -> AccountState:
    """The owner lets a halted account trade again; its next breach alerts, closes and halts anew.

    The drawdown's close commands not yet carried out are cancelled: the owner's decision to
    trade on overrides the halt's. `audited` adds to the `rearmed` entry's details (an operator's
    bulk action id). Returns the account's state as re-armed.
    """
    state = await session.get(AccountState, account.id, with_for_update=True)
    cancelled = await cancel_live(
        session, account.id, cause=DrawdownGuard.name, why=f"account re-armed by user {by_user_id}", now=now
    )
    trading = trading_state_of(state)
    current = rule_set_state_from(stored_fields(state))
    if current is not None:
        reset_to = state.equity if reset_peak and state.equity is not None else None
        _remember(state, rule_set_fields(rearm_rules(current, reset_peak_to=reset_to)))
        if reset_to is not None:
            state.drawdown_pct = Decimal(0)
    store_trading_state(state, trading.rearm())
    message = f"account {account.id} re-armed by user {by_user_id}" + (
        " with a new peak" if reset_peak else ""
    )
    _announce_rearm(
        session,
        account.id,
        message,
        cancelled,
        now=now,
        policy=policy,
        reset_peak=reset_peak,
        audited={"user_id": by_user_id, "reset_peak": reset_peak, **audited},
    )
    return state
