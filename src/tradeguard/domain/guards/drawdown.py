"""Drawdown guard: how far an account's equity has fallen, and whether to close and halt it.

`evaluate_drawdown` judges a snapshot's equity and balance against the account's `DrawdownState`;
`DrawdownGuard` is the guard the shell's loop runs on every applied snapshot, turning the decision
into records, the state to remember, closes and the halt. Nothing here reads a clock or a database.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
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
from tradeguard.domain.guards.levels import GuardLevel, InvalidGuardSettings, worst
from tradeguard.domain.guards.rules import Metric, Reference, Rule, RuleSet, Step, Threshold, Tier
from tradeguard.domain.periods import Period, PeriodKind
from tradeguard.domain.pnl import drawdown_pct


class DailyLossAnchor(str, enum.Enum):
    """What the daily loss is measured from, as prop-trading firms define it."""

    BALANCE = "balance"
    EQUITY = "equity"


class DrawdownReason(str, enum.Enum):
    DRAWDOWN_WARNING = "drawdown_warning"
    DRAWDOWN_CRITICAL = "drawdown_critical"
    EQUITY_BELOW_MINIMUM = "equity_below_minimum"
    DAILY_LOSS_LIMIT = "daily_loss_limit"


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


@dataclass(frozen=True, slots=True)
class DrawdownState:
    """What the shell persists per account between snapshots.

    `level` is the level last reported, which is what alerts compare against.
    `day_anchor_start` is the UTC instant the current trading day began.
    """

    peak_equity: Decimal
    level: GuardLevel = GuardLevel.NORMAL
    consecutive_critical: int = 0
    halted: bool = False
    day_anchor_value: Decimal | None = None
    day_anchor_start: datetime | None = None


@dataclass(frozen=True, slots=True)
class DrawdownDecision:
    """The drawdown guard's verdict on one snapshot.

    `critical_pending` means a critical condition was observed but fewer than
    `critical_confirmations` times in a row: the level is reported as WARNING and
    nothing is closed or halted yet. `close_all` is set once, on the evaluation
    that enters CRITICAL with auto-close on; `positions_should_close` stays set on
    every CRITICAL evaluation with auto-close on, for status readers and for
    positions opened after the first close. `halted` is the latch after this
    evaluation; `newly_halted` marks the evaluation that set it.
    """

    level: GuardLevel
    previous_level: GuardLevel
    equity: Decimal
    peak_equity: Decimal
    drawdown_pct: Decimal
    daily_loss_pct: Decimal | None
    consecutive_critical: int
    critical_pending: bool
    close_all: bool
    positions_should_close: bool
    halted: bool
    newly_halted: bool
    reasons: tuple[DrawdownReason, ...]
    message: str
    next_state: DrawdownState

    @property
    def level_changed(self) -> bool:
        return self.level is not self.previous_level

    @property
    def should_alert(self) -> bool:
        return self.level_changed

    @property
    def trading_allowed(self) -> bool:
        return not self.halted


def trading_day_start(now: datetime, reset_time: time, tz_name: str) -> datetime:
    """The UTC instant the trading day containing `now` began.

    That is the latest `reset_time`, read as a wall-clock time in `tz_name`, at or before `now`.
    """
    zone = ZoneInfo(tz_name)
    now_utc = _require_aware(now).astimezone(UTC)
    local_date = now_utc.astimezone(zone).date()
    start = datetime.combine(local_date, reset_time, tzinfo=zone).astimezone(UTC)
    if start > now_utc:
        previous_date = local_date - timedelta(days=1)
        start = datetime.combine(previous_date, reset_time, tzinfo=zone).astimezone(UTC)
    return start


def evaluate_drawdown(
    state: DrawdownState | None,
    *,
    equity: Decimal,
    balance: Decimal,
    now: datetime,
    settings: DrawdownSettings,
) -> DrawdownDecision:
    """Judge one snapshot of an account. `state` is None for an account never evaluated before.

    Levels: CRITICAL when drawdown >= critical_pct, equity < min_equity, or the daily
    loss limit is set and daily loss >= the limit; WARNING when drawdown >= warning_pct;
    NORMAL otherwise. Percentages are compared as reported (4 decimal places) so the
    number shown never contradicts the level.
    """
    previous = state if state is not None else DrawdownState(peak_equity=equity)
    peak = max(previous.peak_equity, equity)
    drawdown = drawdown_pct(peak, equity)

    day_start = trading_day_start(now, settings.daily_reset_time, settings.daily_reset_tz)
    anchor_value = previous.day_anchor_value
    anchor_start = previous.day_anchor_start
    if anchor_value is None or anchor_start is None or day_start > anchor_start:
        use_balance = settings.daily_loss_anchor is DailyLossAnchor.BALANCE
        anchor_value = balance if use_balance else equity
        anchor_start = day_start
    daily_loss = None
    if settings.daily_loss_limit_pct is not None:
        # Same formula as drawdown, from the day's anchor instead of the peak.
        daily_loss = drawdown_pct(anchor_value, equity)

    breaches = _breaches(settings, equity=equity, drawdown=drawdown, daily_loss=daily_loss)
    observed = worst(level for _, level, _ in breaches)
    consecutive = previous.consecutive_critical + 1 if observed is GuardLevel.CRITICAL else 0
    critical_pending = observed is GuardLevel.CRITICAL and consecutive < settings.critical_confirmations
    level = GuardLevel.WARNING if critical_pending else observed

    entering_critical = level is GuardLevel.CRITICAL and previous.level is not GuardLevel.CRITICAL
    halted = previous.halted or level is GuardLevel.CRITICAL
    next_state = DrawdownState(
        peak_equity=peak,
        level=level,
        consecutive_critical=consecutive,
        halted=halted,
        day_anchor_value=anchor_value,
        day_anchor_start=anchor_start,
    )
    message = _message(
        level,
        previous.level,
        equity=equity,
        peak=peak,
        drawdown=drawdown,
        details=[detail for _, _, detail in breaches],
        pending=(
            f"critical confirmation {consecutive} of {settings.critical_confirmations}"
            if critical_pending
            else None
        ),
        halted=halted,
    )
    return DrawdownDecision(
        level=level,
        previous_level=previous.level,
        equity=equity,
        peak_equity=peak,
        drawdown_pct=drawdown,
        daily_loss_pct=daily_loss,
        consecutive_critical=consecutive,
        critical_pending=critical_pending,
        close_all=settings.auto_close and entering_critical,
        positions_should_close=settings.auto_close and level is GuardLevel.CRITICAL,
        halted=halted,
        newly_halted=halted and not previous.halted,
        reasons=tuple(reason for reason, _, _ in breaches),
        message=message,
        next_state=next_state,
    )


def rearm(state: DrawdownState, *, reset_peak_to: Decimal | None = None) -> DrawdownState:
    """The owner allows trading again on a halted account.

    The guard starts over from NORMAL, so an account still in breach at the next
    snapshot alerts, closes and halts again instead of being re-latched silently.
    `reset_peak_to` starts a new high-water mark (typically the current equity);
    without it a drawdown measured from the old peak keeps counting.
    """
    if reset_peak_to is not None and reset_peak_to <= 0:
        raise InvalidGuardSettings(f"reset_peak_to must be positive, got {reset_peak_to}")
    return replace(
        state,
        halted=False,
        level=GuardLevel.NORMAL,
        consecutive_critical=0,
        peak_equity=state.peak_equity if reset_peak_to is None else reset_peak_to,
    )


def _breaches(
    settings: DrawdownSettings,
    *,
    equity: Decimal,
    drawdown: Decimal,
    daily_loss: Decimal | None,
) -> list[tuple[DrawdownReason, GuardLevel, str]]:
    found: list[tuple[DrawdownReason, GuardLevel, str]] = []
    if drawdown >= settings.critical_pct:
        found.append(
            (
                DrawdownReason.DRAWDOWN_CRITICAL,
                GuardLevel.CRITICAL,
                f"drawdown {drawdown:.2f}% >= critical {settings.critical_pct}%",
            )
        )
    elif drawdown >= settings.warning_pct:
        found.append(
            (
                DrawdownReason.DRAWDOWN_WARNING,
                GuardLevel.WARNING,
                f"drawdown {drawdown:.2f}% >= warning {settings.warning_pct}%",
            )
        )
    if equity < settings.min_equity:
        found.append(
            (
                DrawdownReason.EQUITY_BELOW_MINIMUM,
                GuardLevel.CRITICAL,
                f"equity {equity} below minimum {settings.min_equity}",
            )
        )
    limit = settings.daily_loss_limit_pct
    if limit is not None and daily_loss is not None and daily_loss >= limit:
        found.append(
            (
                DrawdownReason.DAILY_LOSS_LIMIT,
                GuardLevel.CRITICAL,
                f"daily loss {daily_loss:.2f}% >= limit {limit}%",
            )
        )
    return found


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


def _require_aware(moment: datetime) -> datetime:
    # A naive datetime would be read in the server's local zone: an environment
    # dependency that would move the trading day.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return moment


_REMEMBERED = (
    "peak_equity",
    "drawdown_level",
    "consecutive_critical",
    "day_anchor_value",
    "day_anchor_start",
    "drawdown_pct",
)


class DrawdownGuard:
    name = "drawdown"
    trigger = Trigger.SNAPSHOT
    may_cause = MayCause(
        alerts=frozenset({"drawdown"}),
        audit_entries=frozenset({"guard_level"}),
        actions=frozenset({Action.HALT, Action.CLOSE_ALL}),
        remembers=frozenset(_REMEMBERED),
    )

    def decide(self, inputs: GuardInputs) -> GuardVerdict:
        decision = evaluate_drawdown(
            drawdown_state_from(inputs.stored, halted=inputs.trading.halted),
            equity=inputs.equity,
            balance=inputs.balance,
            now=inputs.at,
            settings=drawdown_settings_from(inputs.config),
        )
        records: tuple[GuardAlert | GuardAuditEntry, ...] = ()
        if decision.should_alert:
            details = {
                "drawdown_pct": decision.drawdown_pct,
                "equity": decision.equity,
                "peak_equity": decision.peak_equity,
            }
            records = level_reached(self.name, "drawdown", decision.level, decision.message, details)
        return GuardVerdict(
            records=records,
            remember=MappingProxyType(
                {**drawdown_fields(decision.next_state), "drawdown_pct": decision.drawdown_pct}
            ),
            halt=decision.message if decision.newly_halted else None,
            close_all=decision.positions_should_close,
        )


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


def drawdown_state_from(stored: Mapping[str, Any], *, halted: bool) -> DrawdownState | None:
    """None for an account never judged: it has no peak yet."""
    if stored["peak_equity"] is None:
        return None
    return DrawdownState(
        peak_equity=stored["peak_equity"],
        level=GuardLevel(stored["drawdown_level"]),
        consecutive_critical=stored["consecutive_critical"],
        halted=halted,
        day_anchor_value=stored["day_anchor_value"],
        day_anchor_start=stored["day_anchor_start"],
    )


def drawdown_fields(state: DrawdownState) -> dict[str, Any]:
    """The account-state fields that hold a `DrawdownState`; its halt is the trading state's."""
    return {
        "peak_equity": state.peak_equity,
        "drawdown_level": state.level.value,
        "consecutive_critical": state.consecutive_critical,
        "day_anchor_value": state.day_anchor_value,
        "day_anchor_start": state.day_anchor_start,
    }


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
