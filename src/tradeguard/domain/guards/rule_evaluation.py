"""Judging an account's rule set on one snapshot: each rule's loss, the step it reached, and what follows.

`evaluate_rules` is a pure function of the rule set, the state it left after the last snapshot, the
snapshot's values and the moment judged. Rules in shadow are judged the same way and only
reported. Nothing here reads a clock or a database.

The balance "at" a period boundary is the one the first snapshot after the boundary reports: the
balance changes only when a deal closes, so with a bridge reporting every few seconds the two are
the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

from tradeguard.domain.guards.levels import GuardLevel, InvalidGuardSettings, worst
from tradeguard.domain.guards.rules import (
    Basis,
    Metric,
    Reference,
    ResumeMode,
    Rule,
    RuleSet,
    Scope,
    ScopeKind,
    Step,
    Threshold,
    Tier,
)
from tradeguard.domain.model import BrokerPosition
from tradeguard.domain.periods import period_start
from tradeguard.domain.pnl import drawdown_pct

_HUNDRED = Decimal(100)
_PCT_PLACES = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class RuleState:
    """What one rule remembers between snapshots."""

    period_start: datetime | None = None
    start_balance: Decimal | None = None
    start_equity: Decimal | None = None
    high_water: Decimal | None = None
    """the highest equity of the rule's period (a rule without a period uses the account's peak)"""
    trailing_high: Decimal | None = None
    step: int | None = None
    """the highest step reached at the last snapshot, confirmed"""
    consecutive: int = 0
    """snapshots in a row breaching an acting step: counted per rule for rules in shadow"""
    tripped_at: datetime | None = None
    """when the rule last acted (halted the account), until it resumes or is re-armed: a breach
    again in a later period starts its wait for the next period over"""
    calm_since: datetime | None = None
    """cool-down: since when the loss has been back under the resume level"""


@dataclass(frozen=True, slots=True)
class RuleSetState:
    """What the account's guard remembers between snapshots."""

    peak_equity: Decimal
    initial_balance: Decimal | None = None
    """the first balance seen, for rule sets that do not give theirs"""
    level: GuardLevel = GuardLevel.NORMAL
    consecutive: int = 0
    rules: Mapping[str, RuleState] = field(default_factory=lambda: MappingProxyType({}))

    def of(self, rule_id: str) -> RuleState:
        return self.rules.get(rule_id, _FRESH)


_FRESH = RuleState()


@dataclass(frozen=True, slots=True)
class StepStanding:
    """Where a rule stands against one of its steps. The headroom is worked out when read: the
    guard needs only whether a step is breached."""

    step: Step
    breached: bool
    detail: str | None
    """what reached the step, for messages; None when it is not reached"""
    loss: Decimal
    """the loss against this step's reference (a locked rule's may be lower than the rule's)"""
    value: Decimal
    base: Decimal
    """what the step's percent is of"""
    buffer: Decimal | None

    @property
    def limit(self) -> Decimal | None:
        """the acting limit on the loss, in money (after the buffer); None for a floor-only step"""
        limits = _limits(self.step.threshold, self.base)
        if not limits:
            return None
        return min(limits) if self.buffer is None else min(limits) * self.buffer

    @property
    def headroom(self) -> Decimal:
        """how much more may be lost before the step is reached, in money (negative once past it)"""
        limit, floor = self.limit, self.step.threshold.floor
        rooms = [] if limit is None else [limit - self.loss]
        if floor is not None:
            rooms.append(self.value - floor)
        return min(rooms)

    @property
    def headroom_pct(self) -> Decimal:
        """the headroom in percent of the rule's basis"""
        if self.base <= 0:
            return Decimal(0)
        return (self.headroom / self.base * _HUNDRED).quantize(_PCT_PLACES)


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: Rule
    value: Decimal
    """the metric's value: equity, balance, or balance plus the scope's floating P&L"""
    reference: Decimal
    loss: Decimal
    """reference minus value, in money; negative is a gain"""
    loss_pct: Decimal
    """the loss in percent of the basis, never negative"""
    standings: tuple[StepStanding, ...]
    reached: int | None
    """the highest step breached on this snapshot, before confirmation"""
    step: int | None
    """the step that counts: `reached` once confirmed, else the highest alert step breached"""
    previous_step: int | None
    to_close: tuple[str, ...]
    """tickets this rule closes (or, in shadow, would close)"""
    halts: bool
    """the rule's step halts (or, in shadow, would halt) the account"""
    resumed: bool

    @property
    def tier(self) -> Tier | None:
        return None if self.step is None else self.rule.steps[self.step].tier

    @property
    def changed(self) -> bool:
        return self.step != self.previous_step

    @property
    def detail(self) -> str | None:
        return None if self.reached is None else self.standings[self.reached].detail


