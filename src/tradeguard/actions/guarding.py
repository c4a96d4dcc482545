"""Acting on the guards' decisions inside the ingest step: state, alerts, halts, close commands.

The guards in `domain.guards` decide; this module loads their inputs from the account's rows,
stores what they return, and turns "should close" into close commands before the ingest answer
is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.actions.alerts import raise_alert
from tradeguard.actions.audit import audit_event
from tradeguard.actions.commands import cancel_live, issue_close_commands, targets_of
from tradeguard.domain.guards import (
    DrawdownDecision,
    DrawdownSettings,
    DrawdownState,
    GuardLevel,
    MarketDecision,
    MarketSettings,
    SymbolCondition,
    SymbolMarketState,
    evaluate_drawdown,
    evaluate_market,
    rearm,
)
from tradeguard.domain.model import BrokerPosition, Quote
from tradeguard.store.models import Account, AccountState, CloseCommand


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    """Deployment-wide settings the guards' actions need."""

    notifiers: list[str]
    command_max_attempts: int


@dataclass(frozen=True, slots=True)
class GuardOutcome:
    drawdown: DrawdownDecision
    market: MarketDecision
    new_commands: list[CloseCommand]


def drawdown_settings_of(account: Account) -> DrawdownSettings:
    return DrawdownSettings(
        warning_pct=account.drawdown_warning_pct,
        critical_pct=account.drawdown_critical_pct,
        min_equity=account.min_equity,
        daily_loss_limit_pct=account.daily_loss_limit_pct,
        daily_loss_anchor=account.daily_loss_anchor,
        daily_reset_time=time.fromisoformat(account.daily_reset_time),
        daily_reset_tz=account.daily_reset_tz,
        critical_confirmations=account.critical_confirmations,
        auto_close=account.auto_close_drawdown,
    )


def market_settings_of(account: Account) -> MarketSettings:
    return MarketSettings(
        gap_warning_pct=account.gap_warning_pct,
        gap_critical_pct=account.gap_critical_pct,
        spread_warning_pct=account.spread_warning_pct,
        spread_critical_pct=account.spread_critical_pct,
        auto_close=account.auto_close_market,
    )


def drawdown_state_of(state: AccountState) -> DrawdownState | None:
    if state.peak_equity is None:
        return None
    return DrawdownState(
        peak_equity=state.peak_equity,
        level=GuardLevel(state.drawdown_level),
        consecutive_critical=state.consecutive_critical,
        halted=not state.trading_allowed,
        day_anchor_value=state.day_anchor_value,
        day_anchor_start=state.day_anchor_start,
    )


def store_drawdown_state(state: AccountState, next_state: DrawdownState) -> None:
    state.peak_equity = next_state.peak_equity
    state.drawdown_level = next_state.level.value
    state.consecutive_critical = next_state.consecutive_critical
    state.trading_allowed = not next_state.halted
    state.day_anchor_value = next_state.day_anchor_value
    state.day_anchor_start = next_state.day_anchor_start


def market_state_of(state: AccountState) -> dict[str, SymbolMarketState]:
    return {
        symbol: SymbolMarketState(mid=Decimal(stored["mid"]), level=GuardLevel(stored["level"]))
        for symbol, stored in orjson.loads(state.market_levels).items()
    }


def _market_levels_json(state: AccountState, decision: MarketDecision) -> str:
    """The next state of every symbol; those not quoted just now keep what was last measured."""
    stored = orjson.loads(state.market_levels)
    evaluated = {condition.symbol: condition for condition in decision.conditions}
    merged = {}
    for symbol, market in decision.next_state.items():
        condition = evaluated.get(symbol)
        measured = market_details(condition) if condition else stored.get(symbol, {})
        merged[symbol] = {**measured, "mid": market.mid, "level": market.level.value}
    # Decimals as text, so that they read back exact.
    return orjson.dumps(merged, default=str).decode()


def market_details(condition: SymbolCondition) -> dict:
    """What was measured, under today's names and, beside them, the older platform's."""
    return {
        "gap_pct": condition.gap_pct,
        "spread_pct": condition.spread_pct,
        "condition_type": condition.condition.value if condition.condition else None,
        "price_gap_pct": condition.gap_pct,
        "bid_ask_spread_pct": condition.spread_pct,
        "bid": condition.bid,
        "ask": condition.ask,
    }


