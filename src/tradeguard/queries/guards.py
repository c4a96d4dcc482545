"""Guard status: the real equity, peak, drawdown level and market conditions of an account."""

from __future__ import annotations

from decimal import Decimal

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tradeguard.accounts.guard_config import GuardConfig
from tradeguard.accounts.service import guard_rules_of
from tradeguard.accounts.trading import trading_state_of
from tradeguard.queries.read_models import DrawdownGuardOut, MarketGuardAlert
from tradeguard.store.models import Account, AccountState

_LEVEL_SEVERITY = {"normal": 0, "warning": 1, "critical": 2}


def worst_level(levels) -> str:
    return max(levels, key=_LEVEL_SEVERITY.__getitem__, default="normal")


def _closing_rules(account: Account, state: AccountState) -> tuple[bool, bool]:
    """Whether any live rule may close positions, and whether one stands at a step that closes now."""
    rule_set = guard_rules_of(account)
    steps = orjson.loads(state.rule_states).get("rules", {}) if state.rule_states else {}
    live = [rule for rule in rule_set.rules if not rule.shadow]
    may_close = any(step.tier.closes for rule in live for step in rule.steps)
    at = [(rule, steps.get(rule.id, {}).get("step")) for rule in live]
    if all(step is None for _, step in at):
        # A state judged before rules remembered their steps: critical then meant closing, if set to.
        return may_close, may_close
    return may_close, any(step is not None and rule.steps[step].tier.closes for rule, step in at)


def drawdown_out(account: Account, state: AccountState) -> DrawdownGuardOut:
    level = state.drawdown_level
    trading = trading_state_of(state)
    threshold = account.drawdown_critical_pct if level == "critical" else account.drawdown_warning_pct
    may_close, closing = _closing_rules(account, state)
    return DrawdownGuardOut(
        account_id=account.id,
        current_equity=state.equity,
        current_balance=state.balance,
        peak_equity=state.peak_equity,
        current_drawdown_pct=state.drawdown_pct or Decimal(0),
        alert_type=level,
        alert_threshold_pct=threshold,
        warning_threshold_pct=account.drawdown_warning_pct,
        critical_threshold_pct=account.drawdown_critical_pct,
        min_equity=account.min_equity,
        auto_close=may_close,
        should_close_all=level == "critical" and closing,
        trading_allowed=trading.trading_allowed,
        halted_at=trading.since,
        halt_reason=trading.reason,
    )


def market_level_of(state: AccountState) -> str:
    """The worst level the market guard holds for any of the account's symbols."""
    return worst_level(
        condition.get("level", "normal") for condition in orjson.loads(state.market_levels).values()
    )


def market_alerts_of(account: Account, state: AccountState) -> list[MarketGuardAlert]:
    alerts = []
    for symbol, condition in sorted(orjson.loads(state.market_levels).items()):
        level = condition.get("level", "normal")
        if level == "normal":
            continue
        alerts.append(
            MarketGuardAlert(
                account_id=account.id,
                symbol=symbol,
                alert_type=level,
                gap_pct=_decimal_or_none(condition.get("gap_pct")),
                spread_pct=_decimal_or_none(condition.get("spread_pct")),
                should_close_positions=level == "critical" and account.auto_close_market,
                condition_type=condition.get("condition_type"),
                price_gap_pct=_decimal_or_none(condition.get("gap_pct")),
                bid_ask_spread_pct=_decimal_or_none(condition.get("spread_pct")),
                bid=_decimal_or_none(condition.get("bid")),
                ask=_decimal_or_none(condition.get("ask")),
            )
        )
    return alerts


def _decimal_or_none(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _no_account_drawdown() -> DrawdownGuardOut:
    defaults = GuardConfig()
    return DrawdownGuardOut(
        account_id=None,
        current_equity=None,
        current_balance=None,
        peak_equity=None,
        current_drawdown_pct=Decimal(0),
        alert_type="normal",
        alert_threshold_pct=defaults.drawdown_warning_pct,
        warning_threshold_pct=defaults.drawdown_warning_pct,
        critical_threshold_pct=defaults.drawdown_critical_pct,
        min_equity=defaults.min_equity,
        auto_close=defaults.auto_close_drawdown,
        should_close_all=False,
        trading_allowed=True,
        halted_at=None,
        halt_reason=None,
    )


async def guard_status_fields(session: AsyncSession, account_ids: list[int]) -> dict:
    """Over several accounts, the drawdown shown is the deepest one; market alerts are listed for all."""
    rows = (
        await session.execute(
            select(Account, AccountState)
            .join(AccountState, AccountState.account_id == Account.id)
            .where(Account.id.in_(account_ids))
            .order_by(Account.id)
        )
    ).all()
    if not rows:
        drawdown, market_alerts, last_evaluated = _no_account_drawdown(), [], None
        trading_allowed = True
    else:
        deepest_account, deepest_state = max(
            rows,
            key=lambda row: (_LEVEL_SEVERITY[row[1].drawdown_level], row[1].drawdown_pct or Decimal(0)),
        )
        drawdown = drawdown_out(deepest_account, deepest_state)
        market_alerts = [alert for account, state in rows for alert in market_alerts_of(account, state)]
        evaluated = [state.last_evaluated_at for _, state in rows if state.last_evaluated_at is not None]
        last_evaluated = max(evaluated, default=None)
        trading_allowed = all(trading_state_of(state).trading_allowed for _, state in rows)
    any_should_close = drawdown.should_close_all or any(
        alert.should_close_positions for alert in market_alerts
    )
    return {
        "system_status": worst_level([drawdown.alert_type, *(alert.alert_type for alert in market_alerts)]),
        "trading_allowed": trading_allowed,
        "drawdown_guard": drawdown,
        "market_guard_alerts": market_alerts,
        "any_positions_should_close": any_should_close,
        "last_evaluated_at": last_evaluated,
    }