@dataclass(frozen=True, slots=True)
class RulesDecision:
    """The rule set's verdict on one snapshot. Live rules decide `level`, the halt and the closes;
    shadow rules are in `results` with what they would have done, and decide nothing."""

    level: GuardLevel
    previous_level: GuardLevel
    equity: Decimal
    peak_equity: Decimal
    drawdown_pct: Decimal
    consecutive: int
    critical_pending: bool
    to_close: tuple[str, ...]
    halted: bool
    newly_halted: bool
    resumed: bool
    """every rule that had halted the account resumed: its halt is lifted"""
    results: tuple[RuleResult, ...]
    details: tuple[str, ...]
    next_state: RuleSetState

    @property
    def level_changed(self) -> bool:
        return self.level is not self.previous_level

    @property
    def live(self) -> tuple[RuleResult, ...]:
        return tuple(result for result in self.results if not result.rule.shadow)

    @property
    def shadow_changes(self) -> tuple[RuleResult, ...]:
        return tuple(result for result in self.results if result.rule.shadow and result.changed)


def evaluate_rules(
    rule_set: RuleSet,
    state: RuleSetState | None,
    *,
    equity: Decimal,
    balance: Decimal,
    now: datetime,
    halted: bool,
    positions: Iterable[BrokerPosition] = (),
    matched_signals: Mapping[str, str | None] = MappingProxyType({}),
) -> RulesDecision:
    """Judge one snapshot. `state` is None for an account never judged; `halted` is the account's
    trading state before this snapshot, whoever halted it; `matched_signals` holds every position
    matched to an expected trade, by ticket: its trade's signal, None when it has none."""
    initial = rule_set.initial_balance or (state is not None and state.initial_balance) or balance
    previous = state if state is not None else RuleSetState(peak_equity=equity, initial_balance=initial)
    peak = max(previous.peak_equity, equity)
    held = tuple(positions)
    judged = [
        _judge(rule, previous.of(rule.id), equity, balance, now, initial, peak, held, matched_signals)
        for rule in rule_set.rules
    ]

    live_reached = [
        rule.steps[reached].tier.level
        for rule, (reached, _) in zip(rule_set.rules, judged, strict=True)
        if not rule.shadow and reached is not None
    ]
    observed = worst(live_reached)
    consecutive = previous.consecutive + 1 if observed is GuardLevel.CRITICAL else 0
    pending = observed is GuardLevel.CRITICAL and consecutive < rule_set.confirmations
    level = GuardLevel.WARNING if pending else observed

    results: list[RuleResult] = []
    next_rules: dict[str, RuleState] = {}
    for rule, (reached, partial) in zip(rule_set.rules, judged, strict=True):
        before = previous.of(rule.id)
        if rule.shadow:
            count = before.consecutive + 1 if _acts(rule, reached) else 0
            confirmed = count >= rule_set.confirmations
        else:
            count = 0
            confirmed = not pending
        step = _confirmed_step(rule, reached, confirmed)
        acting = step is not None and rule.steps[step].tier is not Tier.ALERT
        to_close = _closing(rule, step, held, matched_signals) if acting else ()
        result, rule_state = _settle(
            rule,
            partial,
            before,
            reached=reached,
            step=step,
            acting=acting,
            to_close=to_close,
            consecutive=count,
            now=now,
        )
        results.append(result)
        next_rules[rule.id] = rule_state

    live = [result for result in results if not result.rule.shadow]
    acting_now = any(result.halts for result in live)
    resumed = (
        halted
        and not acting_now
        and any(result.resumed for result in live)
        and not any(next_rules[result.rule.id].tripped_at for result in live)
    )
    still_halted = (halted and not resumed) or acting_now
    closing = tuple(dict.fromkeys(ticket for result in live for ticket in result.to_close))
    next_state = RuleSetState(
        peak_equity=peak,
        initial_balance=initial,
        level=level,
        consecutive=consecutive,
        rules=MappingProxyType(next_rules),
    )
    details = tuple(result.detail for result in live if result.detail is not None)
    if pending:
        details += (f"critical confirmation {consecutive} of {rule_set.confirmations}",)
    return RulesDecision(
        level=level,
        previous_level=previous.level,
        equity=equity,
        peak_equity=peak,
        drawdown_pct=drawdown_pct(peak, equity),
        consecutive=consecutive,
        critical_pending=pending,
        to_close=closing,
        halted=still_halted,
        newly_halted=still_halted and not halted,
        resumed=resumed,
        results=tuple(results),
        details=details,
        next_state=next_state,
    )