async def act_on_guards(
    session: AsyncSession,
    account: Account,
    state: AccountState,
    *,
    equity: Decimal,
    balance: Decimal,
    positions: list[BrokerPosition],
    quotes: list[Quote],
    evaluated_at: datetime,
    now: datetime,
    policy: GuardPolicy,
) -> GuardOutcome:
    """`evaluated_at` is the snapshot's time, which places it in a trading day; `now` stamps the records."""
    drawdown = evaluate_drawdown(
        drawdown_state_of(state),
        equity=equity,
        balance=balance,
        now=evaluated_at,
        settings=drawdown_settings_of(account),
    )
    store_drawdown_state(state, drawdown.next_state)
    state.drawdown_pct = drawdown.drawdown_pct
    if drawdown.should_alert:
        level = drawdown.level.value
        details = {
            "drawdown_pct": drawdown.drawdown_pct,
            "equity": equity,
            "peak_equity": drawdown.peak_equity,
        }
        raise_alert(
            session,
            account.id,
            kind="drawdown",
            level=_alert_level(level),
            message=drawdown.message,
            now=now,
            notifiers=policy.notifiers,
            details=details,
        )
        audit_event(
            session,
            account.id,
            "guard_level",
            drawdown.message,
            at=now,
            reason="drawdown",
            details={"level": level, **details},
        )
    if drawdown.newly_halted:
        state.halted_at = now
        state.halt_reason = drawdown.message
        message = f"account {account.id} halted: {drawdown.message}; trading_allowed is false until re-armed"
        raise_alert(
            session,
            account.id,
            kind="halt",
            level="critical",
            message=message,
            now=now,
            notifiers=policy.notifiers,
            details={"trading_allowed": False, "reason": drawdown.message},
        )
        audit_event(
            session,
            account.id,
            "halted",
            message,
            at=now,
            reason="drawdown",
            details={"trading_allowed": False},
        )

    market = evaluate_market(quotes, market_state_of(state), market_settings_of(account))
    state.market_levels = _market_levels_json(state, market)
    for condition in market.alerts:
        raise_alert(
            session,
            account.id,
            kind="market",
            level=_alert_level(condition.level.value),
            message=condition.message,
            now=now,
            notifiers=policy.notifiers,
            symbol=condition.symbol,
            details=market_details(condition),
        )
        audit_event(
            session,
            account.id,
            "guard_level",
            condition.message,
            at=now,
            reason="market",
            symbol=condition.symbol,
            details={"level": condition.level.value, **market_details(condition)},
        )
    state.last_evaluated_at = now

    new_commands: list[CloseCommand] = []
    if drawdown.positions_should_close:
        new_commands += await issue_close_commands(
            session,
            account.id,
            targets_of(positions),
            cause="drawdown",
            now=now,
            max_attempts=policy.command_max_attempts,
        )
    closing_symbols = set(market.symbols_to_close)
    if closing_symbols:
        in_those_symbols = [position for position in positions if position.symbol in closing_symbols]
        new_commands += await issue_close_commands(
            session,
            account.id,
            targets_of(in_those_symbols),
            cause="market",
            now=now,
            max_attempts=policy.command_max_attempts,
        )
    return GuardOutcome(drawdown=drawdown, market=market, new_commands=new_commands)


def _alert_level(guard_level: str) -> str:
    """A return to normal is worth telling, as information."""
    return "info" if guard_level == GuardLevel.NORMAL.value else guard_level


async def rearm_account(
    session: AsyncSession,
    account: Account,
    *,
    by_user_id: int,
    reset_peak: bool,
    now: datetime,
    policy: GuardPolicy,
) -> AccountState:
    """The owner lets a halted account trade again; its next breach alerts, closes and halts anew.

    The drawdown's close commands not yet carried out are cancelled: the owner's decision to
    trade on overrides the halt's. Returns the account's state as re-armed.
    """
    state = await session.get(AccountState, account.id, with_for_update=True)
    cancelled = await cancel_live(
        session, account.id, cause="drawdown", why=f"account re-armed by user {by_user_id}", now=now
    )
    current = drawdown_state_of(state)
    if current is not None:
        reset_to = state.equity if reset_peak and state.equity is not None else None
        store_drawdown_state(state, rearm(current, reset_peak_to=reset_to))
        if reset_to is not None:
            state.drawdown_pct = Decimal(0)
    state.trading_allowed = True
    state.halted_at = None
    state.halt_reason = None
    message = f"account {account.id} re-armed by user {by_user_id}" + (
        " with a new peak" if reset_peak else ""
    )
    raise_alert(
        session,
        account.id,
        kind="rearmed",
        level="info",
        message=message,
        now=now,
        notifiers=policy.notifiers,
        details={"trading_allowed": True, "reset_peak": reset_peak},
    )
    audit_event(
        session,
        account.id,
        "rearmed",
        message,
        at=now,
        reason="drawdown",
        details={
            "trading_allowed": True,
            "user_id": by_user_id,
            "reset_peak": reset_peak,
            "cancelled_commands": [command.id for command in cancelled],
        },
    )
    return state
