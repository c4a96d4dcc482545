"""Drawdown guard: the account's risk rules, judged on every applied snapshot.

An account's rules are a `RuleSet` (`rules.py`): the ones its owner set, or, for an account that
never set any, the rule set its drawdown settings describe (`rules_from_settings`: the drawdown
from the high-water mark, the minimum equity and the daily loss, as they have always been
judged). `DrawdownGuard` runs `evaluate_rules` and turns the decision into records, the state to
remember, closes, the halt and an automatic resume. Nothing here reads a clock or a database.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tradeguard.domain.guards.guard import (
    Action,
    GuardAlert,
    GuardAuditEntry,
    GuardInputs,
    GuardVerdict,
    MayCause,
    Trigger,
    level_reached,
)
from tradeguard.domain.guards.levels import GuardLevel, InvalidGuardSettings
from tradeguard.domain.guards.rule_evaluation import (
    RuleResult,
    RulesDecision,
    RuleSetState,
    RuleState,
    evaluate_rules,
)
from tradeguard.domain.guards.rules import Metric, Reference, Rule, RuleSet, Step, Threshold, Tier
from tradeguard.domain.periods import Period, PeriodKind


class DailyLossAnchor(str, enum.Enum):
    """What the daily loss is measured from, as prop-trading firms define it."""

    BALANCE = "balance"
    EQUITY = "equity"


@dataclass(frozen=True, slots=True)
class DrawdownSettings:
    """One account's drawdown thresholds, in percent. Invalid combinations fail on construction.

    `daily_loss_anchor` accepts the enum or its string value ("balance", "equity").
    """

    warning_pct: Decimal = Decimal(15)
    critical_pct: Decimal = Decimal(20)
    min_equity: Decimal = Decimal(100)
    daily_loss_limit_pct: Decimal | None = None
    daily_loss_anchor: DailyLossAnchor = DailyLossAnchor.BALANCE
    daily_reset_time: time = time(0, 0)
    daily_reset_tz: str = "UTC"
    critical_confirmations: int = 1
    auto_close: bool = True

    def __post_init__(self) -> None:
        for name in ("warning_pct", "critical_pct", "min_equity", "daily_loss_limit_pct"):
            if isinstance(getattr(self, name), float):
                raise InvalidGuardSettings(f"{name} must be a Decimal, not a float")
        if not 0 < self.warning_pct < self.critical_pct <= 100:
            raise InvalidGuardSettings(
                "drawdown thresholds must satisfy 0 < warning_pct < critical_pct <= 100, "
                f"got warning_pct={self.warning_pct}, critical_pct={self.critical_pct}"
            )
        if self.min_equity < 0:
            raise InvalidGuardSettings(f"min_equity must not be negative, got {self.min_equity}")
        limit = self.daily_loss_limit_pct
        if limit is not None and not 0 < limit <= 100:
            raise InvalidGuardSettings(
                f"daily_loss_limit_pct must be off (None) or within (0, 100], got {limit}"
            )
        try:
            anchor = DailyLossAnchor(self.daily_loss_anchor)
        except ValueError:
            raise InvalidGuardSettings(
                f"daily_loss_anchor must be 'balance' or 'equity', got {self.daily_loss_anchor!r}"
            ) from None
        object.__setattr__(self, "daily_loss_anchor", anchor)
        if self.daily_reset_time.tzinfo is not None:
            raise InvalidGuardSettings(
                "daily_reset_time must be a wall-clock time without tzinfo; its zone is daily_reset_tz"
            )
        try:
            ZoneInfo(self.daily_reset_tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidGuardSettings(
                f"daily_reset_tz must be an IANA time zone name, got {self.daily_reset_tz!r}"
            ) from None
        confirmations = self.critical_confirmations
        if isinstance(confirmations, bool) or not isinstance(confirmations, int):
            raise InvalidGuardSettings("critical_confirmations must be an integer")
        if confirmations < 1:
            raise InvalidGuardSettings(f"critical_confirmations must be at least 1, got {confirmations}")


def _message(
    level: GuardLevel,
    previous_level: GuardLevel,
    *,
    equity: Decimal,
    peak: Decimal,
    drawdown: Decimal,
    details: list[str],
    pending: str | None,
    halted: bool,
) -> str:
    head = f"drawdown guard {level.value}"
    if level is not previous_level:
        head += f" (was {previous_level.value})"
    parts = [f"equity {equity}, {drawdown:.2f}% below peak {peak}", *details]
    if pending is not None:
        parts.append(pending)
    if halted:
        parts.append("trading halted until re-armed")
    return f"{head}: " + "; ".join(parts)


def rules_from_settings(settings: DrawdownSettings) -> RuleSet:
    """The rule set that judges an account exactly as these settings always have: the drawdown from
    the high-water mark (warning, then critical), the minimum equity, and the daily loss."""
    acting = Tier.CLOSE_ALL if settings.auto_close else Tier.HALT
    rules = [
        Rule(
            id="drawdown",
            metric=Metric.EQUITY,
            reference=Reference.HIGH_WATER_MARK,
            steps=(
                Step(Tier.ALERT, Threshold(percent=settings.warning_pct), label="warning"),
                Step(acting, Threshold(percent=settings.critical_pct), label="critical"),
            ),
        ),
        Rule(
            id="min_equity",
            metric=Metric.EQUITY,
            steps=(Step(acting, Threshold(floor=settings.min_equity), label="minimum"),),
        ),
    ]
    if settings.daily_loss_limit_pct is not None:
        balance = settings.daily_loss_anchor is DailyLossAnchor.BALANCE
        rules.append(
            Rule(
                id="daily_loss",
                label="daily loss",
                metric=Metric.EQUITY,
                reference=Reference.PERIOD_START_BALANCE if balance else Reference.PERIOD_START_EQUITY,
                period=Period(PeriodKind.DAY, settings.daily_reset_tz, settings.daily_reset_time),
                steps=(Step(acting, Threshold(percent=settings.daily_loss_limit_pct), label="limit"),),
            )
        )
    return RuleSet(rules=tuple(rules), confirmations=settings.critical_confirmations)


_REMEMBERED = ("peak_equity", "drawdown_level", "consecutive_critical", "rule_states", "drawdown_pct")


class DrawdownGuard:
    name = "drawdown"
    trigger = Trigger.SNAPSHOT
    may_cause = MayCause(
        alerts=frozenset({"drawdown", "shadow"}),
        audit_entries=frozenset({"guard_level", "shadow_decision"}),
        actions=frozenset({Action.HALT, Action.CLOSE_POSITIONS, Action.RESUME}),
        remembers=frozenset(_REMEMBERED),
    )

    def decide(self, inputs: GuardInputs) -> GuardVerdict:
        decision = evaluate_rules(
            inputs.config["rule_set"],
            rule_set_state_from(inputs.stored),
            equity=inputs.equity,
            balance=inputs.balance,
            now=inputs.at,
            halted=inputs.trading.halted,
            positions=inputs.positions,
            matched_signals=inputs.matched_signals,
        )
        # Worded only when something says it: most snapshots change nothing.
        message = decision_message(decision) if decision.level_changed or decision.newly_halted else None
        records: tuple[GuardAlert | GuardAuditEntry, ...] = ()
        if decision.level_changed:
            details = {
                "drawdown_pct": decision.drawdown_pct,
                "equity": decision.equity,
                "peak_equity": decision.peak_equity,
            }
            records = level_reached(self.name, "drawdown", decision.level, message, details)
        for result in decision.shadow_changes:
            records += _shadow_records(self.name, result)
        resumed_by = [result.rule.id for result in decision.live if result.resumed]
        return GuardVerdict(
            records=records,
            remember=MappingProxyType(
                {**rule_set_fields(decision.next_state), "drawdown_pct": decision.drawdown_pct}
            ),
            halt=message if decision.newly_halted else None,
            close_tickets=decision.to_close,
            resume=f"rules {', '.join(resumed_by)} resumed" if decision.resumed else None,
        )


def decision_message(decision: RulesDecision) -> str:
    return _message(
        decision.level,
        decision.previous_level,
        equity=decision.equity,
        peak=decision.peak_equity,
        drawdown=decision.drawdown_pct,
        details=list(decision.details),
        pending=None,
        halted=decision.halted,
    )


def _shadow_records(guard: str, result: RuleResult) -> tuple[GuardAlert | GuardAuditEntry, ...]:
    """A rule in shadow moved to another step: what it would have done, with the detail a live one gives."""
    tier = result.tier
    would = (
        "do nothing"
        if tier is None
        else {
            Tier.ALERT: "alert",
            Tier.HALT: "halt new trades",
            Tier.CLOSE_ALL: f"halt and close {len(result.to_close)} positions",
            Tier.CLOSE_SCOPE: f"halt and close {len(result.to_close)} positions of its scope",
        }[tier]
    )
    message = f"rule {result.rule.id} in shadow would {would}: " + (result.detail or "back under its steps")
    details = {
        "rule": result.rule.id,
        "step": result.step,
        "tier": None if tier is None else tier.value,
        "would_halt": result.halts,
        "would_close": list(result.to_close),
        "loss": result.loss,
        "loss_pct": result.loss_pct,
    }
    entry = GuardAuditEntry("shadow_decision", message, reason=guard, details=details)
    if not result.rule.shadow_alerts:
        return (entry,)
    level = "info" if tier is None else tier.level.value
    return (GuardAlert("shadow", level, message, details=details), entry)


def drawdown_settings_from(config: Mapping[str, Any]) -> DrawdownSettings:
    return DrawdownSettings(
        warning_pct=config["drawdown_warning_pct"],
        critical_pct=config["drawdown_critical_pct"],
        min_equity=config["min_equity"],
        daily_loss_limit_pct=config["daily_loss_limit_pct"],
        daily_loss_anchor=config["daily_loss_anchor"],
        daily_reset_time=time.fromisoformat(config["daily_reset_time"]),
        daily_reset_tz=config["daily_reset_tz"],
        critical_confirmations=config["critical_confirmations"],
        auto_close=config["auto_close_drawdown"],
    )


@lru_cache(maxsize=4096)
def _settings_rule_set(settings: DrawdownSettings) -> RuleSet:
    return rules_from_settings(settings)


def settings_rule_set(config: Mapping[str, Any]) -> RuleSet:
    """The rule set of an account's drawdown settings, built once per distinct settings."""
    return _settings_rule_set(drawdown_settings_from(config))