def rearm_rules(state: RuleSetState, *, reset_peak_to: Decimal | None = None) -> RuleSetState:
    """The owner allows trading again: every rule starts over from no step, so a rule still in breach
    at the next snapshot alerts, closes and halts anew. `reset_peak_to` starts a new high-water mark."""
    if reset_peak_to is not None and reset_peak_to <= 0:
        raise InvalidGuardSettings(f"reset_peak_to must be positive, got {reset_peak_to}")
    rules = {
        rule_id: replace(
            rule_state,
            step=None,
            consecutive=0,
            tripped_at=None,
            calm_since=None,
            high_water=rule_state.high_water if reset_peak_to is None else reset_peak_to,
        )
        for rule_id, rule_state in state.rules.items()
    }
    return replace(
        state,
        level=GuardLevel.NORMAL,
        consecutive=0,
        peak_equity=state.peak_equity if reset_peak_to is None else reset_peak_to,
        rules=MappingProxyType(rules),
    )


@dataclass(frozen=True, slots=True)
class _Partial:
    """A rule's measurements before confirmation decides what it does."""

    value: Decimal
    reference: Decimal
    loss: Decimal
    loss_pct: Decimal
    standings: tuple[StepStanding, ...]
    state: RuleState
    """the rule's state with this snapshot's period and references taken in"""


def _judge(
    rule: Rule,
    before: RuleState,
    equity: Decimal,
    balance: Decimal,
    now: datetime,
    initial: Decimal,
    peak: Decimal,
    positions: tuple[BrokerPosition, ...],
    matched_signals: Mapping[str, str | None],
) -> tuple[int | None, _Partial]:
    rule_state = _roll_period(rule, before, equity=equity, balance=balance, now=now, initial=initial)
    if rule.metric is Metric.EQUITY:
        value = equity
    elif rule.metric is Metric.BALANCE:
        value = balance
    elif rule.scope.kind is ScopeKind.ALL:
        value = equity
    else:
        scoped = (p for p in positions if _in_scope(rule.scope, p, matched_signals))
        value = balance + sum((p.net_profit for p in scoped), Decimal(0))
    reference = _reference(rule, rule_state, initial=initial, peak=peak, balance=balance)
    basis = reference if rule.metric is Metric.FLOATING else None
    standings = tuple(
        _standing(rule, step, value=value, reference=reference, initial=initial, basis=basis)
        for step in rule.steps
    )
    reached = max((index for index, standing in enumerate(standings) if standing.breached), default=None)
    first = rule.steps[0].threshold
    first_basis = _basis_value(first, reference, initial, basis)
    # The loss is reported from the reference the first step stands against, as its percent is.
    reference = _locked(rule, _limits(first, first_basis), reference, initial)
    loss = reference - value
    partial = _Partial(
        value=value,
        reference=reference,
        loss=loss,
        loss_pct=drawdown_pct(first_basis, first_basis - loss),
        standings=standings,
        state=rule_state,
    )
    return reached, partial


def _roll_period(
    rule: Rule, before: RuleState, *, equity: Decimal, balance: Decimal, now: datetime, initial: Decimal
) -> RuleState:
    """The rule's state in the period holding `now`: a new period takes this snapshot's balance and
    equity as its start, and moves the trailing high."""
    if rule.period is None:
        return before
    start = period_start(rule.period, now)
    if before.period_start is not None and start <= before.period_start:
        high = equity if before.high_water is None else max(before.high_water, equity)
        return before if high == before.high_water else replace(before, high_water=high)
    first_sight = before.period_start is None
    trailing = max(initial, balance) if first_sight else max(before.trailing_high or initial, balance)
    return replace(
        before,
        period_start=start,
        start_balance=balance,
        start_equity=equity,
        high_water=equity,
        trailing_high=trailing,
    )


def _reference(
    rule: Rule, rule_state: RuleState, *, initial: Decimal, peak: Decimal, balance: Decimal
) -> Decimal:
    if rule.metric is Metric.FLOATING:
        return balance
    match rule.reference:
        case Reference.INITIAL_BALANCE:
            return initial
        case Reference.PERIOD_START_BALANCE:
            return rule_state.start_balance
        case Reference.PERIOD_START_EQUITY:
            return rule_state.start_equity
        case Reference.PERIOD_START_HIGHER:
            return max(rule_state.start_balance, rule_state.start_equity)
        case Reference.HIGH_WATER_MARK:
            return peak if rule.period is None else rule_state.high_water
        case Reference.TRAILING_HIGH_BALANCE:
            return rule_state.trailing_high
    raise AssertionError(rule.reference)


def _basis_value(
    threshold: Threshold, reference: Decimal, initial: Decimal, basis: Decimal | None
) -> Decimal:
    if basis is not None:
        return basis
    return initial if threshold.percent_of is Basis.INITIAL_BALANCE else reference


def _limits(threshold: Threshold, base: Decimal) -> list[Decimal]:
    """The threshold's limits on the loss, in money, before the buffer."""
    limits: list[Decimal] = []
    if threshold.amount is not None:
        limits.append(threshold.amount)
    if threshold.percent is not None and base > 0:
        limits.append(threshold.percent * base / _HUNDRED)
    return limits


def _locked(rule: Rule, limits: list[Decimal], reference: Decimal, initial: Decimal) -> Decimal:
    """The reference a step stands against: a locked rule's floor (reference − limit) never rises
    above the initial balance."""
    if rule.lock_at_initial and limits:
        return min(reference, initial + min(limits))
    return reference


def _standing(
    rule: Rule, step: Step, *, value: Decimal, reference: Decimal, initial: Decimal, basis: Decimal | None
) -> StepStanding:
    threshold = step.threshold
    base = _basis_value(threshold, reference, initial, basis)
    buffer = rule.buffer
    if rule.lock_at_initial:
        reference = _locked(rule, _limits(threshold, base), reference, initial)
    loss = reference - value
    breached: str | None = None
    if threshold.amount is not None:
        acting = threshold.amount if buffer is None else threshold.amount * buffer
        if loss >= acting:
            breached = f"{rule.name} {loss} >= {step.name} {acting}"
    if breached is None and threshold.percent is not None and base > 0:
        acting = threshold.percent if buffer is None else threshold.percent * buffer
        # Compared in money: the rounded percent would reach the limit up to half its last place
        # early (a cent short of 5 % of 100,000 rounds to 5.0000 %).
        if loss >= acting * base / _HUNDRED:
            breached = f"{rule.name} {drawdown_pct(base, base - loss):.2f}% >= {step.name} {acting}%"
    if breached is None and threshold.floor is not None and value < threshold.floor:
        breached = f"{rule.metric.value} {value} below {step.name} {threshold.floor}"
    return StepStanding(
        step=step,
        breached=breached is not None,
        detail=breached,
        loss=loss,
        value=value,
        base=base,
        buffer=buffer,
    )