def rule_set_state_from(stored: Mapping[str, Any]) -> RuleSetState | None:
    """None for an account never judged: it has no peak yet. `rule_states` is the decoded JSON."""
    if stored["peak_equity"] is None:
        return None
    kept = stored["rule_states"] or {}
    return RuleSetState(
        peak_equity=stored["peak_equity"],
        initial_balance=_decimal(kept.get("initial_balance")),
        level=GuardLevel(stored["drawdown_level"]),
        consecutive=stored["consecutive_critical"],
        rules=MappingProxyType(
            {rule_id: _rule_state(fields) for rule_id, fields in kept.get("rules", {}).items()}
        ),
    )


def rule_set_fields(state: RuleSetState) -> dict[str, Any]:
    """The account-state fields that hold a `RuleSetState`; `rule_states` as JSON-ready values."""
    return {
        "peak_equity": state.peak_equity,
        "drawdown_level": state.level.value,
        "consecutive_critical": state.consecutive,
        "rule_states": {
            "initial_balance": state.initial_balance,
            "rules": {rule_id: _rule_state_fields(rule_state) for rule_id, rule_state in state.rules.items()},
        },
    }


_DECIMALS = ("start_balance", "start_equity", "high_water", "trailing_high")
_MOMENTS = ("period_start", "tripped_at", "calm_since")


def _rule_state(fields: Mapping[str, Any]) -> RuleState:
    return RuleState(
        **{name: _decimal(fields.get(name)) for name in _DECIMALS},
        **{name: _moment(fields.get(name)) for name in _MOMENTS},
        step=fields.get("step"),
        consecutive=fields.get("consecutive", 0),
    )


def _rule_state_fields(rule_state: RuleState) -> dict[str, Any]:
    fields = {name: getattr(rule_state, name) for name in (*_DECIMALS, *_MOMENTS, "step", "consecutive")}
    return {name: value for name, value in fields.items() if value is not None}


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _moment(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