def _acts(rule: Rule, reached: int | None) -> bool:
    return reached is not None and rule.steps[reached].tier is not Tier.ALERT


def _confirmed_step(rule: Rule, reached: int | None, confirmed: bool) -> int | None:
    """An acting step counts once confirmed; until then, the highest alert step below it."""
    if reached is None or confirmed or rule.steps[reached].tier is Tier.ALERT:
        return reached
    alerts = [index for index in range(reached) if rule.steps[index].tier is Tier.ALERT]
    return alerts[-1] if alerts else None


def _closing(
    rule: Rule, step: int, positions: tuple[BrokerPosition, ...], matched_signals: Mapping[str, str | None]
) -> tuple[str, ...]:
    tier = rule.steps[step].tier
    if tier is Tier.CLOSE_ALL:
        return tuple(position.ticket for position in positions)
    if tier is Tier.CLOSE_SCOPE:
        return tuple(p.ticket for p in positions if _in_scope(rule.scope, p, matched_signals))
    return ()


def _in_scope(scope: Scope, position: BrokerPosition, matched_signals: Mapping[str, str | None]) -> bool:
    signal = matched_signals.get(position.ticket)
    if scope.kind is ScopeKind.ALL:
        return True
    if scope.kind is ScopeKind.MANUAL:
        return position.ticket not in matched_signals and not position.magic
    return (position.magic is not None and position.magic in scope.magics) or (
        signal is not None and signal in scope.signals
    )


def _settle(
    rule: Rule,
    partial: _Partial,
    before: RuleState,
    *,
    reached: int | None,
    step: int | None,
    acting: bool,
    to_close: tuple[str, ...],
    consecutive: int,
    now: datetime,
) -> tuple[RuleResult, RuleState]:
    """The rule's result and the state it leaves: when it tripped, and whether it resumed."""
    rule_state = partial.state
    tripped_at = rule_state.tripped_at
    calm_since = rule_state.calm_since
    resumed = False
    if acting and not rule.shadow:
        tripped_at = now
        calm_since = None
    elif tripped_at is not None:
        resumed, calm_since = _resumes(rule, partial, tripped_at, calm_since, now)
        if resumed:
            tripped_at = None
            calm_since = None
    result = RuleResult(
        rule=rule,
        value=partial.value,
        reference=partial.reference,
        loss=partial.loss,
        loss_pct=partial.loss_pct,
        standings=partial.standings,
        reached=reached,
        step=step,
        previous_step=before.step,
        to_close=to_close,
        halts=acting,
        resumed=resumed,
    )
    # Built whole rather than with dataclasses.replace, which costs several times as much per snapshot.
    return result, RuleState(
        period_start=rule_state.period_start,
        start_balance=rule_state.start_balance,
        start_equity=rule_state.start_equity,
        high_water=rule_state.high_water,
        trailing_high=rule_state.trailing_high,
        step=step,
        consecutive=consecutive,
        tripped_at=tripped_at,
        calm_since=calm_since,
    )


def _resumes(
    rule: Rule, partial: _Partial, tripped_at: datetime, calm_since: datetime | None, now: datetime
) -> tuple[bool, datetime | None]:
    resume = rule.resume
    if resume.mode is ResumeMode.NEXT_PERIOD:
        started = partial.state.period_start
        return started is not None and started > tripped_at, None
    if resume.mode is ResumeMode.COOL_DOWN:
        first_acting = next(s for s in partial.standings if s.step.tier is not Tier.ALERT)
        limit = first_acting.limit
        calm = limit is not None and partial.loss < limit * resume.below
        if not calm:
            return False, None
        since = calm_since or now
        return now - since >= resume.after, since
    return False, None
